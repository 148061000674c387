"""200 generations from 20 accounts with limited balances and every sandbox fault turned on.

Half the accounts ask through the public API, half from Telegram chats (Noema sends those results to
a fake Bot API). Afterwards every generation has ended, no balance is negative, the ledger has no
drift, every succeeded generation has exactly one debit, every chat generation exactly one outbox
message, sent once, and the API generations (read and streamed, never sent) no outbox row at all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.delivery import DeliveryKind, DeliveryStatus
from noema.domain.errors import Busy, InsufficientFunds, LimitExceeded
from noema.domain.generation import LIVE, GenerationStatus
from noema.domain.money import parse_usd
from noema.ports import GenerationFilter
from noema.services import accounts, economy, history
from noema.services.generations import GenerationRequest
from tests.conftest import funded_key, running_app
from tests.e2e.chat_harness import assert_told_once, drained_chat_messages
from tests.fakes.telegram_api import FakeTelegram

FAULTS = "webhook_duplicate=0.3,webhook_reorder=0.3,webhook_drop=0.2,submit_error=0.1,run_fail=0.1"
TOOLS: list[tuple[str, dict[str, Any]]] = [
    ("txt2img", {"input_text": "soak"}),
    ("animate", {"input_text": "soak", "frames": 8}),
]


async def _ask(client: httpx.AsyncClient, auth: dict[str, str], n: int) -> tuple[list[str], int]:
    """Ask for ``n`` generations, waiting out the concurrency cap; returns (ids, refusals for funds)."""
    ids, poor = [], 0
    for i in range(n):
        tool, inputs = TOOLS[i % 2]
        deadline = asyncio.get_running_loop().time() + 180
        while True:
            r = await client.post("/api/v1/generations", headers=auth, json={"toolId": tool, "inputs": inputs})
            if r.status_code in (429, 503) and asyncio.get_running_loop().time() < deadline:
                # Told to come back: at once for the cap on runs at once (one of ours ends any moment),
                # after Retry-After when Noema is busy, as a well-behaved client would.
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")) if r.status_code == 503 else 0.05)
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


async def _chat_account(c: Container, user: int, usd: str) -> str:
    found = await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id=str(user))
    await economy.credit(c.uow(), c.clock, economy.Transfer(account_id=found.account.id, amount_nanos=parse_usd(usd)))
    return found.account.id


async def _ask_chat(c: Container, aid: str, chat: int, n: int) -> tuple[list[str], int]:
    """As ``_ask``, from a Telegram chat (the path the chat handlers take once a command is parsed)."""
    ids, poor = [], 0
    for i in range(n):
        tool, inputs = TOOLS[i % 2]
        deadline = asyncio.get_running_loop().time() + 180
        while True:
            request = GenerationRequest(
                account_id=aid,
                tool_ref=tool,
                inputs=inputs,
                platform="telegram",
                delivery={"chat_id": chat, "message_id": i + 1},
            )
            try:
                ids.append((await c.generations.request(request)).id)
            except (LimitExceeded, Busy) as exc:  # told to come back
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                await asyncio.sleep(float(exc.retry_after or 1) if isinstance(exc, Busy) else 0.05)
                continue
            except InsufficientFunds as exc:
                if (exc.details or {}).get("heldUsd", "0.000000000") != "0.000000000" and (
                    asyncio.get_running_loop().time() < deadline
                ):
                    await asyncio.sleep(0.05)
                    continue
                poor += 1
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


@pytest.mark.slow  # minutes, not seconds (measured with --durations)
async def test_two_hundred_faulty_generations_all_end_charged_once_and_told_once(db_url: str, tmp_path: Path) -> None:
    async with (
        FakeTelegram() as telegram,
        running_app(
            db_url,
            tmp_path,
            telegram_bot_token=telegram.token,
            telegram_api_base_url=telegram.url,
            telegram_webhook_secret="soak-webhook-secret-0123456789",
            sandbox_faults=FAULTS,
            sandbox_run_seconds=0.2,
            quiet_seconds=0.5,
            poll_seconds=0.5,
            workers_enabled=True,
            max_runs_per_minute=10_000,
        ) as (app, client),
    ):
        # Limited balances: the smallest cannot cover even one estimate, the largest covers many.
        c: Container = app.state.container
        api_accounts = [await funded_key(app, f"{0.004 * (i + 1):.3f}") for i in range(0, 20, 2)]
        chats = {700 + i: await _chat_account(c, 700 + i, f"{0.004 * (i + 1):.3f}") for i in range(1, 20, 2)}
        results = await asyncio.gather(
            *(_ask(client, auth, 10) for _, auth in api_accounts),
            *(_ask_chat(c, aid, chat, 10) for chat, aid in chats.items()),
        )
        api_ids = {gid for batch, _ in results[:10] for gid in batch}
        ids = [gid for batch, _ in results for gid in batch]
        chat_ids = [gid for gid in ids if gid not in api_ids]
        assert len(ids) + sum(poor for _, poor in results) == 200
        assert len(ids) >= 100 and len(chat_ids) >= 40
        await _all_ended(app, 120)
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
                rows = await uow.deliveries.for_generation(gid)
                if gid in api_ids:
                    assert rows == [], "an API run is streamed, never sent: it gets no outbox rows"
                    continue
                messages = [d for d in rows if d.kind is not DeliveryKind.PROGRESS]
                assert len(messages) == 1
                assert messages[0].kind is (
                    DeliveryKind.RESULT if g.status is GenerationStatus.SUCCEEDED else DeliveryKind.FAILURE
                )
        assert succeeded >= 50
        # The delivery worker drains the outbox: every chat message sent, each on its first attempt.
        messages = await drained_chat_messages(c, chat_ids)
        assert len(messages) == len(chat_ids)
        assert all(d.status is DeliveryStatus.SENT and d.attempts == 1 for d in messages)
        # Told once: each chat got exactly one message (its result or its failure) per generation.
        assert_told_once(telegram, {chat: len(batch) for (batch, _), chat in zip(results[10:], chats, strict=True)})
