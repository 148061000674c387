"""Inserting a row unless its key is taken, on PostgreSQL and SQLite alike (``ON CONFLICT DO NOTHING``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_if_absent(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """Insert the row unless one with the same key exists; True when this call inserted it.

    A concurrent insert of the same key waits for the other transaction and then does nothing,
    where a plain INSERT would fail the whole transaction with a unique violation.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    result = await session.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))
