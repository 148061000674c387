"""The SQLAlchemy unit of work: one AsyncSession, its repositories, explicit commit."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The open AsyncSession (only inside ``async with``)."""
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> SqlUnitOfWork:
        self._session = s = self._factory()
        self.accounts, self.sessions, self.events = SqlAccounts(s), SqlSessions(s), SqlEvents(s)
        self.ledger, self.api_keys = SqlLedger(s), SqlApiKeys(s)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # close() discards anything uncommitted and detaches the objects without expiring them,
        # so what a use case returns stays readable after its transaction ends.
        session, self._session = self.session, None
        await session.close()

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

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)
