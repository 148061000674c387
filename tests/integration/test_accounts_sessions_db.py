"""Accounts and sessions on a real database: one account per identity, one active session per platform."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.services import accounts, events, sessions
from tests.fakes.clock import FakeClock

TIMEOUT = timedelta(minutes=30)


async def test_concurrent_first_contacts_create_one_account(container: Container) -> None:
    found = await asyncio.gather(
        *(
            accounts.find_or_create(container.uow, container.clock, platform=Platform.DISCORD, platform_id="42")
            for _ in range(8)
        )
    )
    assert len({f.account.id for f in found}) == 1
    assert sum(f.is_new for f in found) == 1


async def test_a_command_reuses_the_active_session_and_touches_it(container: Container, clock: FakeClock) -> None:
    aid = (await accounts.find_or_create(container.uow, clock, platform=Platform.TELEGRAM, platform_id="7")).account.id
    first = await sessions.touch(container.uow, clock, account_id=aid, platform="telegram", timeout=TIMEOUT)
    clock.advance(minutes=20)
    second = await sessions.touch(container.uow, clock, account_id=aid, platform="telegram", timeout=TIMEOUT)
    assert second.id == first.id
    assert second.last_activity_at == clock.now()
    page = await sessions.list_for_account(container.uow(), aid, limit=10, cursor=None)
    assert len(page.items) == 1


async def test_concurrent_commands_never_open_two_active_sessions(container: Container, clock: FakeClock) -> None:
    aid = (await accounts.find_or_create(container.uow, clock, platform=Platform.TELEGRAM, platform_id="8")).account.id
    opened = await asyncio.gather(
        *(sessions.touch(container.uow, clock, account_id=aid, platform="telegram", timeout=TIMEOUT) for _ in range(8))
    )
    assert len({s.id for s in opened}) == 1


async def test_activity_after_the_timeout_ends_the_old_session_and_opens_a_new_one(
    container: Container, clock: FakeClock
) -> None:
    aid = (await accounts.find_or_create(container.uow, clock, platform=Platform.TELEGRAM, platform_id="9")).account.id
    old = await sessions.touch(container.uow, clock, account_id=aid, platform="telegram", timeout=TIMEOUT)
    clock.advance(minutes=45)
    new = await sessions.touch(container.uow, clock, account_id=aid, platform="telegram", timeout=TIMEOUT)
    assert new.id != old.id
    ended = await sessions.get(container.uow(), old.id)
    assert ended.end_reason == "session_timeout_inactive"
    assert ended.ended_at == old.started_at + TIMEOUT


async def test_the_expiry_task_ends_idle_sessions_only(container: Container, clock: FakeClock) -> None:
    a = (await accounts.find_or_create(container.uow, clock, platform=Platform.TELEGRAM, platform_id="1")).account.id
    b = (await accounts.find_or_create(container.uow, clock, platform=Platform.TELEGRAM, platform_id="2")).account.id
    idle = await sessions.touch(container.uow, clock, account_id=a, platform="telegram", timeout=TIMEOUT)
    clock.advance(minutes=25)
    busy = await sessions.touch(container.uow, clock, account_id=b, platform="telegram", timeout=TIMEOUT)
    clock.advance(minutes=10)
    assert await sessions.expire_inactive(container.uow(), clock, timeout=TIMEOUT) == 1
    assert (await sessions.get(container.uow(), idle.id)).end_reason == "session_timeout_inactive"
    assert (await sessions.get(container.uow(), busy.id)).is_active
    assert await sessions.expire_inactive(container.uow(), clock, timeout=TIMEOUT) == 0
    log = await events.list_events(container.uow(), session_id=idle.id, limit=10, cursor=None)
    assert [e.event_type for e in log.items] == ["session_ended", "session_started"]


async def test_sessions_page_through_with_cursors(container: Container, clock: FakeClock) -> None:
    aid = (await accounts.find_or_create(container.uow, clock, platform=Platform.WEB, platform_id="w")).account.id
    ids = []
    for _ in range(5):
        s = await sessions.touch(container.uow, clock, account_id=aid, platform="web", timeout=TIMEOUT)
        ids.append(s.id)
        await sessions.end(container.uow(), clock, s.id, "user_ended")
        clock.advance(seconds=1)
    seen, cursor = [], None
    while True:
        page = await sessions.list_for_account(container.uow(), aid, limit=2, cursor=cursor)
        seen += [s.id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))
