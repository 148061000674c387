"""Shared fixtures: a fresh database per test on SQLite and on the real PostgreSQL, the app, a client.

Integration and end-to-end tests that take ``db_url`` run twice: once on SQLite and once on the
PostgreSQL at 127.0.0.1:5432. PostgreSQL being down fails those tests; it never skips them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from noema.adapters.db.engine import create_engine
from noema.adapters.db.migrate import upgrade_to_head
from noema.adapters.db.tables import metadata
from noema.bootstrap import Container, build_container
from noema.config import Settings
from noema.entrypoints.http.app import create_app
from tests.fakes.clock import FakeClock
from tests.fakes.comfyui_peer import Server, start_real

PG_ADMIN_DSN = os.environ.get("NOEMA_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_KEY = "admin-key-0123456789abcdef"
PLATFORM_KEY = "telegram-key-0123456789abcdef"
ADMIN = {"X-Internal-Client-Key": ADMIN_KEY}
PLATFORM = {"X-Internal-Client-Key": PLATFORM_KEY}
T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    """Log in-process apps' events as structlog's defaults do, but tracebacks as plain text.

    The defaults render an exception with rich, every frame's local variables included: one logged
    exception out of SQLAlchemy cost seconds of CPU in a test that provokes it. A served Noema never
    renders that way (``configure_logging`` uses plain tracebacks), so neither do the tests.
    """
    del config
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.StackInfoRenderer(),
            structlog.dev.set_exc_info,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
        ]
    )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _pg_url(database: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"


async def _create_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One migrated PostgreSQL database for this test process (per xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"noema_test_{worker}_{uuid.uuid4().hex[:6]}"
    run_sync(_create_pg_database(name))
    run_sync(_migrate(_pg_url(name)))
    yield _pg_url(name)

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_sync(drop())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    run_sync(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name != "alembic_version")
            await conn.execute(text(f"TRUNCATE {names} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated, empty database: SQLite in a temp file, or the real PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "noema.db"
        shutil.copy(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    await _truncate(url)
    return url


@pytest.fixture(scope="session")
def real_comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real ComfyUI peer, once per test session (contract, examples and end-to-end tests share it)."""
    yield from start_real(tmp_path_factory.mktemp("real-comfyui"))


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when the test says so."""
    return FakeClock()


def make_settings(db_url: str, **overrides: Any) -> Settings:
    """Settings for tests: the given database, two internal clients, no background workers.

    The values are Any: each setting has its own type, which Settings validates.
    """
    values: dict[str, Any] = {
        "database_url": db_url,
        "internal_api_keys": f"admin:{ADMIN_KEY},telegram:{PLATFORM_KEY}",
        "workers_enabled": False,
        "public_url": "http://noema.test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def container(db_url: str, clock: FakeClock) -> AsyncIterator[Container]:
    """A container over the test database with the fake clock."""
    c = build_container(make_settings(db_url), clock=clock)
    await c.start()
    yield c
    await c.close()


@pytest.fixture
async def app(db_url: str, clock: FakeClock) -> AsyncIterator[FastAPI]:
    """The Noema app, started (lifespan run) over the test database."""
    application = create_app(build_container(make_settings(db_url), clock=clock))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://noema.test") as c:
        yield c


@asynccontextmanager
async def running_app(
    db_url: str, tmp_path: Path, **overrides: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Noema with the embedded sandbox over a real clock, started, and a client for it."""
    values: dict[str, object] = {"sandbox_data_dir": str(tmp_path / "sandbox"), "sandbox_run_seconds": 0.4}
    values.update(overrides)
    application = create_app(build_container(make_settings(db_url, **values)))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://noema.test", timeout=30) as c:
            yield application, c


async def funded_key(
    application: FastAPI, usd: str = "1", platform_id: str | None = None
) -> tuple[str, dict[str, str]]:
    """A new API account with ``usd`` of credit: (account id, Authorization header)."""
    from noema.domain.accounts import Platform
    from noema.domain.money import parse_usd
    from noema.services import accounts, api_keys, economy

    c: Container = application.state.container
    found = await accounts.find_or_create(
        c.uow, c.clock, platform=Platform.API, platform_id=platform_id or uuid.uuid4().hex[:12]
    )
    aid = found.account.id
    if parse_usd(usd, allow_zero=True):
        await economy.credit(c.uow(), c.clock, economy.Transfer(account_id=aid, amount_nanos=parse_usd(usd)))
    key = await api_keys.create(c.uow(), c.clock, aid, secrets=c.secrets)
    return aid, {"Authorization": f"Bearer {key.plain}"}


async def wait_terminal(
    client: httpx.AsyncClient,
    gid: str,
    headers: dict[str, str],
    *,
    seconds: float = 20,
    application: FastAPI | None = None,
) -> dict[str, Any]:
    """Poll the public API until the generation ends (running the reconciler if an app is given)."""
    from noema.services import reconcile

    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        body: dict[str, Any] = (await client.get(f"/api/v1/generations/{gid}", headers=headers)).json()
        if body["status"] in {"succeeded", "failed", "cancelled", "timed_out"}:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"generation {gid} still {body['status']} after {seconds}s")
        if application is not None:
            c: Container = application.state.container
            await reconcile.reconcile_due(
                c.uow, c.clock, c.backend, metrics=c.metrics, poll_every=timedelta(0), quiet_for=timedelta(0)
            )
        await asyncio.sleep(0.1)
