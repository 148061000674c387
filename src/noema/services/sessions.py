"""Sessions: reuse the active one, open one when there is none, end them after inactivity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from noema.domain.errors import AccountNotFound, Conflict, InvalidInput, SessionNotFound
from noema.domain.sessions import EndReason, Session
from noema.ports import Clock, Page, UnitOfWork, UnitOfWorkFactory
from noema.services import events


async def touch(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    *,
    account_id: str,
    platform: str,
    timeout: timedelta,
    context: dict[str, Any] | None = None,
) -> Session:
    """The account's active session on the platform, touched; a new one if none is active.

    A session past its timeout that the expiry task has not ended yet is ended here first, so
    activity after a long pause always starts a fresh session. Two concurrent first commands
    race on the one-active-session unique index; the loser reads the winner's session.
    """
    for _attempt in range(3):
        try:
            return await _touch_once(uow_factory(), clock.now(), account_id, platform, timeout, context or {})
        except Conflict:
            continue
    raise Conflict("The session is being opened by another request; try again.")


async def _touch_once(
    uow: UnitOfWork,
    now: datetime,
    account_id: str,
    platform: str,
    timeout: timedelta,
    context: dict[str, Any],
) -> Session:
    async with uow:
        account = await uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()
        session = await uow.sessions.active(account_id, platform)
        if session is not None and session.is_expired(now, timeout):
            _end(uow, session, session.last_activity_at + timeout, EndReason.TIMEOUT.value)
            await uow.commit()  # the ended row must be out of the unique index before the new one goes in
            session = None
        if session is None:
            session = Session(
                id=uow.ids.new(),
                account_id=account_id,
                platform=platform,
                started_at=now,
                last_activity_at=now,
                context=context,
            )
            uow.sessions.add(session)
            events.record(
                uow,
                "session_started",
                now=now,
                account_id=account_id,
                session_id=session.id,
                platform=platform,
            )
        else:
            session.touch(now)
        account.last_seen_platform = platform
        await uow.commit()
        return session


def _end(uow: UnitOfWork, session: Session, at: datetime, reason: str) -> None:
    if session.end(at, reason):
        events.record(
            uow,
            "session_ended",
            now=session.ended_at or at,
            account_id=session.account_id,
            session_id=session.id,
            platform=session.platform,
            data={"endReason": reason},
        )


async def get(uow: UnitOfWork, session_id: str) -> Session:
    """One session, or SessionNotFound."""
    async with uow:
        session = await uow.sessions.get(session_id)
        if session is None:
            raise SessionNotFound()
        return session


async def active(uow: UnitOfWork, account_id: str, platform: str) -> Session | None:
    """The active session of the account on the platform, if any."""
    async with uow:
        if await uow.accounts.get(account_id) is None:
            raise AccountNotFound()
        return await uow.sessions.active(account_id, platform)


async def list_for_account(uow: UnitOfWork, account_id: str, *, limit: int, cursor: str | None) -> Page[Session]:
    """The account's sessions, newest first."""
    async with uow:
        if await uow.accounts.get(account_id) is None:
            raise AccountNotFound()
        return await uow.sessions.list_for_account(account_id, limit=limit, cursor=cursor)


async def record_activity(uow: UnitOfWork, clock: Clock, session_id: str) -> Session:
    """Touch an active session; an ended one cannot be revived."""
    async with uow:
        session = await uow.sessions.get(session_id)
        if session is None:
            raise SessionNotFound()
        if not session.is_active:
            raise InvalidInput("That session has ended; start a new one.")
        session.touch(clock.now())
        await uow.commit()
        return session


async def end(uow: UnitOfWork, clock: Clock, session_id: str, reason: str) -> Session:
    """End a session (ending an ended session changes nothing)."""
    async with uow:
        session = await uow.sessions.get(session_id)
        if session is None:
            raise SessionNotFound()
        _end(uow, session, clock.now(), reason)
        await uow.commit()
        return session


async def expire_inactive(uow: UnitOfWork, clock: Clock, *, timeout: timedelta, batch: int = 200) -> int:
    """End every session idle for longer than the timeout, as of its last activity + timeout."""
    async with uow:
        stale = await uow.sessions.inactive_since(clock.now() - timeout, limit=batch)
        for session in stale:
            _end(uow, session, session.last_activity_at + timeout, EndReason.TIMEOUT.value)
        await uow.commit()
        return len(stale)
