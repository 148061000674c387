"""The hold is the most a run may cost: what an account is charged never exceeds it, nothing is written off.

Each test here reproduces a way the money used to leak: runs costing far more than their hold,
a forged early ``success``, GPU time measured by when Noema heard the webhooks, a cancelled
generation whose run went on at the backend.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from noema.bootstrap import Container, build_container
from noema.domain.generation import Generation
from noema.domain.money import parse_usd
from noema.domain.runs import RunStatus
from noema.entrypoints.http.app import create_app
from noema.services import economy, reconcile
from tests.conftest import funded_key, make_settings, running_app, wait_terminal
from tests.fakes.backends import SlowSubmitBackend
from tests.fakes.clock import FakeClock

A10G_RATE = 337_000  # nanos per second
#: txt2img expects 1 s, so a small balance covers its estimate but not its 15 minutes at most.
EXPECT_ONE_SECOND = json.dumps({"txt2img": {"expected_seconds": 1}})
TXT2IMG = {"toolId": "txt2img", "inputs": {"input_text": "a lighthouse"}}


@asynccontextmanager
async def clocked_app(
    db_url: str, tmp_path: Path, clock: FakeClock, **overrides: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Noema over a clock the test moves, with the embedded sandbox running in real time."""
    values: dict[str, object] = {"sandbox_data_dir": str(tmp_path / "sandbox"), **overrides}
    application = create_app(build_container(make_settings(db_url, **values), clock=clock))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://noema.test", timeout=30) as client:
            yield application, client


async def _generation(app: FastAPI, gid: str) -> Generation:
    c: Container = app.state.container
    async with c.uow() as uow:
        g = await uow.generations.get(gid)
    assert g is not None
    return g


async def _wallet(app: FastAPI, aid: str) -> tuple[int, int]:
    c: Container = app.state.container
    async with c.uow() as uow:
        account = await uow.accounts.get(aid)
    assert account is not None
    return account.balance_nanos, account.held_nanos


async def _wait_status(client: httpx.AsyncClient, gid: str, auth: dict[str, str], status: str) -> dict[str, Any]:
    for _ in range(200):
        body: dict[str, Any] = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"generation {gid} never reached {status}: {body['status']}")


async def test_thirty_parallel_runs_on_a_small_balance_cost_at_most_what_was_held_and_write_off_nothing(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(
        db_url,
        tmp_path,
        sandbox_run_seconds=1.5,
        tool_overrides=json.dumps({"txt2img": {"expected_seconds": 0.1}}),
        max_concurrent_runs=50,
        max_runs_per_minute=1000,
    ) as (app, client):
        aid, auth = await funded_key(app, "0.005")
        answers = await asyncio.gather(
            *(client.post("/api/v1/generations", headers=auth, json=TXT2IMG) for _ in range(30))
        )
        started = [r.json()["id"] for r in answers if r.status_code == 202]
        refused = [r.json() for r in answers if r.status_code != 202]
        assert started, [r.text for r in answers]
        assert all(e["error"]["code"] == "INSUFFICIENT_FUNDS" for e in refused), refused
        ended = [await wait_terminal(client, gid, auth, seconds=30) for gid in started]
        held = sum(int(parse_usd(b["heldUsd"])) for b in ended)
        charged = sum(int(parse_usd(b["costUsd"])) for b in ended)
        assert all(b["shortfallUsd"] == "0.000000000" for b in ended), ended
        assert all(parse_usd(b["costUsd"], allow_zero=True) <= parse_usd(b["heldUsd"]) for b in ended)
        assert held <= 5_000_000
        assert await _wallet(app, aid) == (5_000_000 - charged, 0)
        c: Container = app.state.container
        assert await economy.verify(c.uow()) == (1, [])
        assert (await economy.written_off(c.uow())).nanos == 0


async def test_a_run_that_reaches_its_hold_is_stopped_at_the_backend_and_charged_exactly_the_hold(
    db_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    async with clocked_app(db_url, tmp_path, clock, sandbox_run_seconds=8.0, tool_overrides=EXPECT_ONE_SECOND) as (
        app,
        client,
    ):
        aid, auth = await funded_key(app, "0.01")
        r = await client.post("/api/v1/generations", headers=auth, json=TXT2IMG)
        assert r.status_code == 202, r.text
        gid = r.json()["id"]
        assert r.json()["heldUsd"] == "0.010000000"  # all it had: 15 minutes of A10G would be $0.30
        await _wait_status(client, gid, auth, "running")
        # $0.01 buys 29.7 s of A10G; 31 s later by Noema's clock the reconciler must stop it.
        clock.advance(seconds=31)
        c: Container = app.state.container
        await reconcile.reconcile_due(
            c.uow, c.clock, c.backend, metrics=c.metrics, poll_every=timedelta(seconds=5), quiet_for=timedelta(0)
        )
        g = await _generation(app, gid)
        assert g.status.value == "cancelled" and g.stopped_at_hold
        # Charged exactly the hold; the 1.33 s it ran past it (31 s seen, 29.67 s paid) is written off, on record.
        assert g.cost_nanos == 10_000_000
        assert g.shortfall_nanos == 31 * A10G_RATE - 10_000_000
        assert g.failure_reason is not None and "$0.01" in g.failure_reason
        assert await _wallet(app, aid) == (0, 0)
        assert g.run_id is not None and (await c.backend.get_run(g.run_id)).status is RunStatus.CANCELLED


async def test_a_run_within_its_hold_is_left_running(db_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    async with clocked_app(db_url, tmp_path, clock, sandbox_run_seconds=8.0, tool_overrides=EXPECT_ONE_SECOND) as (
        app,
        client,
    ):
        _aid, auth = await funded_key(app, "0.01")
        gid = (await client.post("/api/v1/generations", headers=auth, json=TXT2IMG)).json()["id"]
        await _wait_status(client, gid, auth, "running")
        clock.advance(seconds=28)
        c: Container = app.state.container
        await reconcile.reconcile_due(
            c.uow, c.clock, c.backend, metrics=c.metrics, poll_every=timedelta(seconds=5), quiet_for=timedelta(0)
        )
        assert (await _generation(app, gid)).status.value == "running"


async def test_gpu_time_comes_from_the_backends_own_timestamps_not_from_when_noema_heard(
    db_url: str, tmp_path: Path
) -> None:
    # Noema's clock stands still: every webhook is heard "at the same moment".
    clock = FakeClock()
    async with clocked_app(db_url, tmp_path, clock, sandbox_run_seconds=1.0) as (app, client):
        _aid, auth = await funded_key(app, "1")
        gid = (await client.post("/api/v1/generations", headers=auth, json=TXT2IMG)).json()["id"]
        body = await wait_terminal(client, gid, auth)
        assert body["status"] == "succeeded", body
        c: Container = app.state.container
        run = await c.backend.get_run(body["runId"])
        assert run.started_at is not None and run.ended_at is not None
        ms = int((run.ended_at - run.started_at).total_seconds() * 1000)
        assert ms >= 700  # the sandbox runs from 15% to 100% of its second
        assert parse_usd(body["costUsd"]) == round(ms * A10G_RATE / 1000)
        assert body["durationSeconds"] == (run.ended_at - run.started_at).total_seconds()


async def test_a_forged_success_is_checked_with_the_backend_and_changes_nothing(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=4.0) as (app, client):
        aid, auth = await funded_key(app, "1")
        gid = (await client.post("/api/v1/generations", headers=auth, json=TXT2IMG)).json()["id"]
        body = await _wait_status(client, gid, auth, "running")
        c: Container = app.state.container
        assert c.sandbox is not None
        record = c.sandbox.store.get(body["runId"])
        assert record is not None and record.webhook is not None
        # Whoever learnt the webhook URL claims success a moment after submit, with an output of their own.
        forged = {
            "event_type": "run.updated",
            "run_id": body["runId"],
            "status": "success",
            "progress": 1.0,
            "outputs": [
                {"data": {"images": [{"url": "https://evil.example/x.png", "filename": "x.png", "type": "output"}]}}
            ],
        }
        r = await client.post(record.webhook.removeprefix("http://noema.test"), json=forged)
        assert r.status_code == 200
        g = await _generation(app, gid)
        assert not g.is_terminal and g.settled_at is None and g.outputs == []
        ended = await wait_terminal(client, gid, auth)
        assert ended["status"] == "succeeded"
        assert all("evil.example" not in (o.get("url") or "") for o in ended["outputs"])
        assert parse_usd(ended["costUsd"]) > 2 * A10G_RATE  # the real ~3.4 s on the GPU, not a forged instant
        assert (await _wallet(app, aid))[1] == 0


async def test_cancelling_while_the_submit_is_on_its_way_stops_the_run_it_made(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=3.0) as (app, client):
        c: Container = app.state.container
        slow = SlowSubmitBackend(c.generations.backend)
        c.generations.backend = slow
        aid, auth = await funded_key(app, "1")
        submit = asyncio.create_task(client.post("/api/v1/generations", headers=auth, json=TXT2IMG))
        await asyncio.wait_for(slow.run_made.wait(), 10)
        [pending] = (await client.get("/api/v1/generations", headers=auth)).json()["items"]
        assert pending["status"] == "pending"
        cancelled = await client.post(f"/api/v1/generations/{pending['id']}/cancel", headers=auth)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        slow.answer.set()
        await submit
        [run_id] = slow.run_ids
        for _ in range(100):
            run = await c.backend.get_run(run_id)
            if run.status is not None and run.status.is_terminal:
                break
            await asyncio.sleep(0.05)
        assert run.status is RunStatus.CANCELLED
        g = await _generation(app, pending["id"])
        assert g.status.value == "cancelled" and g.run_id == run_id and g.cost_nanos == 0
        assert await _wallet(app, aid) == (1_000_000_000, 0)
