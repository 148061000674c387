"""Builds the container, Noema's object graph, from Settings: engine, units of work, clock, workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from noema.adapters.clock import SystemClock
from noema.adapters.db.engine import create_engine
from noema.adapters.db.migrate import upgrade_to_head
from noema.adapters.db.uow import SqlUnitOfWorkFactory
from noema.config import Settings
from noema.ports import Clock


@dataclass
class Container:
    """Everything the entrypoints need, built once per process."""

    settings: Settings
    engine: AsyncEngine
    uow: SqlUnitOfWorkFactory
    clock: Clock
    started_at: datetime
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    @property
    def session_timeout(self) -> timedelta:
        """How long a session may be idle before it ends."""
        return timedelta(minutes=self.settings.session_timeout_minutes)

    async def start(self) -> None:
        """Bring the schema up to date (when configured to)."""
        if self.settings.migrate_on_start:
            await upgrade_to_head(self.engine)

    async def close(self) -> None:
        """Release connections."""
        await self.engine.dispose()


def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    """The container for these settings (nothing is connected until ``start``)."""
    engine = create_engine(settings.database_url)
    clock = clock or SystemClock()
    return Container(
        settings=settings,
        engine=engine,
        uow=SqlUnitOfWorkFactory(engine),
        clock=clock,
        started_at=clock.now(),
    )
