"""The delivery outbox: the rows a finished or progressing generation queues, and the log of parts sent.

Rows are written inside the transaction that changed the generation, so the message and the change
commit together or not at all; the delivery worker (``services.delivery``) sends them after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from noema.domain.delivery import LIVE_PLATFORMS, Delivery, DeliveryKind, DeliveryPayload, DeliveryStatus, dedupe_key
from noema.domain.generation import Generation
from noema.ports import Clock, UnitOfWork, UnitOfWorkFactory

#: Progress messages to a chat are edited at most this often.
PROGRESS_EVERY = timedelta(seconds=3)


async def enqueue(uow: UnitOfWork, generation: Generation, kind: DeliveryKind, now: datetime) -> None:
    """Write one outbox row; the result or failure row of a generation can exist only once.

    A generation watched live (the API, the web page) is sent nothing: its open streams are woken
    after the commit and re-read it, so no row is written that no worker needs to deliver.
    """
    if generation.platform in LIVE_PLATFORMS:
        uow.announce(generation.id)
        return
    key = dedupe_key(generation.id, kind)
    existing = await uow.deliveries.by_key(key, for_update=True)
    if kind is DeliveryKind.PROGRESS:
        await _roll_progress(uow, generation, existing, now)
        return
    if existing is not None:
        return
    progress = await uow.deliveries.by_key(dedupe_key(generation.id, DeliveryKind.PROGRESS), for_update=True)
    if progress is not None and progress.status is DeliveryStatus.PENDING:
        progress.status = DeliveryStatus.SKIPPED  # the result supersedes a progress edit not yet sent
    uow.deliveries.add(_new(uow, generation, kind, key, now))


async def _roll_progress(uow: UnitOfWork, generation: Generation, existing: Delivery | None, now: datetime) -> None:
    if existing is None:
        uow.deliveries.add(
            _new(uow, generation, DeliveryKind.PROGRESS, dedupe_key(generation.id, DeliveryKind.PROGRESS), now)
        )
        return
    if existing.status is DeliveryStatus.PENDING:
        return  # an edit is already due; it shows the run as it is when it is sent (``delivery``)
    existing.payload = DeliveryPayload.of(generation)
    existing.updated_at = now
    # Throttle: the next edit waits until PROGRESS_EVERY after the last one was sent.
    earliest = (existing.sent_at or now) + PROGRESS_EVERY
    existing.status, existing.attempts = DeliveryStatus.PENDING, 0
    existing.next_attempt_at = max(now, earliest)


def _new(uow: UnitOfWork, generation: Generation, kind: DeliveryKind, key: str, now: datetime) -> Delivery:
    return Delivery(
        id=uow.ids.new(),
        generation_id=generation.id,
        account_id=generation.account_id,
        kind=kind,
        platform=generation.platform,
        key=key,
        created_at=now,
        next_attempt_at=now,
        target=dict(generation.delivery),
        payload=DeliveryPayload.of(generation),
        updated_at=now,
    )


class PartLog:
    """Which parts of a delivery are out: a delivery that takes several messages records each as it goes.

    A chat result may take several calls (an album, a text, followups); a retry after a failure or a
    restart sends only the parts not yet recorded, so none is sent twice. The record lives in the
    key-value store under ``<platform>.parts:<delivery id>``.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory, self._clock = uow_factory, clock

    async def send(self, delivery: Delivery, count: int, send_part: Callable[[int], Awaitable[object]]) -> None:
        """Send parts ``0 .. count-1`` in order, skipping those already sent, recording each once it is."""
        key = f"{delivery.platform}.parts:{delivery.id}"
        async with self._uow_factory() as uow:
            stored = await uow.kv.get(key)
        done = set(stored or [])
        for index in range(count):
            if index in done:
                continue
            await send_part(index)
            done.add(index)
            async with self._uow_factory() as uow:
                await uow.kv.put(key, sorted(done), now=self._clock.now())
                await uow.commit()
