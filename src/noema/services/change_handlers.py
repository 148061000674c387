"""What follows a change to a generation: one table from each kind of change to the handlers it calls for.

``Generation.apply`` (and ``finish``) return what an update changed; ``handle`` runs the handlers
those changes call for, each once and in the table's order, inside the transaction that made the
change, so the new state, the money, the event log and the outbox commit together or not at all.
A terminal status absorbs every later update, so ``Change.TERMINAL`` comes once per generation and
its handlers (settlement first) run once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from noema.domain.delivery import DeliveryKind
from noema.domain.generation import Change, Generation, GenerationStatus
from noema.domain.money import format_usd
from noema.ports import Metrics, UnitOfWork
from noema.services import events, lora_prompts, outbox, settlement

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Changed:
    """A generation just changed, in ``uow`` (not yet committed), at ``now``."""

    uow: UnitOfWork
    generation: Generation
    now: datetime
    metrics: Metrics


Handler = Callable[[Changed], Awaitable[None]]

_ENDED_EVENT = {
    GenerationStatus.SUCCEEDED: "generation_completed",
    GenerationStatus.FAILED: "generation_failed",
    GenerationStatus.CANCELLED: "generation_cancelled",
    GenerationStatus.TIMED_OUT: "generation_failed",
}


async def log_status(c: Changed) -> None:
    """One log line and one metric per status a generation reaches."""
    g = c.generation
    c.metrics.generation_status(g.status.value)
    log.info("generation_status", generation_id=g.id, run_id=g.run_id, account_id=g.account_id, status=g.status.value)


async def record_started(c: Changed) -> None:
    """Log the moment the run was first seen on a GPU."""
    g = c.generation
    _record(c, "generation_started", {"generationId": g.id, "runId": g.run_id})


async def settle(c: Changed) -> None:
    """Charge the run and release its hold (``services.settlement``)."""
    await settlement.settle(c.uow, c.generation, c.now)


async def count_lora_usage(c: Changed) -> None:
    """Only a succeeded run counts as a use of its LoRAs."""
    await lora_prompts.count_usage(c.uow, c.generation)


async def record_ended(c: Changed) -> None:
    """Log how the run ended and what it cost."""
    g = c.generation
    data = {"generationId": g.id, "status": g.status.value, "costUsd": format_usd(g.cost_nanos)}
    _record(c, _ENDED_EVENT[g.status], {**data, "reason": g.failure_reason})


async def enqueue_outcome(c: Changed) -> None:
    """Queue the result (or the failure) for the user."""
    succeeded = c.generation.status is GenerationStatus.SUCCEEDED
    await outbox.enqueue(c.uow, c.generation, DeliveryKind.RESULT if succeeded else DeliveryKind.FAILURE, c.now)


async def enqueue_progress(c: Changed) -> None:
    """Queue a progress edit, unless the run ended: its result or failure says the rest."""
    if not c.generation.is_terminal:
        await outbox.enqueue(c.uow, c.generation, DeliveryKind.PROGRESS, c.now)


#: Each kind of change and what it calls for, in the order they run.
HANDLERS: dict[Change, tuple[Handler, ...]] = {
    Change.STATUS: (log_status, enqueue_progress),
    Change.PROGRESS: (enqueue_progress,),
    Change.STARTED_RUNNING: (record_started,),
    Change.TERMINAL: (settle, count_lora_usage, record_ended, enqueue_outcome),
    Change.RUN_ID_LEARNED: (),
}


async def handle(
    changes: Collection[Change], c: Changed, *, table: Mapping[Change, tuple[Handler, ...]] = HANDLERS
) -> None:
    """Run every handler the changes call for, each once, in the table's order."""
    done: set[Handler] = set()
    for change, handlers in table.items():
        if change not in changes:
            continue
        for handler in handlers:
            if handler not in done:
                done.add(handler)
                await handler(c)


def _record(c: Changed, event_type: str, data: dict[str, object]) -> None:
    g = c.generation
    events.record(
        c.uow,
        event_type,
        now=c.now,
        account_id=g.account_id,
        session_id=g.session_id,
        platform=g.platform,
        data=data,
    )
