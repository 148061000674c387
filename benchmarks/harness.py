"""Shared pieces of the benchmarks: databases, a started app with an instant backend, a no-op route, figures."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
from fastapi import FastAPI, Request
from tests.fakes.backends import PassThroughBackend

from noema.adapters.logging import configure_logging
from noema.bootstrap import Container, build_container
from noema.config import Settings
from noema.domain.accounts import Platform
from noema.domain.money import parse_usd
from noema.domain.runs import RunUpdate
from noema.entrypoints.http.app import create_app
from noema.ports import Backend
from noema.services import accounts, api_keys, economy

PG_ADMIN_DSN = os.environ.get("NOEMA_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BASE_URL = "http://noema.bench"
NOOP_PATH = "/bench/noop"


# --- databases ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """The URL of an empty database: a SQLite file in ``workdir``, or a new PostgreSQL database dropped after."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        return
    name = f"noema_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def quiet_production_logging() -> None:
    """Log as production does (INFO, JSON, secrets masked) but into /dev/null, so the cost is real and silent."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    saved, sys.stderr = sys.stderr, devnull
    try:
        configure_logging("INFO", "json")
    finally:
        sys.stderr = saved


# --- the instant backend -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedRun:
    """One call of ``queue_run``: when (perf_counter), for which generation, with which token."""

    at: float
    run_id: str
    generation_id: str
    token: str


class InstantBackend(PassThroughBackend):
    """A Backend whose ``queue_run`` returns a fresh run id at once and records the call.

    The catalog methods go to the wrapped (sandbox) backend; polling and cancelling are not benchmarked.
    """

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.calls: list[QueuedRun] = []

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """Record the call time and the webhook's generation id and token; return a new run id."""
        at = time.perf_counter()
        query = parse_qs(urlsplit(webhook_url or "").query)
        run_id = str(uuid.uuid4())
        self.calls.append(QueuedRun(at, run_id, query["generation_id"][0], query["token"][0]))
        return run_id

    async def get_run(self, run_id: str) -> RunUpdate:
        """Not benchmarked."""
        raise NotImplementedError("the instant backend does not poll runs")

    async def cancel_run(self, run_id: str) -> None:
        """Not benchmarked."""
        raise NotImplementedError("the instant backend does not cancel runs")


# --- the app --------------------------------------------------------------------------------------


def bench_settings(db_url: str, workdir: Path, **overrides: Any) -> Settings:
    """Settings for a benchmark: sandbox backend, no background workers, limits out of the way."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "public_url": BASE_URL,
        "workers_enabled": False,
        "migrate_on_start": True,
        "sandbox_data_dir": str(workdir / "sandbox"),
        "max_concurrent_runs": 100,
        "max_runs_per_minute": 10_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Bench:
    """A started Noema app with an instant backend, a client for it and the no-op baseline route."""

    app: FastAPI
    container: Container
    client: httpx.AsyncClient
    backend: InstantBackend
    noop_calls: list[float]


@contextlib.asynccontextmanager
async def started_app(settings: Settings) -> AsyncIterator[Bench]:
    """Noema started (migrated, sandbox up, catalog loaded), ``queue_run`` made instant, plus ``POST /bench/noop``."""
    container = build_container(settings)
    app = create_app(container)
    noop_calls: list[float] = []

    async def noop(request: Request) -> dict[str, str]:
        await request.json()
        noop_calls.append(time.perf_counter())
        return {"status": "ok"}

    app.add_api_route(NOOP_PATH, noop, methods=["POST"], include_in_schema=False)
    async with app.router.lifespan_context(app):
        await container.catalog.tools()  # the catalog comes from the real sandbox
        backend = InstantBackend(container.generations.backend)
        container.generations.backend = backend
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=60) as client:
            yield Bench(app, container, client, backend, noop_calls)


async def funded_account(container: Container, usd: str) -> tuple[str, dict[str, str]]:
    """A new API account with ``usd`` of credit: (account id, Authorization header)."""
    found = await accounts.find_or_create(
        container.uow, container.clock, platform=Platform.API, platform_id=f"bench-{uuid.uuid4().hex[:12]}"
    )
    aid = found.account.id
    await economy.credit(
        container.uow(), container.clock, economy.Transfer(account_id=aid, amount_nanos=parse_usd(usd))
    )
    key = await api_keys.create(container.uow(), container.clock, aid, secrets=container.secrets)
    return aid, {"Authorization": f"Bearer {key.plain}"}


# --- figures --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, right-aligned except the first column."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(c) for c in cells)
        return "  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))])

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])
