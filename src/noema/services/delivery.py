"""The delivery worker: sends due outbox rows through each platform's notifier, with retries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import structlog

from noema.domain.delivery import DeliveryStatus
from noema.domain.errors import NotifierError
from noema.ports import Clock, Metrics, Notifier, UnitOfWorkFactory

log = structlog.get_logger(__name__)
#: A claimed row is not retried by another worker before this; a send must finish well within it.
LEASE = timedelta(seconds=120)


async def deliver_due(
    uow: UnitOfWorkFactory, clock: Clock, notifiers: Mapping[str, Notifier], *, metrics: Metrics, batch: int = 20
) -> int:
    """Send what is due; returns how many rows were attempted."""
    async with uow() as tx:
        claimed = await tx.deliveries.claim_due(clock.now(), limit=batch, lease_seconds=LEASE.total_seconds())
        await tx.commit()
    for delivery in claimed:
        await _attempt(uow, clock, notifiers, delivery.id, delivery.key, metrics)
    return len(claimed)


async def _attempt(
    uow: UnitOfWorkFactory,
    clock: Clock,
    notifiers: Mapping[str, Notifier],
    delivery_id: str,
    key: str,
    metrics: Metrics,
) -> None:
    async with uow() as tx:
        delivery = await tx.deliveries.by_key(key)
        generation = await tx.generations.get(delivery.generation_id) if delivery else None
    if delivery is None or generation is None or delivery.status is not DeliveryStatus.PENDING:
        return
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
            log.exception("notifier_crashed", delivery_id=delivery_id)
            error = NotifierError(f"{type(exc).__name__}: {str(exc)[:200]}")
    await _record(uow, clock, key, error, metrics)


async def _record(
    uow: UnitOfWorkFactory, clock: Clock, key: str, error: NotifierError | None, metrics: Metrics
) -> None:
    async with uow() as tx:
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
