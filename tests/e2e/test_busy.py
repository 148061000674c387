"""When every database connection is in use, Noema answers 503 with Retry-After and changes nothing.

A backend webhook it could not apply then is applied later (issue 18).

PostgreSQL only: on SQLite one process runs one transaction at a time on its own lock, so its pool
is never the limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from noema.bootstrap import Container
from noema.ports import GenerationFilter
from noema.services.run_updates import hash_token
from tests.conftest import funded_key, running_app
from tests.fakes.generations import make_generation
from tests.fakes.ids import new_id

pytestmark = pytest.mark.postgres

TINY_POOL = {"db_pool_size": 1, "db_pool_overflow": 0, "db_pool_timeout": 0.3, "sandbox_run_seconds": 30.0}


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    """The real PostgreSQL, emptied."""
    from tests.conftest import _truncate

    await _truncate(pg_database)
    return pg_database


@asynccontextmanager
async def every_connection_taken(app: FastAPI) -> AsyncIterator[None]:
    """Hold the pool's only connection, as a burst of slow requests would."""
    c: Container = app.state.container
    async with c.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        yield


async def _state(app: FastAPI, aid: str) -> tuple[int, int, int]:
    """(generations of the account, its balance, its held nanos)."""
    c: Container = app.state.container
    async with c.uow() as uow:
        account = await uow.accounts.get(aid)
        page = await uow.generations.search(GenerationFilter(account_id=aid), limit=50, cursor=None)
    assert account is not None
    return len(page.items), account.balance_nanos, account.held_nanos


async def test_a_request_that_finds_no_free_connection_gets_503_and_changes_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    async with running_app(pg_url, tmp_path, **TINY_POOL) as (app, client):
        aid, auth = await funded_key(app, "1")
        before = await _state(app, aid)
        async with every_connection_taken(app):
            busy = await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "a fox"}}
            )
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "2"
        assert busy.json()["error"]["code"] == "BUSY"
        assert "try again" in busy.json()["error"]["message"].lower()
        assert await _state(app, aid) == before, "a refused request must not hold money or create a run"
        ok = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "a fox"}}
        )
        assert ok.status_code == 202, ok.text


async def test_a_webhook_refused_while_busy_is_applied_later(pg_url: str, tmp_path: Path) -> None:
    async with running_app(pg_url, tmp_path, **TINY_POOL) as (app, client):
        c: Container = app.state.container
        aid, auth = await funded_key(app, "1")
        gid, token = new_id(), "t" * 43
        async with c.uow() as uow:
            uow.generations.add(
                make_generation(
                    id=gid,
                    account_id=aid,
                    hold_nanos=0,
                    webhook_token_hash=hash_token(token),
                    requested_at=c.clock.now(),
                    updated_at=c.clock.now(),
                    submitted_at=c.clock.now(),
                )
            )
            await uow.commit()
        update = {
            "event_type": "run.updated",
            "status": "running",
            "run_id": "run-1",
            "progress": 0.5,
            "live_status": "Sampling 15/30",
        }
        params = {"generation_id": gid, "token": token}
        async with every_connection_taken(app):
            refused = await client.post("/api/webhook/comfydeploy", params=params, json=update)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
        assert len(c.backend_updates.deferred) == 1
        assert (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()["progress"] != 0.5

        async with every_connection_taken(app):  # still busy: it stays in line
            assert await c.backend_updates.apply_deferred() == 0
        assert len(c.backend_updates.deferred) == 1
        applied = await c.backend_updates.apply_deferred()
        assert applied == 1 and len(c.backend_updates.deferred) == 0
        body = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()
        assert body["progress"] == 0.5 and body["status"] == "running"
