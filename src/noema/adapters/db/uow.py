"""The SQLAlchemy unit of work: one AsyncSession, its repositories, explicit commit."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from noema.adapters.db.generation_repositories import (
    SqlDeliveries,
    SqlGenerations,
    SqlKeyValue,
    SqlLinkCodes,
    SqlWebSessions,
)
from noema.adapters.db.lora_repositories import SqlLoras
from noema.adapters.db.payment_repositories import SqlPayments
from noema.adapters.db.platform_update_repositories import SqlPlatformUpdates
from noema.adapters.db.preference_repositories import SqlPreferences
from noema.adapters.db.repositories import SqlAccounts, SqlApiKeys, SqlEvents, SqlLedger, SqlSessions
from noema.adapters.db.tables import map_entities
from noema.domain.errors import Conflict


class SqlUnitOfWork:
    """A transaction over every repository; rolled back on exit unless committed."""

    accounts: SqlAccounts
    sessions: SqlSessions
    events: SqlEvents
    ledger: SqlLedger
    api_keys: SqlApiKeys
    generations: SqlGenerations
    deliveries: SqlDeliveries
    kv: SqlKeyValue
    link_codes: SqlLinkCodes
    web_sessions: SqlWebSessions
    loras: SqlLoras
    preferences: SqlPreferences
    payments: SqlPayments
    platform_updates: SqlPlatformUpdates

    def __init__(self, factory: async_sessionmaker[AsyncSession], lock: asyncio.Lock | None = None) -> None:
        self._factory = factory
        self._lock = lock
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The open AsyncSession (only inside ``async with``)."""
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> SqlUnitOfWork:
        if self._lock is not None:
            await self._lock.acquire()
        self._session = s = self._factory()
        self.accounts, self.sessions, self.events = SqlAccounts(s), SqlSessions(s), SqlEvents(s)
        self.ledger, self.api_keys = SqlLedger(s), SqlApiKeys(s)
        self.generations, self.deliveries, self.kv = SqlGenerations(s), SqlDeliveries(s), SqlKeyValue(s)
        self.link_codes, self.web_sessions = SqlLinkCodes(s), SqlWebSessions(s)
        self.loras, self.preferences = SqlLoras(s), SqlPreferences(s)
        self.payments, self.platform_updates = SqlPayments(s), SqlPlatformUpdates(s)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # close() discards anything uncommitted and detaches the objects without expiring them,
        # so what a use case returns stays readable after its transaction ends.
        session, self._session = self.session, None
        try:
            await session.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    async def commit(self) -> None:
        """Make the staged changes permanent; a unique or check violation becomes Conflict."""
        try:
            await self.session.commit()
        except IntegrityError as exc:
            await self.session.rollback()
            raise Conflict("That conflicts with a change made at the same time; try again.") from exc

    async def rollback(self) -> None:
        """Drop the staged changes."""
        await self.session.rollback()


class SqlUnitOfWorkFactory:
    """Makes units of work over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        map_entities()
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        # SQLite has one writer at a time. Queueing our own transactions on an asyncio lock is fair
        # and instant, where SQLite's busy handler would sleep-poll (up to 100 ms a try) under load.
        # Other processes (the CLI) still wait on SQLite's busy timeout. A use case must therefore
        # never open a second unit of work while its first is open.
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._lock)
