"""Forgetting chat updates answered long ago: the table of answered updates stays the size of a few days."""

from __future__ import annotations

from datetime import timedelta

from noema.ports import Clock, UnitOfWorkFactory

#: How long an answered update is remembered. Telegram keeps an unconfirmed update for at most 24 hours
#: and Discord never sends an interaction twice, so three days is well past any redelivery.
KEEP_ANSWERED = timedelta(days=3)
#: Rows forgotten per transaction, so a long backlog never holds one long lock.
BATCH = 5_000


async def forget_answered(uow_factory: UnitOfWorkFactory, clock: Clock, *, keep: timedelta = KEEP_ANSWERED) -> int:
    """Forget every update answered more than ``keep`` ago, a batch per transaction; how many went."""
    cutoff, total = clock.now() - keep, 0
    while True:
        async with uow_factory() as uow:
            forgotten = await uow.platform_updates.forget_before(cutoff, limit=BATCH)
            await uow.commit()
        total += forgotten
        if forgotten < BATCH:
            return total
