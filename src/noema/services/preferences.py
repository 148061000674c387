"""Per-account defaults of a tool: read, replace, change some, and fill them into a request."""

from __future__ import annotations

from typing import Any

from noema.domain import preferences
from noema.domain.tools import Tool
from noema.ports import Clock, UnitOfWork


async def get(uow: UnitOfWork, account_id: str, tool: Tool) -> dict[str, Any]:
    """The account's defaults for the tool."""
    async with uow:
        return await uow.preferences.get(account_id, tool.id)


async def replace(uow: UnitOfWork, clock: Clock, account_id: str, tool: Tool, raw: Any) -> dict[str, Any]:
    """Set exactly these defaults (checked against the tool's schema first; nothing changes if one is bad)."""
    values = preferences.merged({}, preferences.check(tool, raw))
    async with uow:
        await uow.preferences.put(account_id, tool.id, values, now=clock.now())
        await uow.commit()
    return values


async def change(uow: UnitOfWork, clock: Clock, account_id: str, tool: Tool, raw: Any) -> dict[str, Any]:
    """Change some defaults (a None value removes one) and keep the others."""
    changes = preferences.check(tool, raw)
    async with uow:
        values = preferences.merged(await uow.preferences.get(account_id, tool.id), changes)
        await uow.preferences.put(account_id, tool.id, values, now=clock.now())
        await uow.commit()
    return values
