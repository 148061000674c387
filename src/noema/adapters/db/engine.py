"""Creating the async engine, with SQLite set up to serialise writers instead of failing them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@dataclass(frozen=True)
class Pool:
    """How many PostgreSQL connections a process keeps, may add at a peak, and how long one waits for one."""

    size: int = 20
    overflow: int = 10
    timeout: float = 5.0
    ping_idle_after: float = 10.0  #: a connection unused this long (seconds) is pinged before it is handed out


def create_engine(url: str, *, echo: bool = False, pool: Pool = Pool()) -> AsyncEngine:
    """An engine for ``url``; on SQLite every transaction takes the write lock up front.

    SQLite's default deferred transactions fail with "database is locked" when two readers both
    try to upgrade to writers; ``BEGIN IMMEDIATE`` makes the second one wait instead (busy timeout),
    which turns the per-account read-check-write of the ledger into a serialised, correct step.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _serialise_sqlite(engine)
        return engine
    engine = create_async_engine(
        url, echo=echo, pool_size=pool.size, max_overflow=pool.overflow, pool_timeout=pool.timeout
    )
    _ping_when_idle(engine, pool.ping_idle_after)
    return engine


def _ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """Check a pooled PostgreSQL connection before use only when it sat idle for a while.

    SQLAlchemy's ``pool_pre_ping`` checks every checkout, and asyncpg's ping is three round trips
    (BEGIN, an empty query, ROLLBACK): more than a webhook's whole transaction. A connection that was
    in use seconds ago is alive; one idle longer may have been cut (a server restart, a proxy's idle
    timeout) and is pinged. A failed ping recycles every pooled connection, as ``pool_pre_ping`` does;
    a connection broken within the last seconds fails its one statement, and the pool is recycled.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info["noema_idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["noema_idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("noema_idle_since")
        if idle_since is not None and time.monotonic() - idle_since < after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError(f"pooled connection failed its ping: {type(exc).__name__}") from exc


def _serialise_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide how a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
