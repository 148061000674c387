"""Webhook throughput: ComfyDeploy ``run.updated`` progress events applied per second, each a full transaction.

The baseline is a no-op ``POST`` route on the same app, driven by the same client with the same bodies and
concurrency; the figure that matters is the ratio webhook/no-op (the machine is shared and noisy).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.harness import NOOP_PATH, Bench, bench_settings, funded_account, started_app, table
from noema.domain.delivery import DeliveryKind, DeliveryStatus, dedupe_key
from noema.domain.generation import GenerationStatus
from noema.domain.progress_words import humane
from noema.services.generations import GenerationRequest

WEBHOOK_PATH = "/api/webhook/comfydeploy"
JSON_HEADERS = {"Content-Type": "application/json"}
LIVE_STATUS = "Executing KSampler"


@dataclass(frozen=True)
class Plan:
    """How much to send: measured events, warm-up events, in-flight requests, generations, alternating rounds."""

    events: int
    warmup: int
    concurrency: int
    generations: int
    rounds: int


FULL = Plan(events=2000, warmup=128, concurrency=8, generations=32, rounds=4)
QUICK = Plan(events=300, warmup=48, concurrency=8, generations=16, rounds=2)


@dataclass(frozen=True)
class Target:
    """A generation in ``submitted`` state and what its webhooks need."""

    generation_id: str
    token: str
    run_id: str


@dataclass(frozen=True)
class WebhookResult:
    """Seconds spent on the same number of webhook and no-op events, and the per-round ratios."""

    plan: Plan
    webhook_seconds: float
    noop_seconds: float
    round_ratios: list[float]
    checked_generations: int

    @property
    def webhook_rate(self) -> float:
        """Webhook events applied per second."""
        return self.plan.events / self.webhook_seconds

    @property
    def noop_rate(self) -> float:
        """No-op requests per second."""
        return self.plan.events / self.noop_seconds

    @property
    def ratio(self) -> float:
        """Webhook throughput as a fraction of the no-op throughput."""
        return self.webhook_rate / self.noop_rate


Batch = list[list[tuple[str, bytes]]]  #: per in-flight worker: (url, JSON body) in sending order


class EventSource:
    """Progress events for the generations, strictly increasing per generation; each worker owns its generations.

    A worker sends one request at a time, so a generation never sees two of its events at once and its
    progress only ever rises: the last value sent is the value that must be persisted.
    """

    def __init__(self, targets: list[Target], concurrency: int, total_events: int) -> None:
        self.owned = [targets[w::concurrency] for w in range(concurrency)]
        self.sent = [0] * concurrency
        per_worker = math.ceil(total_events / concurrency)
        self.steps = math.ceil(per_worker / min(len(o) for o in self.owned)) + 1
        self.last: dict[str, float] = {}

    def batch(self, events: int) -> Batch:
        """The next ``events`` webhook events, split across the workers."""
        workers = len(self.owned)
        counts = [events // workers + (1 if w < events % workers else 0) for w in range(workers)]
        batch: Batch = []
        for w, count in enumerate(counts):
            mine: list[tuple[str, bytes]] = []
            for j in range(self.sent[w], self.sent[w] + count):
                target = self.owned[w][j % len(self.owned[w])]
                progress = round((j // len(self.owned[w]) + 1) / self.steps, 6)
                self.last[target.generation_id] = progress
                mine.append((_url(target), _body(target, progress)))
            self.sent[w] += count
            batch.append(mine)
        return batch


def _url(target: Target) -> str:
    return f"{WEBHOOK_PATH}?generation_id={target.generation_id}&token={target.token}"


def _body(target: Target, progress: float) -> bytes:
    event = {
        "event_type": "run.updated",
        "status": "running",
        "live_status": LIVE_STATUS,
        "progress": progress,
        "run_id": target.run_id,
        "outputs": [],
    }
    return json.dumps(event).encode()


def as_noop(batch: Batch) -> Batch:
    """The same requests (query string and body included) sent to the no-op route instead."""
    return [[(url.replace(WEBHOOK_PATH, NOOP_PATH, 1), body) for url, body in mine] for mine in batch]


async def drive(client: httpx.AsyncClient, batch: Batch) -> float:
    """Send every worker's requests, the workers concurrently; seconds taken. Any non-200 is an error."""
    failures: list[str] = []

    async def worker(requests: list[tuple[str, bytes]]) -> None:
        for url, body in requests:
            response = await client.post(url, content=body, headers=JSON_HEADERS)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(requests) for requests in batch))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return elapsed


async def submitted_generations(bench: Bench, count: int) -> list[Target]:
    """``count`` Telegram generations of txt2img in ``submitted`` state, through the real request path."""
    aid, _ = await funded_account(bench.container, "100")
    targets = []
    for i in range(count):
        generation = await bench.container.generations.request(
            GenerationRequest(
                account_id=aid,
                tool_ref="txt2img",
                inputs={"input_text": f"benchmark {i}"},
                platform="telegram",  # a chat run: each progress event also rolls its outbox row
                delivery={"chat_id": 1000 + i, "message_id": 1, "progress_message_id": 2},
            )
        )
        if generation.status is not GenerationStatus.SUBMITTED:
            raise RuntimeError(f"generation {generation.id} is {generation.status.value}, not submitted")
        call = bench.backend.calls[-1]
        assert call.generation_id == generation.id and call.run_id == generation.run_id
        targets.append(Target(generation.id, call.token, call.run_id))
    return targets


async def verify(bench: Bench, expected: dict[str, float]) -> None:
    """Every generation is running with the last progress sent, and its progress message is due.

    A progress message that is due shows the run as it is when it is sent (the delivery worker reads
    the generation then), so the generation's own row is what it will show.
    """
    async with bench.container.uow() as uow:
        for gid, progress in expected.items():
            generation = await uow.generations.get(gid)
            assert generation is not None
            if generation.status is not GenerationStatus.RUNNING or abs(generation.progress - progress) > 1e-9:
                raise RuntimeError(
                    f"generation {gid}: {generation.status.value} at {generation.progress}, expected running at "
                    f"{progress}: the webhooks were not applied"
                )
            if generation.live_status != humane(LIVE_STATUS) or generation.started_at is None:
                raise RuntimeError(f"generation {gid}: live status or start time not persisted")
            message = await uow.deliveries.by_key(dedupe_key(gid, DeliveryKind.PROGRESS))
            if message is None or message.status is not DeliveryStatus.PENDING:
                raise RuntimeError(f"generation {gid}: no progress message is due")


async def run(db_url: str, workdir: Path, *, quick: bool = False) -> WebhookResult:
    """Create the generations, warm up, then alternate no-op and webhook rounds; verify what was persisted."""
    plan = QUICK if quick else FULL
    async with started_app(bench_settings(db_url, workdir)) as bench:
        targets = await submitted_generations(bench, plan.generations)
        source = EventSource(targets, plan.concurrency, plan.warmup + plan.events)
        warm = source.batch(max(plan.warmup, plan.generations))  # every generation moves to running here
        await drive(bench.client, as_noop(warm))
        await drive(bench.client, warm)
        webhook_seconds = noop_seconds = 0.0
        ratios = []
        for r in range(plan.rounds):
            events = plan.events // plan.rounds + (1 if r < plan.events % plan.rounds else 0)
            batch = source.batch(events)
            if r % 2 == 0:  # alternate which goes first, so drift in the machine's load evens out
                noop = await drive(bench.client, as_noop(batch))
                hook = await drive(bench.client, batch)
            else:
                hook = await drive(bench.client, batch)
                noop = await drive(bench.client, as_noop(batch))
            webhook_seconds, noop_seconds = webhook_seconds + hook, noop_seconds + noop
            ratios.append(noop / hook)
        await verify(bench, source.last)
    return WebhookResult(plan, webhook_seconds, noop_seconds, ratios, len(source.last))


def report(result: WebhookResult) -> str:
    """The figures as a small table."""
    plan = result.plan
    rows = [
        ["webhook run.updated", str(plan.events), f"{result.webhook_seconds:.3f}", f"{result.webhook_rate:,.0f}"],
        ["no-op POST (baseline)", str(plan.events), f"{result.noop_seconds:.3f}", f"{result.noop_rate:,.0f}"],
    ]
    spread = ", ".join(f"{r:.3f}" for r in result.round_ratios)
    return "\n".join(
        [
            f"Webhook events applied ({plan.concurrency} in flight, {plan.generations} generations, "
            f"after {max(plan.warmup, plan.generations)} warm-up events)",
            table(["", "events", "seconds", "events/s"], rows),
            f"ratio webhook/no-op: {result.ratio:.3f}   (per round: {spread})",
            f"verified: {result.checked_generations} generations running with the last progress persisted",
        ]
    )
