"""Runs watched live (the API, the web page) write no outbox rows.

Nobody is sent anything, so no worker should have to lease, send and mark rows for them. Their open
streams are woken by the commit instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from noema.bootstrap import Container
from noema.domain.delivery import DeliveryKind, dedupe_key
from noema.services.live_updates import LiveUpdates
from tests.conftest import funded_key, running_app, wait_terminal


async def _rows(c: Container, gid: str) -> list[object]:
    async with c.uow() as uow:
        found = [await uow.deliveries.by_key(dedupe_key(gid, kind)) for kind in DeliveryKind]
    return [row for row in found if row is not None]


def _drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    messages = []
    while not queue.empty():
        messages.append(queue.get_nowait())
    return messages


async def test_an_api_run_writes_no_outbox_rows_and_its_stream_is_woken_by_each_change(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=0.6) as (app, client):
        c: Container = app.state.container
        _, auth = await funded_key(app, "1")
        created = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "live"}}
        )
        assert created.status_code == 202, created.text
        gid = created.json()["id"]
        queue = c.live.subscribe(gid)
        try:
            body = await wait_terminal(client, gid, auth)
            assert body["status"] == "succeeded", body
            assert await _rows(c, gid) == []
            woken = _drain(queue)
            assert woken, "the commits of the run's progress and end must wake its open streams"
        finally:
            c.live.unsubscribe(gid, queue)


async def test_a_rolled_back_change_wakes_no_stream(container: Container) -> None:
    live = LiveUpdates()
    container.uow.live = live.wake
    queue = live.subscribe("g-1")
    async with container.uow() as uow:
        uow.announce("g-1")
        await uow.rollback()
    assert _drain(queue) == []
    async with container.uow() as uow:
        uow.announce("g-1")
        await uow.commit()
    assert _drain(queue) == [{"kind": "changed"}]
