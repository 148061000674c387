"""The delivery worker: sends due outbox rows through each platform's notifier, with retries."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog

from noema.domain.delivery import Delivery, DeliveryKind, DeliveryPayload, DeliveryStatus
from noema.domain.errors import NotifierError
from noema.ports import Clock, Metrics, Notifier, UnitOfWorkFactory

log = structlog.get_logger(__name__)
#: A claimed row is not retried by another worker before this; a send must finish well within it.
LEASE = timedelta(seconds=120)


async def deliver_due(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    notifiers: Mapping[str, Notifier],
    *,
    metrics: Metrics,
    batch: int = 20,
) -> int:
    """Send what is due now and wait until it is sent; returns how many rows were attempted."""
    dispatcher = Dispatcher(uow_factory, clock, notifiers, metrics=metrics, max_in_flight=batch)
    claimed = await dispatcher.pump()
    await dispatcher.drain()
    return claimed


class Dispatcher:
    """Sends claimed rows concurrently across lanes (chats) and one at a time, in order, within one.

    One chat's flood wait or slow upload holds up only that chat. At most ``max_in_flight`` rows are
    claimed and not yet done; ``on_free`` is called when a full dispatcher frees room, so the worker
    claims more at once instead of at its next poll.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        notifiers: Mapping[str, Notifier],
        *,
        metrics: Metrics,
        max_in_flight: int = 64,
        on_free: Callable[[], None] | None = None,
    ) -> None:
        self._uow_factory, self._clock, self._notifiers, self._metrics = uow_factory, clock, notifiers, metrics
        self._max = max_in_flight
        self._on_free = on_free
        self._lanes: dict[str, deque[tuple[Delivery, datetime]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held = 0  #: rows claimed and not yet done

    @property
    def room(self) -> int:
        """How many more rows it may claim now."""
        return self._max - self._held

    async def pump(self) -> int:
        """Claim what is due (as much as there is room for) and start sending it; returns how many."""
        if self.room <= 0:
            return 0
        now = self._clock.now()
        async with self._uow_factory() as tx:
            claimed = await tx.deliveries.claim_due(now, limit=self.room, lease_seconds=LEASE.total_seconds())
            await tx.commit()
        for delivery in claimed:  # claimed in due order, so each lane keeps it
            self._held += 1
            lane = self._lanes.get(delivery.lane)
            if lane is None:
                self._lanes[delivery.lane] = deque([(delivery, now)])
                task = asyncio.create_task(self._run_lane(delivery.lane))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                lane.append((delivery, now))
        return len(claimed)

    async def drain(self) -> None:
        """Until every claimed row has been attempted."""
        while self._tasks:
            await asyncio.gather(*self._tasks)

    async def close(self) -> None:
        """Stop sending; rows not yet attempted become due again when their lease ends."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run_lane(self, name: str) -> None:
        lane = self._lanes[name]
        try:
            while lane:
                delivery, claimed_at = lane[0]
                # A row that waited in its lane past half its lease is left for a later claim, so
                # another worker that claims it when the lease ends cannot send it at the same time.
                if self._clock.now() - claimed_at < LEASE / 2:
                    try:
                        await _attempt(self._uow_factory, self._clock, self._notifiers, delivery.key, self._metrics)
                    except Exception:  # e.g. the database went away: the row is due again after its lease
                        log.exception("delivery_attempt_crashed", delivery_id=delivery.id)
                lane.popleft()
                self._done()
        finally:
            for _ in lane:  # cancelled: the rest are released with their lease
                self._done()
            del self._lanes[name]

    def _done(self) -> None:
        was_full = self.room <= 0
        self._held -= 1
        if was_full and self._on_free is not None:
            self._on_free()


async def _attempt(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    notifiers: Mapping[str, Notifier],
    key: str,
    metrics: Metrics,
) -> None:
    async with uow_factory() as tx:
        delivery = await tx.deliveries.by_key(key)
        generation = await tx.generations.get(delivery.generation_id) if delivery else None
    if delivery is None or generation is None or delivery.status is not DeliveryStatus.PENDING:
        return
    if delivery.kind is DeliveryKind.PROGRESS:
        # A progress edit shows the run as it is now: progress webhooks do not rewrite a row already due.
        delivery.payload = DeliveryPayload.of(generation)
    notifier = notifiers.get(delivery.platform)
    error: NotifierError | None = None
    if notifier is None:
        error = NotifierError(f"No notifier for platform {delivery.platform!r}.", retryable=False)
    else:
        try:
            await notifier.send(delivery, generation)
        except NotifierError as exc:
            error = exc
        except Exception as exc:  # a bug in one notifier must not kill the worker; retry like any failure
            log.exception("notifier_crashed", delivery_id=delivery.id)
            error = NotifierError(f"{type(exc).__name__}: {str(exc)[:200]}")
    await _record(uow_factory, clock, key, error, metrics)


async def _record(
    uow_factory: UnitOfWorkFactory, clock: Clock, key: str, error: NotifierError | None, metrics: Metrics
) -> None:
    async with uow_factory() as tx:
        delivery = await tx.deliveries.by_key(key, for_update=True)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            return
        now = clock.now()
        if error is None:
            delivery.succeeded(now)
            metrics.delivery(delivery.platform, "sent")
        else:
            gave_up = delivery.failed_attempt(now, error.message, retryable=error.retryable)
            if error.retry_after is not None and not gave_up:
                delivery.next_attempt_at = max(delivery.next_attempt_at, now + timedelta(seconds=error.retry_after))
            outcome = "failed" if gave_up else "retry"
            metrics.delivery(delivery.platform, outcome)
            log.warning(
                "delivery_" + outcome,
                delivery_id=delivery.id,
                generation_id=delivery.generation_id,
                attempts=delivery.attempts,
                error=error.message[:200],
            )
        await tx.commit()
