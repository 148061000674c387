"""Delivery latency: from the final webhook to the first byte of the result at the platform (Telegram).

Noema runs with its workers on and Telegram pointed at the fake Bot API server over real loopback HTTP.
The backend is instant: the benchmark itself posts each run's final ``success`` webhook and notes the
moment; the fake records when the ``sendMessage`` carrying the result arrived. Two figures:

* one run at a time: the latency with the outbox wake-up, side by side with the same runs when only the
  backstop poll finds the row (the wake-up switched off in the same process); the floor is a direct
  ``sendMessage`` from this process to the same fake (what the platform call itself costs);
* many chats at once: runs ending at a steady rate across chats; the lag of each result behind its run's
  end (p50/p95) and how long after the last run ended the last result arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from tests.fakes.telegram_api import FakeTelegram

from benchmarks.harness import BASE_URL, InstantBackend, bench_settings, percentile, table
from noema.bootstrap import Container, build_container
from noema.domain.accounts import Platform
from noema.domain.generation import GenerationStatus
from noema.domain.money import parse_usd
from noema.domain.runs import OutputKind, RunOutput, RunStatus, RunUpdate
from noema.entrypoints.http.app import create_app
from noema.ports import Backend
from noema.services import accounts, economy
from noema.services.generations import GenerationRequest

SECRET = "bench-webhook-secret-0123456789"


@dataclass(frozen=True)
class Plan:
    """Runs one at a time (each way), and the many-chats run: chats and the rate at which their runs end."""

    sequential: int
    chats: int
    ends_per_second: float


FULL = Plan(sequential=60, chats=300, ends_per_second=15.0)
QUICK = Plan(sequential=15, chats=60, ends_per_second=15.0)


class FinishingBackend(InstantBackend):
    """The instant backend that also answers ``get_run`` for runs the benchmark has ended (the webhook's confirm)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.ended: dict[str, RunUpdate] = {}

    async def get_run(self, run_id: str) -> RunUpdate:
        """The run as the benchmark ended it."""
        return self.ended[run_id]


@dataclass
class Rig:
    """Noema (workers on) with Telegram against the fake, an instant backend, a funded Telegram account."""

    container: Container
    client: httpx.AsyncClient
    fake: FakeTelegram
    backend: FinishingBackend
    seen: int = 0
    arrivals: dict[int, float] = field(default_factory=dict)  #: chat -> first result call (wall clock)

    def collect(self) -> None:
        """Note the first result call per chat among the calls the fake recorded since last time."""
        calls = self.fake.calls[self.seen :]
        self.seen += len(calls)
        for call in calls:
            chat = call.params.get("chat_id")
            if call.method == "sendMessage" and chat is not None and call.ok:
                self.arrivals.setdefault(int(chat), call.time)

    async def arrival(self, chat: int, *, seconds: float = 30) -> float:
        """When the result for ``chat`` reached the fake."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.collect()
            if chat in self.arrivals:
                return self.arrivals[chat]
            await asyncio.sleep(0.002)
        raise RuntimeError(f"no result reached chat {chat} within {seconds} s")


@contextlib.asynccontextmanager
async def started(db_url: str, workdir: Path, *, wake_up: bool) -> AsyncIterator[Rig]:
    """A started Noema with its delivery worker; ``wake_up=False`` leaves only the backstop poll."""
    async with FakeTelegram() as fake:
        settings = bench_settings(
            db_url,
            workdir,
            workers_enabled=True,
            telegram_bot_token=fake.token,
            telegram_api_base_url=fake.url,
            telegram_webhook_secret=SECRET,
        )
        container = build_container(settings)
        if not wake_up:
            container.uow.signal = None  # commits notify nobody: the worker finds rows by its poll
        app = create_app(container)
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            await container.catalog.tools()
            backend = FinishingBackend(container.generations.backend)
            container.generations.backend = backend
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=60
            ) as client:
                yield Rig(container, client, fake, backend)


@dataclass(frozen=True)
class Submitted:
    """A run waiting for its end: the generation, its webhook token and run id, its chat."""

    generation_id: str
    token: str
    run_id: str
    chat: int


async def chat_account(rig: Rig, chat: int) -> str:
    """The funded account of the Telegram user of a private chat (one person per chat, as in real use)."""
    c = rig.container
    found = await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id=str(chat))
    await economy.credit(c.uow(), c.clock, economy.Transfer(account_id=found.account.id, amount_nanos=parse_usd("10")))
    return found.account.id


async def submit(rig: Rig, chat: int) -> Submitted:
    """A txt2img run asked from a Telegram chat, through the real request path, now ``submitted``."""
    generation = await rig.container.generations.request(
        GenerationRequest(
            account_id=await chat_account(rig, chat),
            tool_ref="txt2img",
            inputs={"input_text": f"a fox for chat {chat}"},
            platform="telegram",
            delivery={"chat_id": chat, "message_id": 1},
        )
    )
    if generation.status is not GenerationStatus.SUBMITTED:
        raise RuntimeError(f"generation {generation.id} is {generation.status.value}, not submitted")
    call = rig.backend.calls[-1]
    return Submitted(generation.id, call.token, call.run_id, chat)


async def finish(rig: Rig, run: Submitted) -> float:
    """Post the run's final success webhook (a text result); returns when it was sent (wall clock)."""
    now = datetime.now(UTC)
    rig.backend.ended[run.run_id] = RunUpdate(
        run_id=run.run_id,
        status=RunStatus.SUCCESS,
        progress=1.0,
        outputs=(RunOutput(kind=OutputKind.TEXT, text=f"done for {run.chat}", node_id="9"),),
        started_at=now - timedelta(seconds=2),
        ended_at=now,
    )
    event = {
        "event_type": "run.updated",
        "status": "success",
        "progress": 1,
        "run_id": run.run_id,
        "outputs": [{"node_id": "9", "data": {"text": [f"done for {run.chat}"]}}],
    }
    sent = time.time()
    response = await rig.client.post(
        f"/api/webhook/comfydeploy?generation_id={run.generation_id}&token={run.token}",
        content=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"final webhook: {response.status_code} {response.text[:200]}")
    return sent


async def one_at_a_time(rig: Rig, count: int, first_chat: int) -> list[float]:
    """Latency (s) of ``count`` results, each run ended only after the previous result arrived."""
    latencies = []
    for i in range(count):
        run = await submit(rig, first_chat + i)
        await asyncio.sleep(0.05)  # let the worker settle back to waiting, as between real runs
        sent = await finish(rig, run)
        latencies.append(await rig.arrival(run.chat) - sent)
    return latencies


async def floor(fake: FakeTelegram, count: int) -> list[float]:
    """Latency (s) of a direct ``sendMessage`` from this process to the fake: the platform call itself."""
    latencies = []
    async with httpx.AsyncClient(base_url=fake.url, timeout=30) as http:
        for i in range(count):
            before = len(fake.calls)
            sent = time.time()
            response = await http.post(f"/bot{fake.token}/sendMessage", json={"chat_id": 9_000_000 + i, "text": "x"})
            response.raise_for_status()
            latencies.append(fake.calls[before].time - sent)
    return latencies


@dataclass(frozen=True)
class Burst:
    """Many chats: each result's lag behind its run's end, and the last result after the last end."""

    chats: int
    lags: list[float]
    tail: float
    span: float  #: seconds from the first run's end to the last's


async def many_chats(rig: Rig, plan: Plan, first_chat: int) -> Burst:
    """``plan.chats`` chats' runs ending at ``plan.ends_per_second``; every result awaited."""
    runs = [await submit(rig, first_chat + i) for i in range(plan.chats)]
    ends: dict[int, float] = {}
    gap = 1.0 / plan.ends_per_second
    start = time.monotonic()
    for i, run in enumerate(runs):
        delay = start + i * gap - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        ends[run.chat] = await finish(rig, run)
    arrivals = {run.chat: await rig.arrival(run.chat, seconds=120) for run in runs}
    lags = [arrivals[c] - ends[c] for c in ends]
    return Burst(plan.chats, lags, max(arrivals.values()) - max(ends.values()), max(ends.values()) - min(ends.values()))


@dataclass(frozen=True)
class DeliveryResult:
    """Every figure of one database."""

    plan: Plan
    woken: list[float]
    polled: list[float]
    direct: list[float]
    burst: Burst


async def run(db_url: str, workdir: Path, *, quick: bool = False) -> DeliveryResult:
    """One-at-a-time with the wake-up, the burst, then one-at-a-time with the poll only (a second app)."""
    plan = QUICK if quick else FULL
    async with started(db_url, workdir / "woken", wake_up=True) as rig:
        await one_at_a_time(rig, 3, 1_000_000)  # warm-up
        woken = await one_at_a_time(rig, plan.sequential, 1_100_000)
        direct = await floor(rig.fake, plan.sequential)
        burst = await many_chats(rig, plan, 2_000_000)
    async with started(db_url, workdir / "polled", wake_up=False) as rig:
        polled = await one_at_a_time(rig, max(plan.sequential // 3, 5), 3_000_000)
    return DeliveryResult(plan, woken, polled, direct, burst)


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}"


def report(result: DeliveryResult) -> str:
    """The figures as small tables."""
    rows = [
        ["final webhook -> result at Telegram (wake-up)", str(len(result.woken)), *_row(result.woken)],
        ["same, backstop poll only (wake-up off)", str(len(result.polled)), *_row(result.polled)],
        ["direct sendMessage to the fake (floor)", str(len(result.direct)), *_row(result.direct)],
    ]
    b = result.burst
    ratio = percentile(result.woken, 0.5) / percentile(result.direct, 0.5)
    return "\n".join(
        [
            "Delivery latency, one run at a time (milliseconds)",
            table(["", "n", "p50", "p95", "max"], rows),
            f"ratio of p50s wake-up/floor: {ratio:.1f}; poll-only/wake-up: "
            f"{percentile(result.polled, 0.5) / percentile(result.woken, 0.5):.1f}",
            "",
            f"{b.chats} chats, runs ending at {result.plan.ends_per_second:g}/s over {b.span:.1f} s: "
            f"lag p50 {_ms(b.lags, 0.5)} ms, p95 {_ms(b.lags, 0.95)} ms, max {_ms(b.lags, 1.0)} ms; "
            f"last result {b.tail * 1000:.0f} ms after the last run ended",
        ]
    )


def _row(values: list[float]) -> list[str]:
    return [_ms(values, 0.5), _ms(values, 0.95), _ms(values, 1.0)]


def as_json(result: DeliveryResult) -> Mapping[str, Any]:
    """The figures for the JSON file."""
    b = result.burst
    return {
        "one_at_a_time_ms": {
            name: {"n": len(v), "p50": percentile(v, 0.5) * 1000, "p95": percentile(v, 0.95) * 1000}
            for name, v in (("wake_up", result.woken), ("poll_only", result.polled), ("floor", result.direct))
        },
        "many_chats": {
            "chats": b.chats,
            "lag_p50_ms": percentile(b.lags, 0.5) * 1000,
            "lag_p95_ms": percentile(b.lags, 0.95) * 1000,
            "last_result_after_last_end_ms": b.tail * 1000,
        },
    }
