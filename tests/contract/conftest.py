"""The two ComfyUI servers every contract test runs against: the fake, and the real 0.3.64 peer.

The real one is started once per session with ``../shared/peers/comfyui/start`` on a free port in a
temporary directory and killed afterwards. If it cannot start, its tests fail with the tail of its
log: they are never skipped (the ``comfyui`` marker only names them, e.g. ``-m comfyui``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from noema.adapters.backends.comfyui import ComfyUIClient
from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.processes import free_port

REPO = Path(__file__).resolve().parents[2]
PEER_START = Path(os.environ.get("NOEMA_TEST_COMFYUI_START", REPO.parent / "shared" / "peers" / "comfyui" / "start"))
#: each node of the fake takes this long, so a prompt can be seen running, deleted and interrupted
FAKE_NODE_SECONDS = 0.3


@dataclass
class Server:
    """A running ComfyUI: its URL, and the fake behind it when it is the fake."""

    kind: str
    url: str
    fake: FakeComfyUI | None = None


@pytest.fixture(scope="session")
def fake_comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fake = FakeComfyUI(tmp_path_factory.mktemp("fake-comfyui"), node_seconds=FAKE_NODE_SECONDS)
    url = fake.start()
    yield Server("fake", url, fake)
    fake.stop()


def _log_tail(directory: Path, lines: int = 40) -> str:
    log = directory / "comfyui.log"
    text = log.read_text(errors="replace") if log.exists() else "(no comfyui.log)"
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def real_comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("real-comfyui")
    port = free_port()
    try:
        done = subprocess.run(
            ["bash", str(PEER_START), "--port", str(port), "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=900,  # the first start on a machine builds the peer's virtualenv
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"the ComfyUI peer could not be started with {PEER_START}: {exc}\n{_log_tail(directory)}")
    found = re.search(r"ready (http://\S+) pid (\d+)", done.stdout)
    if done.returncode != 0 or found is None:
        pytest.fail(
            f"the ComfyUI peer did not start (exit {done.returncode}):\n{done.stdout[-2000:]}\n"
            f"{done.stderr[-3000:]}\n--- comfyui.log ---\n{_log_tail(directory)}"
        )
    pid = int(found.group(2))
    yield Server("real", found.group(1))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)  # the script starts it with setsid: its group is its own


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.comfyui)])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Each contract test once per server; the fake's knobs are put back after each test."""
    chosen: Server = request.getfixturevalue(f"{request.param}_comfyui")
    yield chosen
    if chosen.fake is not None:
        chosen.fake.node_seconds = FAKE_NODE_SECONDS
        chosen.fake.view_delay = 0.0


@pytest.fixture
async def client(server: Server) -> AsyncIterator[ComfyUIClient]:
    async with httpx.AsyncClient() as http:
        yield ComfyUIClient(server.url, http=http, client_id=uuid.uuid4().hex)
