"""A fault soak of the self-hosted ComfyUI backend, on SQLite and PostgreSQL.

100 runs over two fake servers whose websockets keep dying, one of which restarts mid-way and loses
its queue.

Half the runs come from Telegram chats (Noema sends their results to a fake Bot API), half from the
public API. Afterwards every run has ended, the ledger has no drift, each run was charged once (a
succeeded run at its own server's rate, anything else nothing) and each chat run told once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.delivery import DeliveryKind, DeliveryStatus
from noema.domain.errors import Busy, LimitExceeded
from noema.domain.generation import GenerationStatus
from noema.domain.money import parse_usd
from noema.domain.pricing import parse_rates
from noema.services import accounts, economy
from noema.services.generations import GenerationRequest
from noema.services.settlement import cost_of_run
from tests.conftest import funded_key, running_app
from tests.e2e.chat_harness import assert_told_once, drained_chat_messages
from tests.e2e.test_lifecycle_soak import _all_ended
from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.telegram_api import FakeTelegram

RATES = parse_rates({})
#: A picture of the colour asked for, inverted: every run its own colour, so the server's cache never answers.
PAINT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "paint"}},
}
#: A time limit far above the runs' own (a loaded CI machine queued one past 60 s: timed_out, not the
#: restart's loss the test is about), yet five holds of it at the L40S rate stay within an account's $1.
PAINT_TOML = """description = "A picture of one colour"
output = "image"
expected_seconds = 1
max_seconds = 240
[inputs.color]
node = "1"
field = "color"
type = "integer"
default = 0
min = 0
max = 16777215
"""
RUNS_EACH = 5  #: runs per account: 10 API accounts and 10 chats make 100


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[list[FakeComfyUI]]:
    servers = [FakeComfyUI(tmp_path / f"fake-comfyui-{n}", node_seconds=0.05) for n in range(2)]
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def _settings(tmp_path: Path, fakes: list[FakeComfyUI], telegram: FakeTelegram) -> dict[str, object]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "paint.json").write_text(json.dumps(PAINT))
    (folder / "paint.toml").write_text(PAINT_TOML)
    return {
        "backend": "comfyui",
        "comfyui_servers": f"{fakes[0].url}=A10G,{fakes[1].url}=L40S",
        "comfyui_workflows_dir": str(folder),
        "media_dir": str(tmp_path / "media"),
        "telegram_bot_token": telegram.token,
        "telegram_api_base_url": telegram.url,
        "telegram_webhook_secret": "soak-webhook-secret-0123456789",
        "quiet_seconds": 0.5,
        "poll_seconds": 0.5,
        "workers_enabled": True,
        "max_runs_per_minute": 10_000,
    }


async def _ask(client: httpx.AsyncClient, auth: dict[str, str], colors: list[int]) -> list[str]:
    """Ask for one run per colour through the public API, waiting out the cap on runs at once."""
    ids = []
    for color in colors:
        while True:
            r = await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "paint", "inputs": {"color": color}}
            )
            if r.status_code in (429, 503):
                await asyncio.sleep(0.05)
                continue
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
            break
    return ids


async def _ask_chat(c: Container, aid: str, chat: int, colors: list[int]) -> list[str]:
    """As ``_ask``, from a Telegram chat (the path the chat handlers take once a command is parsed)."""
    ids = []
    for i, color in enumerate(colors):
        request = GenerationRequest(
            account_id=aid,
            tool_ref="paint",
            inputs={"color": color},
            platform="telegram",
            delivery={"chat_id": chat, "message_id": i + 1},
        )
        while True:
            try:
                ids.append((await c.generations.request(request)).id)
            except (LimitExceeded, Busy):
                await asyncio.sleep(0.05)
                continue
            break
    return ids


async def _faults(fakes: list[FakeComfyUI], restarted: list[int]) -> int:
    """Drop every websocket every few tenths of a second, until cancelled; return how many it dropped.

    Restart the first server once it has a run going and another waiting.
    """
    dropped = 0
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(random.uniform(0.1, 0.4))
            first = fakes[0].worker
            if not restarted and first.running is not None and first.pending:
                fakes[0].restart()
                restarted.append(1)
            for fake in fakes:
                dropped += await asyncio.to_thread(fake.drop_sockets)
    return dropped


async def test_a_hundred_runs_through_dropped_sockets_and_a_lost_queue_all_end_charged_once_and_told_once(
    db_url: str, tmp_path: Path, fakes: list[FakeComfyUI]
) -> None:
    async with (
        FakeTelegram() as telegram,
        running_app(db_url, tmp_path, **_settings(tmp_path, fakes, telegram)) as (app, client),
    ):
        c: Container = app.state.container
        assert c.comfyui is not None
        colors = iter(random.sample(range(1, 0xFFFFFF), 100))
        api_accounts = [await funded_key(app, "1") for _ in range(10)]
        chats: dict[int, str] = {}
        for chat in range(800, 810):
            found = await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id=str(chat))
            await economy.credit(
                c.uow(), c.clock, economy.Transfer(account_id=found.account.id, amount_nanos=parse_usd("1"))
            )
            chats[chat] = found.account.id
        restarted: list[int] = []
        faults = asyncio.ensure_future(_faults(fakes, restarted))
        results = await asyncio.gather(
            *(_ask(client, auth, [next(colors) for _ in range(RUNS_EACH)]) for _, auth in api_accounts),
            *(_ask_chat(c, aid, chat, [next(colors) for _ in range(RUNS_EACH)]) for chat, aid in chats.items()),
        )
        await _all_ended(app, 180)
        faults.cancel()
        dropped = await faults
        assert restarted and dropped > 10, (restarted, dropped)
        api_ids = {gid for batch in results[:10] for gid in batch}
        ids = [gid for batch in results for gid in batch]
        chat_ids = [gid for gid in ids if gid not in api_ids]
        assert len(ids) == 100 and len(chat_ids) == 50

        assert await economy.verify(c.uow()) == (20, [])
        assert await economy.written_off(c.uow()) == economy.WrittenOff(0, 0)
        runs = c.comfyui.scheduler.runs
        succeeded, resubmitted = 0, 0
        async with c.uow() as uow:
            for gid in ids:
                g = await uow.generations.get(gid)
                assert g is not None and g.is_terminal and g.settled_at is not None and g.run_id is not None
                resubmitted += runs[g.run_id].resubmitted
                account = await uow.accounts.get(g.account_id)
                assert account is not None and account.held_nanos == 0
                debit = await uow.ledger.by_key(f"settle:{gid}:debit")
                if g.status is GenerationStatus.SUCCEEDED:
                    succeeded += 1
                    assert g.gpu is not None and g.rate_nanos_per_second == RATES[g.gpu]  # its own server's rate
                    assert debit is not None and debit.amount_nanos == g.cost_nanos == cost_of_run(g) > 0
                else:
                    # Only the run the restarted server was running is lost: failed, nothing charged.
                    assert g.status is GenerationStatus.FAILED and "restarted" in (g.failure_reason or ""), g
                    assert debit is None and g.cost_nanos == 0
                rows = await uow.deliveries.for_generation(gid)
                if gid in api_ids:
                    assert rows == []  # streamed, never sent
                    continue
                messages = [d for d in rows if d.kind is not DeliveryKind.PROGRESS]
                assert len(messages) == 1
        assert succeeded >= 98 and resubmitted >= 1, (succeeded, resubmitted)

        messages = await drained_chat_messages(c, chat_ids)
        assert all(d.status is DeliveryStatus.SENT and d.attempts == 1 for d in messages)
        assert_told_once(telegram, {chat: len(batch) for batch, chat in zip(results[10:], chats, strict=True)})
