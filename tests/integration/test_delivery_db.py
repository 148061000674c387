"""The delivery outbox on a real database: retries with backoff, giving up loudly, never sending twice."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import text

from noema.adapters.metrics import PrometheusMetrics
from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.delivery import Delivery, DeliveryKind, DeliveryPayload, DeliveryStatus, dedupe_key
from noema.domain.errors import NotifierError
from noema.domain.generation import GenerationStatus
from noema.services import accounts, delivery
from noema.services.outbox import enqueue
from tests.fakes.clock import FakeClock
from tests.fakes.generations import make_generation
from tests.fakes.ids import new_id
from tests.fakes.notifier import ScriptedNotifier


async def _finished_generation(c: Container, clock: FakeClock, platform: str = "telegram") -> str:
    aid = (await accounts.find_or_create(c.uow, clock, platform=Platform.TELEGRAM, platform_id=new_id()[:8])).account.id
    g = make_generation(
        GenerationStatus.SUCCEEDED,
        id=new_id(),
        account_id=aid,
        platform=platform,
        hold_nanos=0,
        requested_at=clock.now(),
        updated_at=clock.now(),
        delivery={"chat_id": 1},
    )
    async with c.uow() as uow:
        uow.generations.add(g)
        await enqueue(uow, g, DeliveryKind.RESULT, clock.now())
        await enqueue(uow, g, DeliveryKind.RESULT, clock.now())  # a replayed terminal update: still one row
        await uow.commit()
    return g.id


async def _row(c: Container, gid: str) -> Delivery:
    async with c.uow() as uow:
        row = await uow.deliveries.by_key(dedupe_key(gid, DeliveryKind.RESULT))
    assert row is not None
    return row


async def test_a_failed_send_is_retried_with_backoff_and_then_sent_once(container: Container, clock: FakeClock) -> None:
    gid = await _finished_generation(container, clock)
    notifier = ScriptedNotifier(NotifierError("Telegram is down"), NotifierError("still down", retry_after=30))
    metrics = PrometheusMetrics(container.registry.__class__())

    async def send() -> int:
        return await delivery.deliver_due(container.uow, clock, {"telegram": notifier}, metrics=metrics)

    assert await send() == 1
    row = await _row(container, gid)
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.PENDING, 1, "Telegram is down")
    assert await send() == 0  # not due yet: the backoff holds it
    clock.advance(seconds=5)
    assert await send() == 1
    row = await _row(container, gid)
    assert row.next_attempt_at >= clock.now().replace(microsecond=0) and row.attempts == 2  # retry_after honoured
    clock.advance(seconds=31)
    assert await send() == 1
    assert notifier.sent == [(gid, "result")]
    row = await _row(container, gid)
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.SENT, 3, None)
    clock.advance(hours=1)
    assert await send() == 0 and notifier.sent == [(gid, "result")]


async def test_a_final_error_or_too_many_attempts_gives_up_loudly(container: Container, clock: FakeClock) -> None:
    final = await _finished_generation(container, clock)
    notifier = ScriptedNotifier(NotifierError("chat not found", retryable=False))
    metrics = PrometheusMetrics(container.registry.__class__())
    await delivery.deliver_due(container.uow, clock, {"telegram": notifier}, metrics=metrics)
    assert (await _row(container, final)).status is DeliveryStatus.FAILED
    stubborn = await _finished_generation(container, clock)
    always = ScriptedNotifier(*[NotifierError("down")] * 50)
    for _ in range(20):
        await delivery.deliver_due(container.uow, clock, {"telegram": always}, metrics=metrics)
        clock.advance(minutes=11)
    row = await _row(container, stubborn)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 12) and row.last_error == "down"
    no_notifier = await _finished_generation(container, clock, platform="discord")
    await delivery.deliver_due(container.uow, clock, {"telegram": always}, metrics=metrics)
    assert (await _row(container, no_notifier)).status is DeliveryStatus.FAILED


async def test_two_workers_at_once_never_send_the_same_message_twice(container: Container, clock: FakeClock) -> None:
    ids = [await _finished_generation(container, clock) for _ in range(12)]
    notifier = ScriptedNotifier(delay=0.05)
    metrics = PrometheusMetrics(container.registry.__class__())
    await asyncio.gather(
        *(
            delivery.deliver_due(container.uow, clock, {"telegram": notifier}, metrics=metrics, batch=5)
            for _ in range(4)
        )
    )
    while await delivery.deliver_due(container.uow, clock, {"telegram": notifier}, metrics=metrics):
        pass
    assert sorted(g for g, _ in notifier.sent) == sorted(ids)
    assert notifier.attempts == 12


async def test_an_outbox_row_stores_its_payload_and_target_as_the_same_json_and_reads_them_back_typed(
    container: Container, clock: FakeClock
) -> None:
    gid = await _finished_generation(container, clock)
    async with container.uow() as uow:
        generation = await uow.generations.get(gid)
    assert generation is not None
    async with container.engine.connect() as conn:  # the columns as the database holds them
        query = text("SELECT payload, target FROM deliveries WHERE generation_id = :gid")
        stored = (await conn.execute(query, {"gid": gid})).one()
    raw_payload = json.loads(stored.payload) if isinstance(stored.payload, str) else stored.payload
    raw_target = json.loads(stored.target) if isinstance(stored.target, str) else stored.target
    assert raw_payload == DeliveryPayload.of(generation).to_json() and raw_payload["status"] == "succeeded"
    assert raw_target == {"chat_id": 1}
    row = await _row(container, gid)
    assert row.payload == DeliveryPayload.from_json(raw_payload) and row.payload.to_json() == raw_payload
