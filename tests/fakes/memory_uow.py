"""An in-memory unit of work: the service rules run on it at unit speed, with the database's semantics.

It keeps what ``SqlUnitOfWork`` promises (the contract suite in tests/integration/repositories holds
all three to the same tests): changes are visible only after ``commit()``; leaving without committing,
or ``rollback()``, drops them; a broken unique key, foreign key or money check fails the commit
with ``Conflict`` and changes nothing. One unit of work is open at a time (as on SQLite, whose
factory queues them on a lock), so row locks (``for_update``) have nothing to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from noema.ports import Clock, IdFactory, UnitOfWork, UnitOfWorkFactory
from tests.fakes.ids import SequentialIds
from tests.fakes.memory_accounts import (
    MemoryAccounts,
    MemoryApiKeys,
    MemoryEvents,
    MemoryLedger,
    MemorySessions,
    MemoryWebSessions,
)
from tests.fakes.memory_generations import (
    MemoryDeliveries,
    MemoryGenerations,
    MemoryKeyValue,
    MemoryLinkCodes,
    MemoryPlatformUpdates,
    MemoryPreferences,
)
from tests.fakes.memory_payments import MemoryLoras, MemoryPayments
from tests.fakes.memory_store import Tables, check


class MemoryUnitOfWork(UnitOfWork):
    """A transaction over a copy of the factory's tables, put back on commit."""

    def __init__(self, factory: MemoryUnitOfWorkFactory) -> None:
        self._factory = factory
        self._tables: Tables | None = None
        self._announced: set[str] = set()

    @property
    def tables(self) -> Tables:
        """This transaction's copy of the tables (only inside ``async with``)."""
        if self._tables is None:
            raise RuntimeError("the unit of work is not open")
        return self._tables

    async def __aenter__(self) -> MemoryUnitOfWork:
        await self._factory.lock.acquire()
        self._begin()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._tables, self._announced = None, set()
        self._factory.lock.release()

    def _begin(self) -> None:
        t, now = self._factory.tables.copy(), self._factory.now
        self._tables = t
        self._accounts, self._sessions, self._events = (
            MemoryAccounts(t, now),
            MemorySessions(t, now),
            MemoryEvents(t, now),
        )
        self._ledger, self._api_keys = MemoryLedger(t, now), MemoryApiKeys(t, now)
        self._generations, self._deliveries = MemoryGenerations(t, now), MemoryDeliveries(t, now)
        self._kv, self._link_codes = MemoryKeyValue(t, now), MemoryLinkCodes(t, now)
        self._web_sessions, self._preferences = MemoryWebSessions(t, now), MemoryPreferences(t, now)
        self._loras, self._payments = MemoryLoras(t, now, self.ids), MemoryPayments(t, now)
        self._platform_updates = MemoryPlatformUpdates(t, now)

    async def commit(self) -> None:
        """Check the constraints, then make this transaction's tables the committed ones."""
        tables = self.tables
        try:
            check(tables)
        except Exception:
            await self.rollback()
            raise
        self._factory.tables = tables.copy()
        self._factory.commits += 1
        announced, self._announced = self._announced, set()
        for generation_id in announced:
            if self._factory.live is not None:
                self._factory.live(generation_id)

    def announce(self, generation_id: str) -> None:
        """Once this commits, tell the factory's ``live`` (nothing on rollback)."""
        self._announced.add(generation_id)

    async def rollback(self) -> None:
        """Drop the staged changes: start again from the committed tables."""
        if self._tables is None:
            raise RuntimeError("the unit of work is not open")
        self._announced = set()
        self._begin()

    @property
    def ids(self) -> IdFactory:
        return self._factory.ids

    @property
    def accounts(self) -> MemoryAccounts:
        return self._accounts

    @property
    def sessions(self) -> MemorySessions:
        return self._sessions

    @property
    def events(self) -> MemoryEvents:
        return self._events

    @property
    def ledger(self) -> MemoryLedger:
        return self._ledger

    @property
    def api_keys(self) -> MemoryApiKeys:
        return self._api_keys

    @property
    def generations(self) -> MemoryGenerations:
        return self._generations

    @property
    def deliveries(self) -> MemoryDeliveries:
        return self._deliveries

    @property
    def kv(self) -> MemoryKeyValue:
        return self._kv

    @property
    def link_codes(self) -> MemoryLinkCodes:
        return self._link_codes

    @property
    def web_sessions(self) -> MemoryWebSessions:
        return self._web_sessions

    @property
    def preferences(self) -> MemoryPreferences:
        return self._preferences

    @property
    def loras(self) -> MemoryLoras:
        return self._loras

    @property
    def payments(self) -> MemoryPayments:
        return self._payments

    @property
    def platform_updates(self) -> MemoryPlatformUpdates:
        return self._platform_updates


class MemoryUnitOfWorkFactory(UnitOfWorkFactory):
    """Makes units of work over one in-memory database (a fresh one per factory)."""

    def __init__(self, clock: Clock | None = None, *, ids: IdFactory | None = None) -> None:
        self.ids = ids or SequentialIds()
        self.tables = Tables()
        self.lock = asyncio.Lock()
        self.clock = clock
        self.commits = 0  #: how many units of work committed (a test can see that a refusal wrote nothing)
        #: told each generation a committed unit of work announced, as ``SqlUnitOfWorkFactory.live``
        self.live: Callable[[str], None] | None = None

    def now(self) -> datetime:
        """The time the database would stamp (``now()`` in SQL): the clock's, if given."""
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)
