"""SQLAlchemy repository of the chat updates Noema has answered (so a redelivered one is not answered twice)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from noema.adapters.db.inserts import insert_if_absent
from noema.adapters.db.tables import platform_updates
from noema.domain.platform_updates import PlatformUpdate

U = platform_updates.c


class SqlPlatformUpdates:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def seen(self, update: PlatformUpdate) -> bool:
        """Whether this update was answered already."""
        stmt = select(U.update_id).where(U.platform == update.platform, U.update_id == update.update_id)
        return (await self._s.execute(stmt)).first() is not None

    async def record(self, update: PlatformUpdate, *, at: datetime) -> bool:
        """Remember the update as answered in this transaction; False when it already was."""
        values = {"platform": update.platform, "update_id": update.update_id, "handled_at": at}
        return await insert_if_absent(self._s, platform_updates, values)

    async def forget_before(self, cutoff: datetime, *, limit: int) -> int:
        """Forget at most ``limit`` updates answered before ``cutoff``; how many were forgotten."""
        oldest = select(U.platform, U.update_id).where(U.handled_at < cutoff).limit(limit)
        result = await self._s.execute(delete(platform_updates).where(tuple_(U.platform, U.update_id).in_(oldest)))
        return int(getattr(result, "rowcount", 0) or 0)
