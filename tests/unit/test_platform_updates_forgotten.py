"""Answered chat updates are forgotten once no platform could deliver them again."""

from __future__ import annotations

from datetime import timedelta

from noema.domain.platform_updates import PlatformUpdate
from noema.services import platform_updates
from tests.fakes.clock import FakeClock
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory


async def record(uows: MemoryUnitOfWorkFactory, clock: FakeClock, *ids: str) -> None:
    async with uows() as uow:
        for update_id in ids:
            assert await uow.platform_updates.record(PlatformUpdate("telegram", update_id), at=clock.now())
        await uow.commit()


async def seen(uows: MemoryUnitOfWorkFactory, update_id: str) -> bool:
    async with uows() as uow:
        return await uow.platform_updates.seen(PlatformUpdate("telegram", update_id))


async def test_updates_older_than_three_days_are_forgotten_and_newer_ones_kept() -> None:
    uows, clock = MemoryUnitOfWorkFactory(), FakeClock()
    await record(uows, clock, "old-1", "old-2")
    clock.advance(days=2)
    await record(uows, clock, "recent")
    clock.advance(days=1, seconds=1)
    assert await platform_updates.forget_answered(uows, clock) == 2
    assert [await seen(uows, u) for u in ("old-1", "old-2", "recent")] == [False, False, True]
    assert await platform_updates.forget_answered(uows, clock) == 0


async def test_a_backlog_larger_than_a_batch_is_forgotten_in_one_call() -> None:
    uows, clock = MemoryUnitOfWorkFactory(), FakeClock()
    await record(uows, clock, *(str(n) for n in range(platform_updates.BATCH + 3)))
    clock.advance(days=4)
    assert await platform_updates.forget_answered(uows, clock, keep=timedelta(days=3)) == platform_updates.BATCH + 3
    assert not await seen(uows, "0")
