"""200 generations from 20 accounts with limited balances and every sandbox fault turned on.

Afterwards every generation has ended, no balance is negative, the ledger has no drift, every
succeeded generation has exactly one debit, and every ended generation exactly one outbox message.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.domain.delivery import DeliveryKind, DeliveryStatus
from noema.domain.generation import LIVE, GenerationStatus
from noema.ports import GenerationFilter
from noema.services import economy, history
from tests.conftest import funded_key, running_app

FAULTS = "webhook_duplicate=0.3,webhook_reorder=0.3,webhook_drop=0.2,submit_error=0.1,run_fail=0.1"
TOOLS = [("txt2img", {"input_text": "soak"}), ("animate", {"input_text": "soak", "frames": 8})]


async def _ask(client: httpx.AsyncClient, auth: dict[str, str], n: int) -> tuple[list[str], int]:
    """Ask for ``n`` generations, waiting out the concurrency cap; returns (ids, refusals for funds)."""
    ids, poor = [], 0
    for i in range(n):
        tool, inputs = TOOLS[i % 2]
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            r = await client.post("/api/v1/generations", headers=auth, json={"toolId": tool, "inputs": inputs})
            if r.status_code == 429 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                continue
            refused = r.status_code == 400 and r.json()["error"]["code"] == "INSUFFICIENT_FUNDS"
            busy = refused and r.json()["error"]["details"]["heldUsd"] != "0.000000000"
            if busy and asyncio.get_running_loop().time() < deadline:
                # The balance is held by this account's runs in flight (each holds the most it may cost).
                await asyncio.sleep(0.05)
                continue
            if refused:
                poor += 1
            else:
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            break
    return ids, poor


async def _all_ended(app: FastAPI, seconds: float) -> None:
    c: Container = app.state.container
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        live = await history.search(c.uow(), GenerationFilter(status_in=tuple(LIVE)), limit=5, cursor=None)
        if not live.items:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"generations still live: {[(g.id, g.status.value) for g in live.items]}")


async def test_two_hundred_faulty_generations_all_end_charged_once_and_told_once(db_url: str, tmp_path: Path) -> None:
    async with running_app(
        db_url,
        tmp_path,
        sandbox_faults=FAULTS,
        sandbox_run_seconds=0.2,
        quiet_seconds=0.5,
        poll_seconds=0.5,
        workers_enabled=True,
        max_runs_per_minute=10_000,
    ) as (app, client):
        # Limited balances: the smallest cannot cover even one estimate, the largest covers many.
        accounts = [await funded_key(app, f"{0.004 * (i + 1):.3f}") for i in range(20)]
        results = await asyncio.gather(*(_ask(client, auth, 10) for _, auth in accounts))
        ids = [gid for batch, _ in results for gid in batch]
        assert len(ids) + sum(poor for _, poor in results) == 200
        assert len(ids) >= 100
        await _all_ended(app, 120)
        c: Container = app.state.container
        checked, drifts = await economy.verify(c.uow())
        assert (checked, drifts) == (20, [])
        # Every run cost at most its hold, and its hold was there to pay it: nothing was written off.
        assert await economy.written_off(c.uow()) == economy.WrittenOff(0, 0)
        succeeded = 0
        async with c.uow() as uow:
            for gid in ids:
                g = await uow.generations.get(gid)
                assert g is not None and g.is_terminal and g.settled_at is not None
                account = await uow.accounts.get(g.account_id)
                assert account is not None and account.balance_nanos >= 0 and account.held_nanos == 0
                debit = await uow.ledger.by_key(f"settle:{gid}:debit")
                assert g.cost_nanos <= g.hold_nanos and g.shortfall_nanos == 0
                if g.status is GenerationStatus.SUCCEEDED:
                    succeeded += 1
                    assert debit is not None and debit.amount_nanos == g.cost_nanos > 0
                else:
                    assert debit is None and g.cost_nanos == 0
                messages = [d for d in await uow.deliveries.for_generation(gid) if d.kind is not DeliveryKind.PROGRESS]
                assert len(messages) == 1
                assert messages[0].kind is (
                    DeliveryKind.RESULT if g.status is GenerationStatus.SUCCEEDED else DeliveryKind.FAILURE
                )
        assert succeeded >= 50
        # The delivery worker drains the outbox: every message sent, each on its first attempt.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            async with c.uow() as uow:
                messages = [
                    d
                    for gid in ids
                    for d in await uow.deliveries.for_generation(gid)
                    if d.kind is not DeliveryKind.PROGRESS
                ]
            if all(d.status is DeliveryStatus.SENT for d in messages) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.25)
        assert len(messages) == len(ids)
        assert all(d.status is DeliveryStatus.SENT and d.attempts == 1 for d in messages)
