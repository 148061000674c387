"""The outbox's part log: a delivery of several messages sends each part once, across failures and restarts."""

from __future__ import annotations

import pytest

from noema.domain.delivery import Delivery, DeliveryKind
from noema.services.outbox import PartLog
from tests.fakes.clock import FakeClock
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory


def _delivery(platform: str = "telegram") -> Delivery:
    clock = FakeClock()
    return Delivery(
        id="d-1",
        generation_id="g-1",
        account_id="a-1",
        kind=DeliveryKind.RESULT,
        platform=platform,
        key="g-1:result",
        created_at=clock.now(),
        next_attempt_at=clock.now(),
    )


class Flaky:
    """Sends parts, failing once at ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[int] = []
        self.fail_at = fail_at

    async def __call__(self, index: int) -> None:
        if index == self.fail_at:
            self.fail_at = None
            raise ConnectionError("the platform went away")
        self.sent.append(index)


async def test_every_part_is_sent_in_order_and_recorded_under_the_platforms_key() -> None:
    clock = FakeClock()
    uows = MemoryUnitOfWorkFactory(clock)
    send = Flaky()
    await PartLog(uows, clock).send(_delivery("discord"), 3, send)
    assert send.sent == [0, 1, 2]
    async with uows() as uow:
        assert await uow.kv.get("discord.parts:d-1") == [0, 1, 2]


async def test_a_retry_after_a_failure_sends_only_the_parts_not_yet_sent() -> None:
    clock = FakeClock()
    uows = MemoryUnitOfWorkFactory(clock)
    send = Flaky(fail_at=2)
    with pytest.raises(ConnectionError):
        await PartLog(uows, clock).send(_delivery(), 4, send)
    # Another worker (a restart) picks the delivery up again: a new log over the same store.
    await PartLog(uows, clock).send(_delivery(), 4, send)
    assert send.sent == [0, 1, 2, 3]


async def test_a_delivery_whose_parts_are_all_out_sends_nothing_again() -> None:
    clock = FakeClock()
    uows = MemoryUnitOfWorkFactory(clock)
    async with uows() as uow:
        await uow.kv.put("telegram.parts:d-1", [0, 1], now=clock.now())  # as an earlier version stored it
        await uow.commit()
    send = Flaky()
    await PartLog(uows, clock).send(_delivery(), 2, send)
    assert send.sent == []
