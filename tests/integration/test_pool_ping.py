"""PostgreSQL pooled connections: pinged before use only after sitting idle, and a cut one is replaced.

The pool used to ping every connection it handed out (asyncpg's ping is three round trips); now only
one idle for ``Pool.ping_idle_after`` is pinged, and a connection cut sooner fails its one statement
and makes the pool start afresh.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from noema.adapters.db.engine import Pool, create_engine
from tests.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.postgres


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _cut(pid: int) -> None:
    """End that server process, and wait until the server has let it go."""
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(500):
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"backend {pid} still listed after pg_terminate_backend")
    finally:
        await admin.close()


async def test_an_idle_connection_cut_by_the_server_is_pinged_and_replaced(pg_database: str) -> None:
    engine = create_engine(pg_database, pool=Pool(size=1, overflow=0, ping_idle_after=0.0))
    try:
        first = await _backend_pid(engine)
        await _cut(first)
        second = await _backend_pid(engine)  # the ping found it dead: a new connection, no error
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_cut_while_recently_used_fails_once_and_the_pool_starts_afresh(pg_database: str) -> None:
    engine = create_engine(pg_database, pool=Pool(size=1, overflow=0, ping_idle_after=3600.0))
    try:
        first = await _backend_pid(engine)
        await _cut(first)
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(engine)  # not pinged (used moments ago): its statement meets the cut
        assert failed.value.connection_invalidated
        assert await _backend_pid(engine) not in (first, 0)
    finally:
        await engine.dispose()
