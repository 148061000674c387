"""Settling a finished generation: charge the GPU seconds, release the hold, queue the message.

Runs inside the transaction that made the generation terminal, so the status, the money and the
outbox row commit together or not at all; ledger keys make a second settlement impossible.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from noema.domain import ledger
from noema.domain.delivery import LIVE_PLATFORMS, Delivery, DeliveryKind, DeliveryStatus, dedupe_key
from noema.domain.economy import exp_for_spend
from noema.domain.generation import Generation, GenerationStatus, billable_ms
from noema.domain.ids import new_id, short_id
from noema.domain.money import format_usd
from noema.domain.pricing import charge_nanos
from noema.ports import UnitOfWork
from noema.services import events
from noema.services.economy import post
from noema.services.lora_prompts import count_usage

#: Progress messages to a chat are edited at most this often.
PROGRESS_EVERY = timedelta(seconds=3)
_EVENT_OF = {
    GenerationStatus.SUCCEEDED: "generation_completed",
    GenerationStatus.FAILED: "generation_failed",
    GenerationStatus.CANCELLED: "generation_cancelled",
    GenerationStatus.TIMED_OUT: "generation_failed",
}


def cost_of_run(generation: Generation) -> int:
    """What the finished run costs: GPU milliseconds × the rate frozen at submission (or the flat price).

    Settlement charges at most the hold; anything above it is recorded as the shortfall.
    """
    ms = billable_ms(generation)
    if ms == 0:
        return 0
    flat = generation.flat_price_nanos
    if flat is not None and generation.status is GenerationStatus.SUCCEEDED:
        return flat
    used = charge_nanos(generation.rate_nanos_per_second, ms, price_multiplier=generation.price_multiplier)
    # A cancelled flat-priced run pays for the seconds it used, never more than the whole run would have.
    return used if flat is None else min(used, flat)


async def settle(uow: UnitOfWork, generation: Generation, now: datetime) -> None:
    """Charge and release exactly once (a settled generation is left alone), then queue the message."""
    if generation.settled_at is not None or not generation.is_terminal:
        return
    account = await uow.accounts.get(generation.account_id, for_update=True)
    if account is None:
        raise RuntimeError(f"generation {generation.id} has no account")
    result = ledger.settle(account, held=generation.hold_nanos, cost=cost_of_run(generation))
    for posting in result.postings:
        post(
            uow,
            account,
            posting,
            key=f"settle:{generation.id}:{posting.kind.value}",
            now=now,
            description=f"/{generation.tool_command} {short_id(generation.id)}",
            transaction_type="generation",
            generation_id=generation.id,
            tool_id=generation.tool_id,
            run_id=generation.run_id,
        )
    generation.cost_nanos, generation.shortfall_nanos = result.charged_nanos, result.shortfall_nanos
    generation.exp_gained = exp_for_spend(result.charged_nanos)
    account.exp += generation.exp_gained
    generation.settled_at = now
    await count_usage(uow, generation)  # only a succeeded run counts as a use of its LoRAs
    events.record(
        uow,
        _EVENT_OF[generation.status],
        now=now,
        account_id=generation.account_id,
        session_id=generation.session_id,
        platform=generation.platform,
        data={
            "generationId": generation.id,
            "status": generation.status.value,
            "costUsd": format_usd(generation.cost_nanos),
            "reason": generation.failure_reason,
        },
    )
    await enqueue(
        uow,
        generation,
        DeliveryKind.RESULT if generation.status is GenerationStatus.SUCCEEDED else DeliveryKind.FAILURE,
        now,
    )


def snapshot(generation: Generation) -> dict[str, Any]:
    """What a message about the generation says, frozen when it is queued."""
    return {
        "status": generation.status.value,
        "progress": generation.progress,
        "liveStatus": generation.live_status,
        "tool": generation.tool_command,
        "shortId": short_id(generation.id),
        "costUsd": format_usd(generation.cost_nanos),
        "estimatedCostUsd": format_usd(generation.estimated_cost_nanos),
        "outputs": generation.outputs,
        "failureReason": generation.failure_reason,
        "shortfallUsd": format_usd(generation.shortfall_nanos),
    }


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
    uow.deliveries.add(_new(generation, kind, key, now))


async def _roll_progress(uow: UnitOfWork, generation: Generation, existing: Delivery | None, now: datetime) -> None:
    if existing is None:
        uow.deliveries.add(
            _new(generation, DeliveryKind.PROGRESS, dedupe_key(generation.id, DeliveryKind.PROGRESS), now)
        )
        return
    if existing.status is DeliveryStatus.PENDING:
        return  # an edit is already due; it shows the run as it is when it is sent (``delivery``)
    existing.payload = snapshot(generation)
    existing.updated_at = now
    # Throttle: the next edit waits until PROGRESS_EVERY after the last one was sent.
    earliest = (existing.sent_at or now) + PROGRESS_EVERY
    existing.status, existing.attempts = DeliveryStatus.PENDING, 0
    existing.next_attempt_at = max(now, earliest)


def _new(generation: Generation, kind: DeliveryKind, key: str, now: datetime) -> Delivery:
    return Delivery(
        id=new_id(),
        generation_id=generation.id,
        account_id=generation.account_id,
        kind=kind,
        platform=generation.platform,
        key=key,
        created_at=now,
        next_attempt_at=now,
        target=dict(generation.delivery),
        payload=snapshot(generation),
        updated_at=now,
    )
