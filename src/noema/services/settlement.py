"""Settling a finished generation: charge the GPU seconds and release the hold, once.

Runs inside the transaction that made the generation terminal (one of the handlers of
``services.change_handlers``), so the status, the money and the outbox row commit together or not
at all; ledger keys make a second settlement impossible.
"""

from __future__ import annotations

from datetime import datetime

from noema.domain import ledger
from noema.domain.economy import exp_for_spend
from noema.domain.generation import Generation, GenerationStatus, billable_ms
from noema.domain.ids import short_id
from noema.ports import UnitOfWork
from noema.services.economy import post


def cost_of_run(generation: Generation) -> int:
    """What the finished run costs: GPU milliseconds × the rate frozen at submission (or the flat price).

    Settlement charges at most the hold; anything above it is recorded as the shortfall.
    """
    return generation.price.cost(billable_ms(generation), succeeded=generation.status is GenerationStatus.SUCCEEDED)


async def settle(uow: UnitOfWork, generation: Generation, now: datetime) -> None:
    """Charge and release exactly once (a settled generation is left alone)."""
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
