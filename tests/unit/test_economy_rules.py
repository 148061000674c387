"""Credits and debits: idempotent on the external id, never below zero, on the in-memory unit of work.

tests/integration/test_economy_db.py proves the same on both databases (and the database's own checks).
"""

from __future__ import annotations

import asyncio

import pytest

from noema.domain.accounts import Platform
from noema.domain.errors import Conflict, InsufficientFunds
from noema.services import accounts, economy
from tests.fakes.clock import FakeClock
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory

USD = 1_000_000_000


async def setup(usd: int = 0) -> tuple[MemoryUnitOfWorkFactory, FakeClock, str]:
    """A store, its clock, and an account with ``usd`` of credit."""
    clock = FakeClock()
    uows = MemoryUnitOfWorkFactory(clock)
    aid = (await accounts.find_or_create(uows, clock, platform=Platform.TELEGRAM, platform_id="1")).account.id
    if usd:
        await economy.credit(uows(), clock, transfer(aid, usd))
    return uows, clock, aid


def transfer(account_id: str, usd: int, external: str | None = None) -> economy.Transfer:
    """A transfer of whole dollars."""
    return economy.Transfer(account_id=account_id, amount_nanos=usd * USD, description="test", external_id=external)


async def test_a_credit_replayed_under_its_external_id_is_added_once() -> None:
    uows, clock, aid = await setup()
    first = await economy.credit(uows(), clock, transfer(aid, 5, "pay-1"))
    again = await economy.credit(uows(), clock, transfer(aid, 5, "pay-1"))
    assert not first.replayed and again.replayed and again.entry.id == first.entry.id
    assert (await economy.wallet(uows(), aid)).balance_nanos == 5 * USD


async def test_the_same_external_id_for_another_amount_is_a_conflict_and_changes_nothing() -> None:
    uows, clock, aid = await setup()
    await economy.credit(uows(), clock, transfer(aid, 5, "pay-1"))
    with pytest.raises(Conflict):
        await economy.credit(uows(), clock, transfer(aid, 6, "pay-1"))
    assert (await economy.wallet(uows(), aid)).balance_nanos == 5 * USD


async def test_concurrent_replays_of_one_credit_add_it_once() -> None:
    uows, clock, aid = await setup()
    results = await asyncio.gather(*(economy.credit(uows(), clock, transfer(aid, 2, "pay-9")) for _ in range(10)))
    assert sum(not r.replayed for r in results) == 1
    assert (await economy.wallet(uows(), aid)).balance_nanos == 2 * USD


async def test_a_debit_beyond_the_balance_is_refused_with_both_amounts() -> None:
    uows, clock, aid = await setup(usd=3)
    with pytest.raises(InsufficientFunds) as info:
        await economy.debit(uows(), clock, transfer(aid, 4))
    assert info.value.details == {"currentBalance": "3.000000000", "debitAmount": "4.000000000"}
    assert (await economy.wallet(uows(), aid)).balance_nanos == 3 * USD


async def test_fifty_concurrent_one_dollar_debits_against_ten_dollars_let_exactly_ten_through() -> None:
    uows, clock, aid = await setup(usd=10)

    async def one() -> bool:
        try:
            await economy.debit(uows(), clock, transfer(aid, 1))
            return True
        except InsufficientFunds:
            return False

    assert (await asyncio.gather(*(one() for _ in range(50)))).count(True) == 10
    assert (await economy.wallet(uows(), aid)).balance_nanos == 0
    assert await economy.verify(uows()) == (1, [])


async def test_exp_never_goes_below_zero() -> None:
    uows, clock, aid = await setup()
    assert (await economy.change_exp(uows(), clock, aid, 30)).exp == 30
    with pytest.raises(Exception, match="below zero"):
        await economy.change_exp(uows(), clock, aid, -31)
    assert (await economy.wallet(uows(), aid)).exp == 30
