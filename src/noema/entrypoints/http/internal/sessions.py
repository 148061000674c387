"""Internal API: sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from noema.domain.accounts import parse_platform
from noema.domain.errors import InvalidInput, SessionNotFound
from noema.domain.ids import parse_id
from noema.entrypoints.http.deps import ClockDep, PagingDep, SettingsDep, UowDep, UowFactoryDep
from noema.entrypoints.http.schemas import (
    EventOut,
    PageOut,
    SessionEndIn,
    SessionIn,
    SessionOut,
    event_out,
    page_out,
    session_out,
)
from noema.services import events, sessions

router = APIRouter(tags=["sessions"])


@router.get("/users/{account_id}/sessions", response_model=PageOut[SessionOut])
async def list_sessions(account_id: str, uow: UowDep, page: PagingDep) -> PageOut[SessionOut]:
    """The user's sessions, newest first."""
    result = await sessions.list_for_account(
        uow, parse_id(account_id, what="masterAccountId"), limit=page.limit, cursor=page.cursor
    )
    return page_out(result, session_out)


@router.get("/users/{account_id}/sessions/active", response_model=SessionOut)
async def active_session(
    account_id: str, uow: UowDep, platform: Annotated[str | None, Query(max_length=32)] = None
) -> SessionOut:
    """The user's active session on a platform (the platform query parameter is required)."""
    if not platform:
        raise InvalidInput("The platform query parameter is required.", details={"field": "platform"})
    session = await sessions.active(uow, parse_id(account_id, what="masterAccountId"), parse_platform(platform).value)
    if session is None:
        raise SessionNotFound("No active session on that platform.")
    return session_out(session)


@router.post("/sessions", response_model=SessionOut, status_code=201, responses={200: {"model": SessionOut}})
async def start_session(
    body: SessionIn, uow: UowDep, uow_factory: UowFactoryDep, clock: ClockDep, settings: SettingsDep, response: Response
) -> SessionOut:
    """Open a session, or return the active one (200) — never a second active session."""
    account_id = parse_id(body.master_account_id, what="masterAccountId")
    platform = parse_platform(body.platform).value
    before = await sessions.active(uow, account_id, platform)
    session = await sessions.touch(
        uow_factory,
        clock,
        account_id=account_id,
        platform=platform,
        timeout=settings.session_timeout,
        context=body.context,
    )
    if before is not None and before.id == session.id:
        response.status_code = 200
    return session_out(session)


@router.get("/sessions/{session_id}", response_model=SessionOut)
async def get_session(session_id: str, uow: UowDep) -> SessionOut:
    """One session."""
    return session_out(await sessions.get(uow, parse_id(session_id, what="sessionId")))


@router.put("/sessions/{session_id}/activity", response_model=SessionOut)
async def session_activity(session_id: str, uow: UowDep, clock: ClockDep) -> SessionOut:
    """Record activity on an active session."""
    return session_out(await sessions.record_activity(uow, clock, parse_id(session_id, what="sessionId")))


@router.put("/sessions/{session_id}/end", response_model=SessionOut)
async def end_session(session_id: str, body: SessionEndIn, uow: UowDep, clock: ClockDep) -> SessionOut:
    """End a session."""
    return session_out(await sessions.end(uow, clock, parse_id(session_id, what="sessionId"), body.end_reason))


@router.get("/sessions/{session_id}/events", response_model=PageOut[EventOut])
async def session_events(session_id: str, uow: UowDep, page: PagingDep) -> PageOut[EventOut]:
    """The session's events, newest first."""
    sid = parse_id(session_id, what="sessionId")
    await sessions.get(uow, sid)
    result = await events.list_events(uow, session_id=sid, limit=page.limit, cursor=page.cursor)
    return page_out(result, event_out)
