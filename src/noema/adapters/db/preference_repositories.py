"""Per-account defaults of each tool: one JSON object of input values per (account, tool)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from noema.adapters.db.tables import preferences

P = preferences.c


class SqlPreferences:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, account_id: str, tool_id: str) -> dict[str, Any]:
        """The account's defaults for the tool (empty when none are set)."""
        row = await self._s.execute(select(P.inputs).where(P.account_id == account_id, P.tool_id == tool_id))
        value = row.scalar_one_or_none()
        return dict(value) if isinstance(value, dict) else {}

    async def put(self, account_id: str, tool_id: str, inputs: dict[str, Any], *, now: datetime) -> None:
        """Replace the account's defaults for the tool (an empty object removes the row)."""
        await self._s.execute(delete(preferences).where(P.account_id == account_id, P.tool_id == tool_id))
        if inputs:
            await self._s.execute(
                preferences.insert().values(account_id=account_id, tool_id=tool_id, inputs=inputs, updated_at=now)
            )

    async def move_owner(self, from_id: str, to_id: str) -> None:
        """A merged account's defaults go to the survivor, except for tools the survivor has its own for."""
        kept = select(P.tool_id).where(P.account_id == to_id).scalar_subquery()
        await self._s.execute(delete(preferences).where(P.account_id == from_id, P.tool_id.in_(kept)))
        await self._s.execute(update(preferences).where(P.account_id == from_id).values(account_id=to_id))
