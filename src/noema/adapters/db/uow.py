"""The SQLAlchemy unit of work: one AsyncSession, its repositories, explicit commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from noema.adapters.db.generation_repositories import (
    SqlDeliveries,
    SqlGenerations,
    SqlKeyValue,
    SqlLinkCodes,
    SqlWebSessions,
)
from noema.adapters.db.lora_repositories import SqlLoras
from noema.adapters.db.outbox_signal import NOTIFY_SQL, OutboxSignal
from noema.adapters.db.payment_repositories import SqlPayments
from noema.adapters.db.platform_update_repositories import SqlPlatformUpdates
from noema.adapters.db.preference_repositories import SqlPreferences
from noema.adapters.db.repositories import SqlAccounts, SqlApiKeys, SqlEvents, SqlLedger, SqlSessions
from noema.adapters.db.tables import map_entities
from noema.adapters.ids import TimeOrderedIds
from noema.domain.delivery import Delivery, DeliveryStatus
from noema.domain.errors import Busy, Conflict
from noema.ports import IdFactory

_OUTBOX = "noema_outbox_written"  #: session.info flag: this transaction wrote a pending delivery


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

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        lock: asyncio.Lock | None = None,
        signal: OutboxSignal | None = None,
        *,
        ids: IdFactory,
        postgres: bool = False,
        live: Callable[[str], None] | None = None,
    ) -> None:
        self.ids = ids
        self._factory = factory
        self._lock = lock
        self._signal = signal
        self._postgres = postgres
        self._live = live
        self._announced: set[str] = set()
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
        self._announced = set()
        self.accounts, self.sessions, self.events = SqlAccounts(s), SqlSessions(s), SqlEvents(s)
        self.ledger, self.api_keys = SqlLedger(s), SqlApiKeys(s)
        self.generations, self.deliveries, self.kv = SqlGenerations(s), SqlDeliveries(s), SqlKeyValue(s)
        self.link_codes, self.web_sessions = SqlLinkCodes(s), SqlWebSessions(s)
        self.loras, self.preferences = SqlLoras(s, self.ids), SqlPreferences(s)
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
        error = exc[1] if len(exc) > 1 else None
        if isinstance(error, BaseException) and _is_overload(error):
            # Nothing was committed: the caller is told to come back (503 + Retry-After), not a 500.
            raise Busy() from error

    async def commit(self) -> None:
        """Make the staged changes permanent; a unique or check violation becomes Conflict.

        A commit that wrote a pending delivery wakes the delivery workers (see ``outbox_signal``).
        """
        session = self.session
        try:
            await session.flush()
            outbox = session.info.pop(_OUTBOX, False)
            if outbox and self._postgres:  # other replicas hear it when (and only if) this commits
                await session.execute(text(NOTIFY_SQL))
            await session.commit()
        except IntegrityError as exc:
            await self.rollback()
            raise Conflict("That conflicts with a change made at the same time; try again.") from exc
        if outbox and self._signal is not None:
            self._signal.notify()
        announced, self._announced = self._announced, set()
        if self._live is not None:
            for generation_id in announced:
                self._live(generation_id)

    def announce(self, generation_id: str) -> None:
        """Once this commits, call the factory's ``live`` with the generation id (nothing on rollback)."""
        self._announced.add(generation_id)

    async def rollback(self) -> None:
        """Drop the staged changes."""
        self.session.info.pop(_OUTBOX, None)
        self._announced = set()
        await self.session.rollback()
        self.deliveries = SqlDeliveries(self.session)  # what it had read under lock is no longer locked


class SqlUnitOfWorkFactory:
    """Makes units of work over one engine."""

    def __init__(
        self, engine: AsyncEngine, signal: OutboxSignal | None = None, *, ids: IdFactory | None = None
    ) -> None:
        map_entities()
        self.engine = engine
        self.signal = signal
        self.ids = ids or TimeOrderedIds()
        #: told each generation a committed unit of work announced (the in-process SSE hub), if set
        self.live: Callable[[str], None] | None = None
        self._sessions = async_sessionmaker(
            engine, expire_on_commit=False, autoflush=True, sync_session_class=_NoemaSession
        )
        # SQLite has one writer at a time. Queueing our own transactions on an asyncio lock is fair
        # and instant, where SQLite's busy handler would sleep-poll (up to 100 ms a try) under load.
        # Other processes (the CLI) still wait on SQLite's busy timeout. A use case must therefore
        # never open a second unit of work while its first is open.
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self._sessions,
            self._lock,
            self.signal,
            ids=self.ids,
            postgres=self.engine.dialect.name == "postgresql",
            live=self.live,
        )


def _is_overload(error: BaseException) -> bool:
    """Every pooled connection was busy past the pool's timeout, or the server had no resources to spare."""
    if isinstance(error, PoolTimeout):
        return True
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)  # PostgreSQL's class 53: insufficient resources
    return isinstance(error, DBAPIError) and isinstance(sqlstate, str) and sqlstate.startswith("53")


class _NoemaSession(Session):
    """Noema's sessions: each flush notes whether it made a delivery pending."""


@event.listens_for(_NoemaSession, "after_flush")
def _note_outbox_rows(session: Session, _context: Any) -> None:
    """Flag the transaction when a flush made a delivery pending: a new row, or one pending again.

    A worker's lease or retry leaves a row pending without changing its status: no wake-up for those.
    """
    if any(_became_pending(row, is_new=True) for row in session.new) or any(
        _became_pending(row, is_new=False) for row in session.dirty
    ):
        session.info[_OUTBOX] = True


def _became_pending(row: object, *, is_new: bool) -> bool:
    if not isinstance(row, Delivery) or row.status is not DeliveryStatus.PENDING:
        return False
    return is_new or inspect(row).attrs.status.history.has_changes()
