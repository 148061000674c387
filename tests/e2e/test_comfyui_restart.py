"""Noema restarted while runs wait in its line for a ComfyUI server (the fake), on SQLite and PostgreSQL.

The line is kept in the database: the new process sends the waiting runs in the order they came
and follows the one that was already on the server, each charged once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.services import economy
from tests.conftest import funded_key, running_app, wait_terminal
from tests.e2e.test_comfyui_backend import balance, picture_uri, start, until
from tests.e2e.test_comfyui_pool import pool
from tests.fakes.comfyui import FakeComfyUI

SLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0x336699}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "slow"}},
}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeComfyUI]:
    server = FakeComfyUI(tmp_path / "fake-comfyui", node_seconds=0.6)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def statuses(app: FastAPI, auth: dict[str, str], gids: list[str]) -> list[str]:
    c: Container = app.state.container
    async with c.uow() as tx:
        found = [await tx.generations.get(gid) for gid in gids]
    return [g.status.value if g else "missing" for g in found]


async def test_runs_waiting_in_noemas_line_survive_a_restart_and_go_to_the_server_first_come_first_served(
    db_url: str, tmp_path: Path, fake: FakeComfyUI
) -> None:
    settings = pool(tmp_path, [fake.url, fake.url], comfyui_slots=1, max_concurrent_runs=10)
    settings["comfyui_servers"] = f"{fake.url}=A10G"
    (Path(str(settings["comfyui_workflows_dir"])) / "slow.json").write_text(json.dumps(SLOW))
    async with running_app(db_url, tmp_path, **settings) as (app, client):
        aid, auth = await funded_key(app, "1")
        first = await start(client, auth, "slow", {})
        waiting = [await start(client, auth, "blur", {"image": picture_uri(), "radius": r}) for r in (2, 3, 4)]

        async def first_on_the_server() -> bool:
            return fake.worker.running is not None or bool(fake.worker.pending)

        await until(first_on_the_server, 30)
        assert (await client.get(f"/api/v1/generations/{waiting[2]}", headers=auth)).json()["status"] != "succeeded"
    assert fake.worker.running is not None  # Noema stopped while the server runs the first and three wait

    async with running_app(db_url, tmp_path, **settings, workers_enabled=True, poll_seconds=0.5) as (app, client):
        ended = [await wait_terminal(client, gid, auth, seconds=60, application=app) for gid in [first, *waiting]]
        assert [body["status"] for body in ended] == ["succeeded"] * 4, ended
        started = [body["startedAt"] for body in ended[1:]]
        assert started == sorted(started)  # sent in the order they came
        blurs = [item["prompt"][2]["2"] for item in fake.worker.history.values()]
        assert [n["inputs"]["blur_radius"] for n in blurs if n["class_type"] == "ImageBlur"] == [2, 3, 4]
        spent = sum(int(body["costUsd"].replace(".", "")) for body in ended)
        assert spent > 0 and await balance(app, aid) == (1_000_000_000 - spent, 0)
        c: Container = app.state.container
        assert await economy.verify(c.uow()) == (1, [])
        assert c.comfyui is not None and c.comfyui.line is not None
        assert await c.comfyui.line.load() == []  # every run ended: nothing is kept
