"""Internal API: the event log."""

from __future__ import annotations

from fastapi import APIRouter

from noema.domain.accounts import parse_platform
from noema.domain.ids import parse_id
from noema.entrypoints.http.deps import ClockDep, PagingDep, UowDep
from noema.entrypoints.http.schemas import EventIn, EventOut, PageOut, event_out, page_out
from noema.services import accounts, events

router = APIRouter(tags=["events"])


@router.post("/events", response_model=EventOut, status_code=201)
async def create_event(body: EventIn, uow: UowDep, clock: ClockDep) -> EventOut:
    """Append an event to the log."""
    event = await events.create_event(
        uow,
        body.event_type,
        now=clock.now(),
        account_id=parse_id(body.master_account_id, what="masterAccountId"),
        session_id=parse_id(body.session_id, what="sessionId") if body.session_id else None,
        platform=parse_platform(body.source_platform).value if body.source_platform else None,
        data=body.event_data,
    )
    return event_out(event)


@router.get("/events/{event_id}", response_model=EventOut)
async def get_event(event_id: str, uow: UowDep) -> EventOut:
    """One event."""
    return event_out(await events.get_event(uow, parse_id(event_id, what="eventId")))


@router.get("/users/{account_id}/events", response_model=PageOut[EventOut])
async def user_events(account_id: str, uow: UowDep, page: PagingDep) -> PageOut[EventOut]:
    """The user's events, newest first."""
    aid = parse_id(account_id, what="masterAccountId")
    await accounts.get(uow, aid)
    result = await events.list_events(uow, account_id=aid, limit=page.limit, cursor=page.cursor)
    return page_out(result, event_out)
