"""The real ComfyUI 0.3.64 peer (``../shared/peers/comfyui/start``), started once per test session.

One session-scoped fixture (``real_comfyui`` in ``tests/conftest.py``) serves the contract suite,
the example-workflow tests and the end-to-end tests. If the peer cannot start, its tests fail with
the tail of its log: they are never skipped (the ``comfyui`` marker only names them).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.processes import free_port

REPO = Path(__file__).resolve().parents[2]
PEER_START = Path(
    os.environ.get("NOEMA_TEST_COMFYUI_START")
    or os.environ.get("NOEMA_COMFYUI_PEER_START")
    or REPO.parent / "shared" / "peers" / "comfyui" / "start"
)
START_TIMEOUT = 900  # the first start on a machine builds the peer's virtualenv


@dataclass
class Server:
    """A running ComfyUI: its URL, and the fake behind it when it is the fake (pid and log for the real one)."""

    kind: str
    url: str
    fake: FakeComfyUI | None = None
    pid: int = 0
    log: Path | None = None

    def client(self) -> httpx.Client:
        """A synchronous HTTP client for the server."""
        return httpx.Client(base_url=self.url, timeout=30)


def log_tail(log: Path | None, lines: int = 40) -> str:
    """The end of the peer's log, for a failure message."""
    text = log.read_text(errors="replace") if log is not None and log.exists() else "(no comfyui.log)"
    return "\n".join(text.splitlines()[-lines:])


def launch(directory: Path, port: int | None = None) -> Server:
    """Start the peer in ``directory`` on ``port`` (a free one if None); fails the test with its log if it cannot."""
    log = directory / "comfyui.log"
    try:
        done = subprocess.run(
            ["bash", str(PEER_START), "--port", str(port or free_port()), "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"the ComfyUI peer could not be started with {PEER_START}: {exc}\n{log_tail(log)}")
    found = re.search(r"ready (http://\S+) pid (\d+)", done.stdout)
    if done.returncode != 0 or found is None:
        pytest.fail(
            f"the ComfyUI peer did not start (exit {done.returncode}):\n{done.stdout[-2000:]}\n"
            f"{done.stderr[-3000:]}\n--- comfyui.log ---\n{log_tail(log)}"
        )
    return Server("real", found.group(1), pid=int(found.group(2)), log=log)


def kill(server: Server, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal the peer's process group (the script starts it with setsid: its group is its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, sig)


def start_real(directory: Path) -> Iterator[Server]:
    """Start the peer in ``directory`` on a free port; yields it and kills its process group after."""
    server = launch(directory)
    yield server
    kill(server)
