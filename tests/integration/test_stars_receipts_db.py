"""Whose turn it is to send a Telegram Stars receipt, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from noema.bootstrap import Container
from noema.services.stars_payments import RECEIPT_LEASE, Receipt, record_receipt, take_receipt
from tests.fakes.clock import FakeClock

PAYMENT = "0f0e0d0c-0b0a-4000-8000-000000000001"


async def test_a_receipt_is_taken_by_one_delivery_given_back_on_failure_and_never_taken_once_sent(
    container: Container, clock: FakeClock
) -> None:
    uow = container.uow
    assert await take_receipt(uow, clock, PAYMENT) is Receipt.SEND
    assert await take_receipt(uow, clock, PAYMENT) is Receipt.BUSY  # the first delivery is sending it
    await record_receipt(uow, clock, PAYMENT, sent=False)  # its send failed: given back
    assert await take_receipt(uow, clock, PAYMENT) is Receipt.SEND
    clock.advance(seconds=RECEIPT_LEASE.total_seconds() + 1)  # that sender died mid-send: its take lapses
    assert await take_receipt(uow, clock, PAYMENT) is Receipt.SEND
    await record_receipt(uow, clock, PAYMENT, sent=True)
    clock.advance(seconds=RECEIPT_LEASE.total_seconds() + 1)
    assert await take_receipt(uow, clock, PAYMENT) is Receipt.SENT


async def test_deliveries_at_once_give_the_receipt_to_one(container: Container, clock: FakeClock) -> None:
    turns = await asyncio.gather(*(take_receipt(container.uow, clock, PAYMENT) for _ in range(4)))
    assert sorted(t.value for t in turns) == ["busy", "busy", "busy", "send"]
