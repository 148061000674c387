"""Keyset pagination over (created_at, id), newest first, with opaque cursors."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from noema.domain.errors import InvalidInput
from noema.domain.ids import parse_id
from noema.ports import Page

T = TypeVar("T")


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """An opaque cursor naming the last item of a page."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor names, or InvalidInput.

    Cursors come back from clients, so everything is checked before it reaches SQL: the time must
    carry a zone (the columns hold aware UTC times) and the id must be a UUID.
    """
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        stamp, row_id = raw.split("|", 1)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("naive time")
        return when.astimezone(UTC), parse_id(row_id)
    except (ValueError, OverflowError, binascii.Error, InvalidInput):
        raise InvalidInput("The cursor is not valid; use the nextCursor of a previous page.") from None


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    created_col: ColumnElement[Any],
    id_col: ColumnElement[Any],
    limit: int,
    cursor: str | None,
    stamp_attr: str = "created_at",
) -> Page[Any]:
    """Run ``stmt`` for one page, newest first."""
    if cursor:
        stamp, row_id = decode_cursor(cursor)
        # A row comparison, not "a < s OR (a = s AND id < i)": the database seeks an index on (…, time, id)
        # straight to the cursor instead of reading every newer row first.
        stmt = stmt.where(tuple_(created_col, id_col) < (stamp, row_id))
    stmt = stmt.order_by(created_col.desc(), id_col.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = encode_cursor(getattr(items[-1], stamp_attr), items[-1].id) if more and items else None
    return Page(items, next_cursor)
