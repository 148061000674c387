"""Credits, debits and the ledger on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.errors import Conflict, InsufficientFunds
from noema.services import accounts, economy

USD = 1_000_000_000


async def _account(c: Container, pid: str = "1") -> str:
    return (await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id=pid)).account.id


def _t(account_id: str, usd: int, external: str | None = None) -> economy.Transfer:
    return economy.Transfer(account_id=account_id, amount_nanos=usd * USD, description="test", external_id=external)


async def test_credit_is_idempotent_on_the_external_transaction_id(container: Container) -> None:
    aid = await _account(container)
    first = await economy.credit(container.uow(), container.clock, _t(aid, 5, "pay-1"))
    again = await economy.credit(container.uow(), container.clock, _t(aid, 5, "pay-1"))
    assert not first.replayed and again.replayed
    assert again.entry.id == first.entry.id
    assert (await economy.wallet(container.uow(), aid)).balance_nanos == 5 * USD
    assert len((await economy.transactions(container.uow(), aid, limit=10, cursor=None)).items) == 1


async def test_the_same_external_id_for_a_different_amount_is_a_conflict(container: Container) -> None:
    aid = await _account(container)
    await economy.credit(container.uow(), container.clock, _t(aid, 5, "pay-1"))
    with pytest.raises(Conflict):
        await economy.credit(container.uow(), container.clock, _t(aid, 6, "pay-1"))
    assert (await economy.wallet(container.uow(), aid)).balance_nanos == 5 * USD


async def test_concurrent_replays_of_one_credit_add_it_once(container: Container) -> None:
    aid = await _account(container)
    results = await asyncio.gather(
        *(economy.credit(container.uow(), container.clock, _t(aid, 2, "pay-9")) for _ in range(10))
    )
    assert sum(not r.replayed for r in results) == 1
    assert (await economy.wallet(container.uow(), aid)).balance_nanos == 2 * USD


async def test_debit_beyond_the_balance_is_refused_and_changes_nothing(container: Container) -> None:
    aid = await _account(container)
    await economy.credit(container.uow(), container.clock, _t(aid, 3))
    with pytest.raises(InsufficientFunds) as info:
        await economy.debit(container.uow(), container.clock, _t(aid, 4))
    assert info.value.details == {"currentBalance": "3.000000000", "debitAmount": "4.000000000"}
    assert (await economy.wallet(container.uow(), aid)).balance_nanos == 3 * USD


async def test_fifty_concurrent_one_dollar_debits_against_ten_dollars_let_exactly_ten_through(
    container: Container,
) -> None:
    aid = await _account(container)
    await economy.credit(container.uow(), container.clock, _t(aid, 10))

    async def one() -> bool:
        try:
            await economy.debit(container.uow(), container.clock, _t(aid, 1))
            return True
        except InsufficientFunds:
            return False

    outcomes = await asyncio.gather(*(one() for _ in range(50)))
    assert outcomes.count(True) == 10
    assert (await economy.wallet(container.uow(), aid)).balance_nanos == 0
    checked, drifts = await economy.verify(container.uow())
    assert (checked, drifts) == (1, [])


async def test_verify_reports_a_wallet_that_disagrees_with_its_ledger(container: Container) -> None:
    aid = await _account(container)
    other = await _account(container, "2")
    await economy.credit(container.uow(), container.clock, _t(aid, 3))
    await economy.credit(container.uow(), container.clock, _t(other, 1))
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE accounts SET balance_nanos = balance_nanos + 7 WHERE id = :id"), {"id": aid})
    checked, drifts = await economy.verify(container.uow())
    assert checked == 2
    assert [(d.account_id, d.balance_nanos, d.ledger_balance_nanos) for d in drifts] == [(aid, 3 * USD + 7, 3 * USD)]


async def test_the_database_refuses_a_negative_balance_even_behind_noemas_back(container: Container) -> None:
    aid = await _account(container)
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        async with container.engine.begin() as conn:
            await conn.execute(text("UPDATE accounts SET balance_nanos = -1 WHERE id = :id"), {"id": aid})


async def test_exp_changes_and_never_goes_below_zero(container: Container) -> None:
    aid = await _account(container)
    assert (await economy.change_exp(container.uow(), container.clock, aid, 30)).exp == 30
    with pytest.raises(Exception, match="below zero"):
        await economy.change_exp(container.uow(), container.clock, aid, -31)
    assert (await economy.wallet(container.uow(), aid)).exp == 30
