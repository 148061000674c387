"""The two ComfyUI servers every contract test runs against: the fake, and the real 0.3.64 peer.

The real one is the session's shared peer (``real_comfyui`` in ``tests/conftest.py``, started by
``tests/fakes/comfyui_peer``). If it cannot start, its tests fail with the tail of its log: they are
never skipped (the ``comfyui`` marker only names them, e.g. ``-m comfyui``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from noema.adapters.backends.comfyui import ComfyUIClient
from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.comfyui_peer import Server

__all__ = ["Server"]

#: each node of the fake takes this long, so a prompt can be seen running, deleted and interrupted
FAKE_NODE_SECONDS = 0.3


@pytest.fixture(scope="session")
def fake_comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fake = FakeComfyUI(tmp_path_factory.mktemp("fake-comfyui"), node_seconds=FAKE_NODE_SECONDS)
    url = fake.start()
    yield Server("fake", url, fake)
    fake.stop()


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
