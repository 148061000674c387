"""The ComfyUI scheduler's quieter paths: the once-a-second progress throttle, and runs that end while the socket is down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from noema.adapters.backends.comfyui.client import ComfyUIClient
from noema.adapters.backends.comfyui.events import Executing, ExecutionStart, Progress
from noema.adapters.backends.comfyui.pool import Server
from noema.adapters.backends.comfyui.progress import PromptState
from noema.adapters.backends.comfyui.runs import Run
from noema.adapters.backends.comfyui.scheduler import PROGRESS_EVERY, Scheduler
from noema.adapters.media_store import MediaStore
from noema.bootstrap import Container
from noema.domain.comfyui_workflows import load_workflow
from noema.domain.runs import RunStatus, RunUpdate
from tests.conftest import funded_key, running_app, wait_terminal
from tests.e2e.test_comfyui_backend import picture_uri, start
from tests.fakes.comfyui import FakeComfyUI

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"


async def test_progress_reaches_the_service_at_most_once_a_second_per_run(tmp_path: Path) -> None:
    tool = load_workflow("blur", (EXAMPLES / "blur.json").read_text(), (EXAMPLES / "blur.toml").read_text())
    http = httpx.AsyncClient()
    client = ComfyUIClient("http://gpu.invalid", http=http, client_id="noema-t")
    server = Server("http://gpu.invalid", "A10G", client)
    scheduler = Scheduler([server], MediaStore(tmp_path, "http://noema.test"), slots=2, health_seconds=60)
    pushed: list[RunUpdate] = []

    async def record(_: str | None, update: RunUpdate) -> None:
        pushed.append(update)

    scheduler.on_update = record
    run = Run("cui_1", tool, {}, {}, None, server=server, prompt_id="p1", state=PromptState("p1", node_count=3))
    scheduler.by_prompt["p1"] = run
    scheduler.handle(server, ExecutionStart(prompt_id="p1", at=datetime.now(UTC)))
    scheduler.handle(server, Executing(prompt_id="p1", node="2"))
    for step in range(1, 51):  # a sampler's steps arrive far faster than once a second
        scheduler.handle(server, Progress(prompt_id="p1", node="2", value=step, max=50))
    await asyncio.sleep(0.05)
    assert [u.progress for u in pushed] == [0.0]  # the start only: fifty steps within the second are held back
    await asyncio.sleep(PROGRESS_EVERY)
    scheduler.handle(server, Progress(prompt_id="p1", node="2", value=50, max=50))
    await asyncio.sleep(0.05)
    assert len(pushed) == 2 and pushed[1].status is RunStatus.RUNNING
    assert pushed[1].progress is not None and pushed[1].progress > 0.0
    await scheduler.close()
    await http.aclose()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeComfyUI]:
    server = FakeComfyUI(tmp_path / "fake", node_seconds=0.7)
    server.start()
    yield server
    server.stop()


async def test_a_run_whose_socket_drops_mid_run_and_stays_down_still_ends_from_the_servers_history(
    db_url: str, tmp_path: Path, fake: FakeComfyUI
) -> None:
    settings = {
        "backend": "comfyui",
        "comfyui_servers": f"{fake.url}=A10G",
        "comfyui_workflows_dir": str(EXAMPLES),
        "media_dir": str(tmp_path / "media"),
    }
    async with running_app(db_url, tmp_path, **settings) as (app, client):
        c: Container = app.state.container
        assert c.comfyui is not None
        server = c.comfyui.servers[0]
        aid, auth = await funded_key(app, "1")
        gid = await start(client, auth, "blur", {"image": picture_uri()})

        async def running() -> bool:
            body = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()
            return bool(body["status"] == "running")

        deadline = asyncio.get_running_loop().time() + 30
        while not await running():
            assert asyncio.get_running_loop().time() < deadline, "the run never started"
            await asyncio.sleep(0.05)
        fake.refuse_sockets = True
        assert fake.drop_sockets() == 1
        body = await wait_terminal(client, gid, auth, seconds=60)
        assert body["status"] == "succeeded", body
        assert not server.socket_open and not fake.sockets  # it ended with no socket: /history told
        assert body["outputs"][0]["url"].startswith("http://noema.test/media/")
        cost = int(body["costUsd"].replace(".", ""))
        assert cost > 0
        async with c.uow() as tx:
            account = await tx.accounts.get(aid)
        assert account is not None and (account.balance_nanos, account.held_nanos) == (1_000_000_000 - cost, 0)
