"""Creating the async engine, with SQLite set up to serialise writers instead of failing them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@dataclass(frozen=True)
class Pool:
    """How many PostgreSQL connections a process keeps, may add at a peak, and how long one waits for one."""

    size: int = 20
    overflow: int = 10
    timeout: float = 5.0


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
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool.size,
        max_overflow=pool.overflow,
        pool_timeout=pool.timeout,
        pool_pre_ping=True,
    )


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
