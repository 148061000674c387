"""How long a tool's runs take lately: read from the database at most once per tool every half minute.

Every request prices its run from the median of the tool's last successful runs. Reading that
median costs a transaction per request (and a second one when a chat shows the estimate first);
a median half a minute old prices a run just as well, so it is kept in memory that long.
"""

from __future__ import annotations

import asyncio
import statistics

from noema.domain.tools import Tool
from noema.ports import UnitOfWorkFactory

#: Seconds a tool's median is reused before it is read again.
TTL_SECONDS = 30.0
#: How many recent runs the median is taken over, and how few are too few to trust it.
SAMPLE, ENOUGH = 20, 5


class RecentDurations:
    """The expected GPU seconds of each tool: the median of its recent runs, or the tool's own figure."""

    def __init__(self, uow_factory: UnitOfWorkFactory, *, ttl_seconds: float = TTL_SECONDS) -> None:
        self._uow_factory, self._ttl = uow_factory, ttl_seconds
        self._known: dict[str, tuple[float, float | None]] = {}  #: tool id -> (read at, median or None)

    async def expected_seconds(self, tool: Tool) -> float:
        """The median of the tool's recent runs when there are enough of them, else what the tool says."""
        now = asyncio.get_running_loop().time()
        known = self._known.get(tool.id)
        if known is None or now - known[0] >= self._ttl:
            known = (now, await self._median(tool.id))
            self._known[tool.id] = known
        return known[1] if known[1] is not None else tool.expected_seconds

    async def _median(self, tool_id: str) -> float | None:
        async with self._uow_factory() as uow:
            recent = await uow.generations.recent_durations(tool_id, limit=SAMPLE)
        return statistics.median(recent) if len(recent) >= ENOUGH else None
