"""What every unit of work promises, on SQLite, PostgreSQL and the in-memory fake alike."""

from __future__ import annotations

import pytest

from noema.adapters.db.uow import SqlUnitOfWorkFactory
from noema.domain.accounts import Identity, Platform
from noema.domain.errors import Conflict
from noema.domain.ledger import EntryKind, LedgerEntry
from noema.ports import UnitOfWorkFactory
from tests.fakes.ids import new_id
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory
from tests.integration.repositories.conftest import T0, make_account


def entry(account_id: str, key: str, amount: int = 5) -> LedgerEntry:
    """A credit of ``amount`` posted under ``key``."""
    return LedgerEntry(
        id=new_id(),
        account_id=account_id,
        kind=EntryKind.CREDIT,
        amount_nanos=amount,
        balance_delta=amount,
        held_delta=0,
        balance_after=amount,
        held_after=0,
        idempotency_key=key,
        created_at=T0,
    )


async def test_a_change_is_seen_by_others_only_once_committed(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        account = await uow.accounts.get(a.id, for_update=True)
        assert account is not None
        account.balance_nanos = 7
        await uow.commit()
    async with uows() as uow:
        again = await uow.accounts.get(a.id)
        assert again is not None and again.balance_nanos == 7


async def test_leaving_without_commit_drops_every_change(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        account = await uow.accounts.get(a.id)
        assert account is not None
        account.balance_nanos = 9
        uow.ledger.add(entry(a.id, "k-1"))
    async with uows() as uow:
        again = await uow.accounts.get(a.id)
        assert again is not None and again.balance_nanos == 0
        assert await uow.ledger.by_key("k-1") is None


async def test_rollback_drops_what_was_staged_and_the_unit_goes_on(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        uow.ledger.add(entry(a.id, "dropped"))
        await uow.rollback()
        uow.ledger.add(entry(a.id, "kept"))
        await uow.commit()
    async with uows() as uow:
        assert await uow.ledger.by_key("dropped") is None
        assert await uow.ledger.by_key("kept") is not None


async def test_what_a_unit_returned_stays_readable_after_it_ends(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id(), display_name="Ada")
    async with uows() as uow:
        account = await uow.accounts.get(a.id)
    assert account is not None and account.display_name == "Ada" and account.free_nanos == 0


async def test_a_second_entry_under_a_taken_idempotency_key_fails_the_commit_and_writes_nothing(
    uows: UnitOfWorkFactory,
) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        uow.ledger.add(entry(a.id, "settle:g1"))
        await uow.commit()
    async with uows() as uow:
        account = await uow.accounts.get(a.id)
        assert account is not None
        account.display_name = "changed with the duplicate"
        uow.ledger.add(entry(a.id, "settle:g1", amount=6))
        with pytest.raises(Conflict):
            await uow.commit()
    async with uows() as uow:
        account = await uow.accounts.get(a.id)
        assert account is not None and account.display_name is None
        assert len((await uow.ledger.list_for_account(a.id, limit=10, cursor=None)).items) == 1


async def test_a_held_amount_above_the_balance_fails_the_commit(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id(), balance_nanos=10)
    async with uows() as uow:
        account = await uow.accounts.get(a.id, for_update=True)
        assert account is not None
        account.held_nanos = 11
        with pytest.raises(Conflict):
            await uow.commit()
    async with uows() as uow:
        again = await uow.accounts.get(a.id)
        assert again is not None and again.held_nanos == 0


async def test_a_row_naming_a_missing_account_fails_the_commit(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        uow.accounts.add_identity(
            Identity(id=new_id(), account_id=new_id(), platform=Platform.TELEGRAM, platform_id="1", created_at=T0)
        )
        with pytest.raises(Conflict):
            await uow.commit()
    async with uows() as uow:
        assert await uow.accounts.identity(Platform.TELEGRAM, "1") is None


async def test_two_accounts_with_the_same_id_fail_the_commit(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id(), display_name="first")
    with pytest.raises(Conflict):
        await make_account(uows, a.id, display_name="second")
    async with uows() as uow:
        again = await uow.accounts.get(a.id)
        assert again is not None and again.display_name == "first"


async def test_announced_generations_are_told_only_when_the_unit_commits(uows: UnitOfWorkFactory) -> None:
    told: list[str] = []
    assert isinstance(uows, SqlUnitOfWorkFactory | MemoryUnitOfWorkFactory)  # both tell a ``live`` callback
    uows.live = told.append
    async with uows() as uow:
        uow.announce("rolled-back")
        await uow.rollback()
        uow.announce("committed")
        assert told == []
        await uow.commit()
    async with uows() as uow:
        uow.announce("never committed")
    assert told == ["committed"]


async def test_using_a_unit_outside_async_with_is_refused(uows: UnitOfWorkFactory) -> None:
    uow = uows()
    with pytest.raises(RuntimeError):
        await uow.commit()
