"""Recording and reading the append-only event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from noema.domain.errors import EventNotFound, InvalidInput
from noema.domain.sessions import Event
from noema.ports import Page, UnitOfWork

MAX_EVENT_DATA_BYTES = 16_000


def record(
    uow: UnitOfWork,
    event_type: str,
    *,
    now: datetime,
    account_id: str | None = None,
    session_id: str | None = None,
    platform: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Stage an event in the caller's transaction, so it commits or rolls back with the change it logs."""
    event = Event(
        id=uow.ids.new(),
        event_type=event_type,
        created_at=now,
        account_id=account_id,
        session_id=session_id,
        source_platform=platform,
        event_data=dict(data or {}),
    )
    uow.events.add(event)
    return event


async def create_event(
    uow: UnitOfWork,
    event_type: str,
    *,
    now: datetime,
    account_id: str,
    session_id: str | None,
    platform: str | None,
    data: dict[str, Any],
) -> Event:
    """Log an event sent by another service, checking the account and session exist."""
    if len(repr(data)) > MAX_EVENT_DATA_BYTES:
        raise InvalidInput(f"eventData may hold at most {MAX_EVENT_DATA_BYTES} characters.")
    async with uow:
        if await uow.accounts.get(account_id) is None:
            raise InvalidInput("masterAccountId names no account.", details={"field": "masterAccountId"})
        if session_id is not None:
            session = await uow.sessions.get(session_id)
            if session is None or session.account_id != account_id:
                raise InvalidInput("sessionId names no session of this account.", details={"field": "sessionId"})
        event = record(
            uow,
            event_type,
            now=now,
            account_id=account_id,
            session_id=session_id,
            platform=platform,
            data=data,
        )
        await uow.commit()
        return event


async def get_event(uow: UnitOfWork, event_id: str) -> Event:
    """One event."""
    async with uow:
        event = await uow.events.get(event_id)
        if event is None:
            raise EventNotFound()
        return event


async def list_events(
    uow: UnitOfWork,
    *,
    account_id: str | None = None,
    session_id: str | None = None,
    limit: int,
    cursor: str | None,
) -> Page[Event]:
    """Events of an account or of a session, newest first."""
    async with uow:
        return await uow.events.list(account_id=account_id, session_id=session_id, limit=limit, cursor=cursor)
