"""Real ``noema`` processes for end-to-end tests: free ports, a clean environment, bounded waits.

Each process writes stdout and stderr to files (a pipe nobody reads would fill up and block the
server), so a failing assertion can quote the tail of what the process said.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.fakes.cli_fork import run_command

_SCRIPT = Path(sys.executable).with_name("noema")
#: The installed console script when there is one (what an operator runs), else the module.
NOEMA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "noema.entrypoints.cli"]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Chosen below the kernel's ephemeral range when there is room: the port is bound again later (a
    restarted server must come back on the same URL, which its runs' webhooks name), and in between
    an outgoing connection could otherwise be given it as its source port.
    """
    low = _ephemeral_low()
    if low > 12_000:
        rng = random.SystemRandom()
        for _ in range(100):
            port = rng.randrange(10_000, low)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def noema_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ``NOEMA_*`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOEMA_")}
    env.update({"COLUMNS": "200", "PYTHONUNBUFFERED": "1", **settings})
    return env


def run_noema(*args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one ``noema`` command to completion."""
    return run_command(NOEMA, args, env=env, cwd=cwd, timeout=timeout)


class NoemaProcess:
    """A long-running ``noema`` command (``serve``, ``sandbox``) started in the background."""

    def __init__(self, name: str, args: list[str], *, env: Mapping[str, str], cwd: Path, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen([*NOEMA, *args], env=dict(env), cwd=cwd, stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        """The end of what the process wrote, for assertion messages."""
        parts = []
        for path in (self.stderr_path, self.stdout_path):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {path.name} (last {chars} chars) ---\n{text[-chars:]}")
        code = self.popen.poll()
        return f"[{self.name} pid {self.pid}, exit code {code}]\n" + "\n".join(parts)

    def kill(self, timeout: float = 10) -> int:
        """SIGKILL: no shutdown code runs. Returns the exit code."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time; safe to call on an ended process."""
        if not self.alive():
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    async def wait_http_ok(self, url: str, *, seconds: float = 30) -> None:
        """Poll ``url`` until it answers 200; fail with the process's output if it dies or never does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        last = "no answer yet"
        async with httpx.AsyncClient(timeout=2) as client:
            while loop.time() < deadline:
                if not self.alive():
                    raise AssertionError(f"{self.name} exited before {url} answered 200\n{self.tail()}")
                try:
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.TransportError as exc:
                    last = type(exc).__name__
                await asyncio.sleep(0.1)
        raise AssertionError(f"{url} did not answer 200 within {seconds}s (last: {last})\n{self.tail()}")


async def start_serve(env: Mapping[str, str], *, cwd: Path, name: str, port: int, seconds: float = 40) -> NoemaProcess:
    """``noema serve`` in the background, returned once ``/readyz`` answers 200."""
    process = NoemaProcess(name, ["serve"], env=env, cwd=cwd, log_dir=cwd / "logs")
    try:
        await process.wait_http_ok(f"http://127.0.0.1:{port}/readyz", seconds=seconds)
    except BaseException:
        process.stop()
        raise
    return process


#: The key the standalone sandboxes of the tests answer to (``NOEMA_SANDBOX_API_KEY``).
SANDBOX_KEY = "test-sandbox-key-0123456789"


async def start_sandbox(
    data_dir: Path,
    *,
    cwd: Path,
    port: int,
    run_seconds: float,
    seconds: float = 30,
    api_key: str | None = SANDBOX_KEY,
    webhook_base: str | None = None,
) -> NoemaProcess:
    """``noema sandbox`` (the standalone ComfyDeploy double) in the background, returned once it answers.

    ``api_key`` None starts it without one (it then prints a random key); ``webhook_base`` is where it
    may post webhooks (the Noema under test).
    """
    settings = {"NOEMA_SANDBOX_RUN_SECONDS": str(run_seconds), "NOEMA_LOG_FORMAT": "json"}
    if api_key is not None:
        settings["NOEMA_SANDBOX_API_KEY"] = api_key
    env = noema_env(settings)
    args = ["sandbox", "--port", str(port), "--data-dir", str(data_dir)]
    if webhook_base is not None:
        args += ["--webhook-base", webhook_base]
    process = NoemaProcess(f"sandbox-{port}", args, env=env, cwd=cwd, log_dir=cwd / "logs")
    try:
        await process.wait_http_ok(f"http://127.0.0.1:{port}/", seconds=seconds)
    except BaseException:
        process.stop()
        raise
    return process


async def funded_api_account(
    client: httpx.AsyncClient,
    *,
    admin: Mapping[str, str],
    env: Mapping[str, str],
    cwd: Path,
    platform_id: str,
    usd: str = "1",
) -> tuple[str, dict[str, str]]:
    """A new ``api`` account and an API key for it: (account id, Authorization header).

    The account is credited with ``usd`` through the internal API; the key is made by ``noema apikey create``.
    """
    found = await client.post(
        "/internal/v1/data/users/find-or-create",
        headers=dict(admin),
        json={"platform": "api", "platformId": platform_id},
    )
    assert found.status_code == 201, found.text
    aid: str = found.json()["masterAccountId"]
    credited = await client.post(
        f"/internal/v1/data/users/{aid}/economy/credit",
        headers=dict(admin),
        json={"amountUsd": usd, "description": "e2e test credit", "externalTransactionId": f"e2e-{platform_id}"},
    )
    assert credited.status_code == 201, credited.text
    key = await asyncio.to_thread(run_noema, "apikey", "create", aid, env=env, cwd=cwd)
    assert key.returncode == 0 and key.stdout.strip().startswith("nk_"), key.stdout + key.stderr
    return aid, {"Authorization": f"Bearer {key.stdout.strip()}"}
