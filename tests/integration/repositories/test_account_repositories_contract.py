"""Accounts, identities, sessions, the ledger and API keys: the same answers from every store."""

from __future__ import annotations

import pytest

from noema.domain.accounts import ApiKey, Identity, Platform
from noema.domain.errors import Conflict, InvalidInput
from noema.domain.linking import WebSession
from noema.domain.sessions import Event, Session
from noema.ports import UnitOfWorkFactory
from tests.fakes.ids import new_id
from tests.integration.repositories.conftest import at, make_account
from tests.integration.repositories.test_unit_of_work_contract import entry


def identity(account_id: str, platform: Platform, platform_id: str, minutes: float = 0) -> Identity:
    """An identity made ``minutes`` after the start."""
    return Identity(
        id=new_id(), account_id=account_id, platform=platform, platform_id=platform_id, created_at=at(minutes)
    )


async def test_an_account_is_found_by_any_of_its_identities_listed_oldest_first(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        uow.accounts.add_identity(identity(a.id, Platform.DISCORD, "d-1", minutes=2))
        uow.accounts.add_identity(identity(a.id, Platform.TELEGRAM, "t-1", minutes=1))
        await uow.commit()
    async with uows() as uow:
        found = await uow.accounts.by_identity(Platform.DISCORD, "d-1")
        assert found is not None and found.id == a.id
        assert await uow.accounts.by_identity(Platform.DISCORD, "t-1") is None
        assert [i.platform for i in await uow.accounts.identities(a.id)] == [Platform.TELEGRAM, Platform.DISCORD]
        one = await uow.accounts.identity(Platform.TELEGRAM, "t-1")
        assert one is not None and one.account_id == a.id
        assert [i.platform_id for i in (await uow.accounts.identities_of([a.id, "nobody"]))[a.id]] == ["t-1", "d-1"]


async def test_one_platform_identity_belongs_to_one_account_only(uows: UnitOfWorkFactory) -> None:
    a, b = await make_account(uows, new_id()), await make_account(uows, new_id())
    async with uows() as uow:
        uow.accounts.add_identity(identity(a.id, Platform.TELEGRAM, "42"))
        await uow.commit()
    async with uows() as uow:
        uow.accounts.add_identity(identity(b.id, Platform.TELEGRAM, "42"))
        with pytest.raises(Conflict):
            await uow.commit()


async def test_an_account_has_at_most_one_identity_per_platform(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        uow.accounts.add_identity(identity(a.id, Platform.TELEGRAM, "1"))
        uow.accounts.add_identity(identity(a.id, Platform.TELEGRAM, "2"))
        with pytest.raises(Conflict):
            await uow.commit()


async def test_accounts_page_newest_first_without_merged_ones(uows: UnitOfWorkFactory) -> None:
    ids = [(await make_account(uows, new_id(), minutes=n)).id for n in range(5)]
    await make_account(uows, new_id(), minutes=9, merged_into=ids[0])
    async with uows() as uow:
        first = await uow.accounts.page(limit=3, cursor=None)
        rest = await uow.accounts.page(limit=3, cursor=first.next_cursor)
        wallets = await uow.accounts.wallets()
    assert [a.id for a in first.items] == ids[::-1][:3]
    assert [a.id for a in rest.items] == ids[::-1][3:] and rest.next_cursor is None
    assert len(wallets) == 6 and wallets[ids[0]] == (0, 0)


async def test_a_made_up_cursor_is_refused_as_invalid_input(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        with pytest.raises(InvalidInput):
            await uow.accounts.page(limit=3, cursor="not-a-cursor")


async def test_moving_records_gives_identities_and_keys_to_the_survivor_and_ends_active_sessions(
    uows: UnitOfWorkFactory,
) -> None:
    gone, kept = await make_account(uows, new_id()), await make_account(uows, new_id())
    session = Session(id=new_id(), account_id=gone.id, platform="telegram", started_at=at(0), last_activity_at=at(1))
    async with uows() as uow:
        uow.accounts.add_identity(identity(gone.id, Platform.DISCORD, "7"))
        uow.api_keys.add(ApiKey(id=new_id(), account_id=gone.id, prefix="nk_a", key_hash="h" * 64, created_at=at(0)))
        uow.sessions.add(session)
        await uow.commit()
    async with uows() as uow:
        await uow.accounts.move_records(gone.id, kept.id)
        await uow.commit()
    async with uows() as uow:
        assert [i.platform_id for i in await uow.accounts.identities(kept.id)] == ["7"]
        assert [k.key_hash for k in await uow.api_keys.list_for_account(kept.id)] == ["h" * 64]
        ended = await uow.sessions.get(session.id)
        assert ended is not None and ended.ended_at is not None and ended.end_reason == "account_merged"
        assert await uow.sessions.active(gone.id, "telegram") is None


async def test_one_active_session_per_account_and_platform(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        for _ in range(2):
            uow.sessions.add(Session(new_id(), a.id, "web", started_at=at(0), last_activity_at=at(0)))
        with pytest.raises(Conflict):
            await uow.commit()


async def test_idle_active_sessions_are_listed_longest_idle_first(uows: UnitOfWorkFactory) -> None:
    a, b, c = [await make_account(uows, new_id()) for _ in range(3)]
    async with uows() as uow:
        uow.sessions.add(Session(new_id(), a.id, "web", started_at=at(0), last_activity_at=at(5)))
        uow.sessions.add(Session(new_id(), b.id, "web", started_at=at(0), last_activity_at=at(2)))
        uow.sessions.add(Session(new_id(), c.id, "web", started_at=at(0), last_activity_at=at(1), ended_at=at(1)))
        uow.sessions.add(Session(new_id(), c.id, "discord", started_at=at(0), last_activity_at=at(30)))
        await uow.commit()
    async with uows() as uow:
        idle = await uow.sessions.inactive_since(at(10), limit=10)
        active = await uow.sessions.active(a.id, "web")
        page = await uow.sessions.list_for_account(c.id, limit=1, cursor=None)
    assert [s.account_id for s in idle] == [b.id, a.id]
    assert active is not None and active.last_activity_at == at(5)
    assert len(page.items) == 1 and page.next_cursor is not None


async def test_the_ledger_finds_entries_by_key_lists_them_newest_first_and_sums_them(uows: UnitOfWorkFactory) -> None:
    a, b = await make_account(uows, new_id()), await make_account(uows, new_id())
    entries = [entry(a.id, f"k-{n}", amount=n + 1) for n in range(3)]
    for n, e in enumerate(entries):
        e.created_at = at(n)
    entries[2].held_delta = 2
    async with uows() as uow:
        for e in [*entries, entry(b.id, "b-1", amount=10)]:
            uow.ledger.add(e)
        await uow.commit()
    async with uows() as uow:
        found = await uow.ledger.by_key("k-1")
        got = await uow.ledger.get(entries[0].id)
        first = await uow.ledger.list_for_account(a.id, limit=2, cursor=None)
        rest = await uow.ledger.list_for_account(a.id, limit=2, cursor=first.next_cursor)
        totals = await uow.ledger.totals()
    assert found is not None and found.amount_nanos == 2 and got is not None and got.idempotency_key == "k-0"
    assert [e.idempotency_key for e in first.items + rest.items] == ["k-2", "k-1", "k-0"]
    assert totals == {a.id: (6, 2), b.id: (10, 0)}


async def test_api_keys_are_found_by_hash_and_listed_newest_first(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    keys = [ApiKey(new_id(), a.id, f"nk_{n}", f"{n}" * 64, created_at=at(n)) for n in range(3)]
    async with uows() as uow:
        for key in keys:
            uow.api_keys.add(key)
        await uow.commit()
    async with uows() as uow:
        found = await uow.api_keys.by_hash("1" * 64)
        assert found is not None and found.prefix == "nk_1"
        assert [k.prefix for k in await uow.api_keys.list_for_account(a.id)] == ["nk_2", "nk_1", "nk_0"]
        uow.api_keys.add(ApiKey(new_id(), a.id, "nk_x", "0" * 64, created_at=at(9)))
        with pytest.raises(Conflict):
            await uow.commit()


async def test_events_are_listed_newest_first_by_account_or_by_session(uows: UnitOfWorkFactory) -> None:
    a, b = await make_account(uows, new_id()), await make_account(uows, new_id())
    session_id = new_id()
    made = [
        Event(new_id(), "generation_requested", at(n), account_id=a.id, session_id=session_id if n < 2 else None)
        for n in range(3)
    ]
    async with uows() as uow:
        for event in [*made, Event(new_id(), "account_created", at(9), account_id=b.id)]:
            uow.events.add(event)
        await uow.commit()
    async with uows() as uow:
        first = await uow.events.list(account_id=a.id, limit=2, cursor=None)
        rest = await uow.events.list(account_id=a.id, limit=2, cursor=first.next_cursor)
        in_session = await uow.events.list(session_id=session_id, limit=9, cursor=None)
        one = await uow.events.get(made[1].id)
    assert [e.id for e in first.items + rest.items] == [e.id for e in made[::-1]]
    assert [e.id for e in in_session.items] == [made[1].id, made[0].id]
    assert one is not None and one.event_type == "generation_requested"


async def test_a_browser_session_is_found_by_its_token_hash_and_its_sign_out_saved(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        uow.web_sessions.add(WebSession("t" * 64, a.id, "csrf", created_at=at(0), expires_at=at(60)))
        await uow.commit()
    async with uows() as uow:
        found = await uow.web_sessions.get("t" * 64)
        assert found is not None and found.active(at(1))
        found.revoked_at = at(2)
        await uow.commit()
    async with uows() as uow:
        ended = await uow.web_sessions.get("t" * 64)
        assert ended is not None and not ended.active(at(3)) and await uow.web_sessions.get("u" * 64) is None
