"""An account with a long history reads its live runs and history pages without walking that history.

PostgreSQL plans a prepared statement for its parameters five times, then may switch to one generic plan
that guesses an account has as many rows as the average account. The statements here are the ones the
repository sends (caught as they go out), prepared again and run under the generic plan; what is
asserted is how many rows the plan reads, never how long it takes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from noema.adapters.db.engine import Pool, create_engine
from noema.adapters.db.generation_repositories import SqlGenerations
from noema.adapters.db.tables import map_entities
from noema.domain.generation import LIVE
from noema.ports import GenerationFilter

pytestmark = pytest.mark.postgres

BIG = "00000000-0000-4000-8000-00000000b1c0"
BIG_RUNS, OTHER_ACCOUNTS, OTHER_RUNS = 3_000, 5_000, 15_000
NOW = datetime(2026, 6, 1, tzinfo=UTC)

_ROWS = """
INSERT INTO generations (
    id, account_id, tool_id, tool_command, deployment_id, inputs, status, progress, rate_nanos_per_second,
    price_multiplier, estimated_cost_nanos, hold_nanos, cost_nanos, shortfall_nanos, exp_gained,
    webhook_token_hash, requested_at, updated_at, max_runtime_seconds, outputs, cancel_requested, platform,
    delivery, meta
)
SELECT md5($1 || i)::uuid::text, {account}, 't', 'txt2img', 'd', '{{}}', {status}, 1.0, 1, 1.0, 1, 1, 1, 0, 0,
       'h', $2::timestamptz - make_interval(mins => i), $2::timestamptz, 600, '[]', false, 'api', '{{}}', '{{}}'
FROM generate_series(1, $3::int) AS i
"""


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    """The test PostgreSQL database holding one account with a long history among many small ones."""
    map_entities()
    conn = await asyncpg.connect(pg_database.replace("+asyncpg", ""))
    try:
        await conn.execute("TRUNCATE generations, accounts CASCADE")
        await conn.execute(
            "INSERT INTO accounts (id, status, profile, created_at, updated_at)"
            " SELECT md5('acct' || i)::uuid::text, 'active', '{}', $1, $1 FROM generate_series(1, $2::int) AS i",
            NOW,
            OTHER_ACCOUNTS,
        )
        await conn.execute(
            "INSERT INTO accounts (id, status, profile, created_at, updated_at) VALUES ($1, 'active', '{}', $2, $2)",
            BIG,
            NOW,
        )
        # The big account: all ended but the two newest; everyone else: one run in a hundred still live.
        big = _ROWS.format(account=f"'{BIG}'", status="CASE WHEN i <= 2 THEN 'running' ELSE 'succeeded' END")
        await conn.execute(big, "big", NOW, BIG_RUNS)
        others = _ROWS.format(
            account=f"md5('acct' || (1 + i % {OTHER_ACCOUNTS}))::uuid::text",
            status="CASE WHEN i % 100 = 0 THEN 'running' ELSE 'succeeded' END",
        )
        await conn.execute(others, "other", NOW, OTHER_RUNS)
        await conn.execute("ANALYZE generations")
    finally:
        await conn.close()
    return pg_database


class Sent:
    """The last SQL statement an engine sent, with its parameters."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statement = ""
        self.parameters: tuple[Any, ...] = ()
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statement, self.parameters = statement, tuple(parameters)


async def _generic_plan(url: str, sent: Sent) -> dict[str, Any]:
    """The plan PostgreSQL runs the sent statement with once it has gone generic, run once for real."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(f"PREPARE sent AS {sent.statement}")
        args = ", ".join(_literal(v) for v in sent.parameters)
        for _ in range(6):  # as an app connection would, before the planner may go generic
            await conn.execute(f"EXECUTE sent({args})")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE sent({args})")
        plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
        return plan
    finally:
        await conn.close()


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    assert isinstance(value, str) and "'" not in value
    return f"'{value}'"


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows every scan in the plan read from the table: the ones it returned plus the ones it threw away."""
    own = 0
    if "Scan" in plan["Node Type"]:
        own = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


async def _search(url: str, where: GenerationFilter, *, limit: int, cursor: str | None) -> tuple[Sent, Any]:
    engine = create_engine(url, pool=Pool(size=1, overflow=0))
    sent = Sent(engine)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            page = await SqlGenerations(session).search(where, limit=limit, cursor=cursor)
            return sent, page
    finally:
        await engine.dispose()


async def test_the_live_runs_of_a_long_history_are_read_without_walking_it(pg_url: str) -> None:
    sent, page = await _search(pg_url, GenerationFilter(account_id=BIG, status_in=tuple(LIVE)), limit=50, cursor=None)
    assert len(page.items) == 2
    plan = await _generic_plan(pg_url, sent)
    assert _rows_read(plan) <= 10, json.dumps(plan, indent=1)


async def test_counting_live_runs_of_a_long_history_reads_only_them(pg_url: str) -> None:
    engine = create_engine(pg_url, pool=Pool(size=1, overflow=0))
    sent = Sent(engine)
    try:
        async with AsyncSession(engine) as session:
            assert await SqlGenerations(session).count_live(BIG) == 2
    finally:
        await engine.dispose()
    plan = await _generic_plan(pg_url, sent)
    assert _rows_read(plan) <= 10, json.dumps(plan, indent=1)


async def test_a_history_page_deep_in_a_long_history_reads_one_page(pg_url: str) -> None:
    where = GenerationFilter(account_id=BIG)
    _, first = await _search(pg_url, where, limit=100, cursor=None)
    cursor = first.next_cursor
    for _ in range(15):  # 1,500 runs deep
        _, page = await _search(pg_url, where, limit=100, cursor=cursor)
        cursor = page.next_cursor
    sent, page = await _search(pg_url, where, limit=20, cursor=cursor)
    assert len(page.items) == 20
    assert page.items[0].requested_at < NOW - timedelta(minutes=1_500)
    plan = await _generic_plan(pg_url, sent)
    assert _rows_read(plan) <= 21 + 10, json.dumps(plan, indent=1)


async def test_the_first_history_page_of_a_long_history_reads_one_page(pg_url: str) -> None:
    sent, page = await _search(pg_url, GenerationFilter(account_id=BIG), limit=20, cursor=None)
    assert [g.requested_at for g in page.items] == sorted((g.requested_at for g in page.items), reverse=True)
    plan = await _generic_plan(pg_url, sent)
    assert _rows_read(plan) <= 21 + 10, json.dumps(plan, indent=1)


async def test_the_reconciler_reads_only_the_runs_due_a_poll_however_many_are_live(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
    try:
        # The big account's 3,000 runs are all in flight and were heard from; three went quiet.
        await conn.execute(
            "UPDATE generations SET status = 'running', next_poll_at = $2::timestamptz + interval '1 minute'"
            " WHERE account_id = $1",
            BIG,
            NOW,
        )
        await conn.execute(
            "UPDATE generations SET next_poll_at = $2::timestamptz - interval '1 minute'"
            " WHERE id IN (SELECT id FROM generations WHERE account_id = $1 ORDER BY id LIMIT 3)",
            BIG,
            NOW,
        )
        await conn.execute(
            "UPDATE generations SET next_poll_at = $1::timestamptz + interval '1 minute'"
            " WHERE status = 'running' AND next_poll_at IS NULL",
            NOW,
        )
        await conn.execute("ANALYZE generations")
    finally:
        await conn.close()
    engine = create_engine(pg_url, pool=Pool(size=1, overflow=0))
    sent = Sent(engine)
    try:
        async with AsyncSession(engine) as session:  # rolled back: the rows stay due for the plan below
            claimed = await SqlGenerations(session).claim_due_polls(NOW, limit=25, lease_seconds=20)
    finally:
        await engine.dispose()
    assert len(claimed) == 3
    plan = await _generic_plan(pg_url, sent)
    assert _rows_read(plan) <= 10, json.dumps(plan, indent=1)
