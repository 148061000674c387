"""One-shot ``noema`` commands as real processes forked from a warm interpreter.

Starting the console script costs about 1.3 s of imports (python-telegram-bot, FastAPI,
SQLAlchemy, the backends) before a command does anything, and the CLI suites run a few hundred
commands. A zygote process imports all of that once; for each command it forks a child that takes
the command's environment, working directory and argv, imports the CLI module itself (so its
consoles read this command's ``COLUMNS``), runs it and exits with its code. Each command is still
its own process with its own state and its own output files. ``tests/e2e/test_readme_first_run.py``
and the long-running ``serve``/``sandbox`` processes start the installed script itself.

Set ``NOEMA_TEST_CLI_FORK=0`` to run every command as a fresh ``noema`` process instead.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: What the zygote imports before it forks: everything the CLI needs except the CLI module.
PRELOAD = (
    "noema.bootstrap",
    "noema.entrypoints.cli_accounts",
    "noema.entrypoints.cli_backends",
    "noema.entrypoints.cli_loras",
    "noema.entrypoints.cli_output",
    "noema.entrypoints.cli_payments",
    "noema.entrypoints.http.generation_schemas",
    "noema.services.payments",
)
_CLI = "noema.entrypoints.cli"
_ROOT = Path(__file__).resolve().parents[2]


def serve() -> None:
    """The zygote: read one JSON request per line on stdin, fork a child per request, answer on stdout."""
    for name in PRELOAD:
        importlib.import_module(name)
    if _CLI in sys.modules:
        raise RuntimeError(f"{_CLI} was imported before the fork; its consoles would keep this process's COLUMNS")
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        replies.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")


def _child(request: Mapping[str, Any]) -> None:
    """Become the command: its files on 0/1/2, its directory, environment and argv; never returns."""
    code = 1
    try:
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the zygote's stdin may hold nothing for a command
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["argv0"], *request["args"]]
        cli = importlib.import_module(_CLI)
        try:
            cli.main()
            code = 0
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:  # what the interpreter does with a message: print it, exit 1
                print(exit_.code, file=sys.stderr)
    except BaseException:  # the interpreter's own behaviour for an uncaught error
        traceback.print_exc()
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class _Zygote:
    """The client side: one zygote per test process, started on first use, one command at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = b""

    def run(
        self, argv0: str, args: Sequence[str], *, env: Mapping[str, str], cwd: Path | str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        with self._lock, tempfile.TemporaryDirectory(prefix="noema-cli-out-") as out_dir:
            proc = self._started()
            out, err = Path(out_dir, "stdout"), Path(out_dir, "stderr")
            request = {"argv0": argv0, "args": list(args), "env": dict(env), "cwd": str(cwd)}
            request |= {"stdout": str(out), "stderr": str(err)}
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            deadline = time.monotonic() + timeout
            pid = self._reply(deadline + 30)["pid"]
            try:
                code = self._reply(deadline)["code"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._reply(time.monotonic() + 30)
                raise subprocess.TimeoutExpired([argv0, *args], timeout) from None
            return subprocess.CompletedProcess([argv0, *args], code, _text(out), _text(err))

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._pending = b""
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from tests.fakes.cli_fork import serve; serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=_ROOT,
            )
            atexit.register(self._proc.kill)
        return self._proc

    def _reply(self, deadline: float) -> dict[str, int]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"the CLI zygote exited with code {proc.wait()}")
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        reply: dict[str, int] = json.loads(line)
        return reply


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


_zygote = _Zygote()


def run_command(
    script: Sequence[str], args: Sequence[str], *, env: Mapping[str, str], cwd: Path | str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``noema args`` to completion, like ``subprocess.run([*script, *args], capture_output=True, text=True)``.

    ``script`` is how to start ``noema`` afresh (the console script, or ``python -m``); it is used
    only when forking is turned off.
    """
    if os.environ.get("NOEMA_TEST_CLI_FORK", "1") == "0":
        return subprocess.run(
            [*script, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    return _zygote.run("noema", args, env=env, cwd=cwd, timeout=timeout)
