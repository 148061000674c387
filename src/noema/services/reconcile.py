"""The reconciler: polls runs whose updates stopped, ends runs past their time limit, never leaves one stuck."""

from __future__ import annotations

from datetime import timedelta

import structlog

from noema.domain.errors import BackendProtocolError, BackendRejected, BackendUnavailable, ExternalServiceError
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.money import display_usd
from noema.ports import Backend, Clock, Metrics, UnitOfWorkFactory
from noema.services import run_updates

log = structlog.get_logger(__name__)
#: A generation still pending this long after it was asked for was never accepted by the backend.
PENDING_GRACE = timedelta(minutes=5)


async def reconcile_due(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    backend: Backend,
    *,
    metrics: Metrics,
    poll_every: timedelta,
    quiet_for: timedelta,
    batch: int = 25,
) -> int:
    """Poll every live generation that is due; returns how many were looked at."""
    async with uow_factory() as tx:
        due = await tx.generations.claim_due_polls(clock.now(), limit=batch, lease_seconds=poll_every.total_seconds())
        await tx.commit()
    for generation in due:
        try:
            await _reconcile_one(uow_factory, clock, backend, generation, metrics=metrics, quiet_for=quiet_for)
        except Exception:  # one bad run must never stop the others
            log.exception("reconcile_failed", generation_id=generation.id)
    return len(due)


async def _reconcile_one(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    backend: Backend,
    generation: Generation,
    *,
    metrics: Metrics,
    quiet_for: timedelta,
) -> None:
    now = clock.now()
    if generation.run_id is None:
        if now - generation.requested_at > PENDING_GRACE:
            await run_updates.finish(
                uow_factory(),
                clock,
                generation.id,
                GenerationStatus.FAILED,
                metrics=metrics,
                reason="The GPU backend never confirmed the run; nothing was charged.",
            )
        return
    try:
        update = await backend.get_run(generation.run_id)
    except BackendUnavailable:
        metrics.backend_error("poll")
        return  # try again at the next poll
    except (BackendRejected, BackendProtocolError) as exc:
        metrics.backend_error("poll")
        log.warning("poll_unusable", generation_id=generation.id, run_id=generation.run_id, error=str(exc)[:200])
        await run_updates.finish(
            uow_factory(),
            clock,
            generation.id,
            GenerationStatus.FAILED,
            metrics=metrics,
            reason="The GPU backend lost track of this run; nothing was charged.",
        )
        return
    fresh = await run_updates.record_run_update(
        uow_factory(), clock, generation.id, update, token=None, metrics=metrics, quiet_for=quiet_for
    )
    if fresh.is_terminal:
        return
    if fresh.over_time(now):
        status = GenerationStatus.TIMED_OUT
        reason = (
            f"The run took longer than {limit_in_words(fresh.max_runtime_seconds)} "
            "and was stopped; nothing was charged."
        )
    elif fresh.over_budget(now):
        status = GenerationStatus.CANCELLED
        reason = (
            f"The run was stopped when its cost reached the {display_usd(fresh.hold_nanos)} your balance "
            "could cover; that is what it cost. Add funds to run it longer."
        )
    else:
        return
    await _stop(backend, fresh, metrics=metrics)
    await run_updates.finish(
        uow_factory(),
        clock,
        generation.id,
        status,
        metrics=metrics,
        reason=reason,
        at_hold=status is GenerationStatus.CANCELLED,
    )


def limit_in_words(seconds: float) -> str:
    """A time limit as a person says it: whole minutes when it is some, else seconds (never "0 minutes")."""
    whole = max(1, round(seconds))
    if whole >= 60 and whole % 60 == 0:
        minutes = whole // 60
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    return f"{whole} second" + ("s" if whole != 1 else "")


async def _stop(backend: Backend, generation: Generation, *, metrics: Metrics) -> None:
    if generation.run_id:
        try:
            await backend.cancel_run(generation.run_id)
        except ExternalServiceError:
            metrics.backend_error("cancel")
