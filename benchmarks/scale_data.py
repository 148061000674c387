"""Filling a PostgreSQL database with many accounts and generations fast, with set-based SQL (not through the app).

Rows are made by ``INSERT … SELECT … FROM generate_series``: ids are md5-derived UUIDs, so the same
number always names the same account, and each filler call continues where the last one stopped.
"""

from __future__ import annotations

import asyncpg

#: One in a hundred background runs is still live, as on a busy service; the rest succeeded.
_STATUS = "CASE WHEN i % 100 = 0 THEN 'running' ELSE 'succeeded' END"
_OUTPUTS = """'[{"kind": "image", "url": "https://media.example/out/' || i || '.png"}]'"""

_ACCOUNTS = """
INSERT INTO accounts (id, status, profile, balance_nanos, created_at, updated_at)
SELECT md5('account-' || i)::uuid::text, 'active', '{}', 1000000000,
       now() - make_interval(secs => ($2::int - i) * 300), now()
FROM generate_series($1::int, $2::int) AS i
"""

_GENERATIONS = """
INSERT INTO generations (
    id, account_id, tool_id, tool_command, deployment_id, inputs, status, progress,
    rate_nanos_per_second, price_multiplier, estimated_cost_nanos, hold_nanos, cost_nanos,
    shortfall_nanos, exp_gained, webhook_token_hash, requested_at, started_at, finished_at,
    settled_at, updated_at, max_runtime_seconds, outputs, cancel_requested, platform, delivery, meta,
    run_id
)
SELECT md5($5 || i)::uuid::text, {account}, 'txt2img', 'txt2img', 'bench-deployment',
       ('{{"input_text": "a lighthouse at dusk, take ' || i || '"}}')::json, {status}, 1.0,
       1000000, 1.0, 5000000, 5000000, 4000000, 0, 1, md5('token-' || i),
       now() - make_interval(secs => ($4::int - i) * $3::float8),
       now() - make_interval(secs => ($4::int - i) * $3::float8) + interval '2 seconds',
       now() - make_interval(secs => ($4::int - i) * $3::float8) + interval '6 seconds',
       now() - make_interval(secs => ($4::int - i) * $3::float8) + interval '6 seconds',
       now(), 600, ({outputs})::json, false, 'api', '{{}}', '{{}}', 'run-' || i
FROM generate_series($1::int, $2::int) AS i
"""


def _pg_dsn(db_url: str) -> str:
    return db_url.replace("postgresql+asyncpg://", "postgresql://")


async def add_accounts(db_url: str, first: int, last: int) -> None:
    """Background accounts numbered ``first``..``last``."""
    conn = await asyncpg.connect(_pg_dsn(db_url))
    try:
        await conn.execute(_ACCOUNTS, first, last)
    finally:
        await conn.close()


async def add_background_runs(db_url: str, first: int, last: int, *, accounts: int, total: int) -> None:
    """Generations ``first``..``last`` spread over background accounts 1..``accounts``, 30 s apart, up to now."""
    sql = _GENERATIONS.format(
        account="md5('account-' || (1 + i % $6::int))::uuid::text", status=_STATUS, outputs=_OUTPUTS
    )
    conn = await asyncpg.connect(_pg_dsn(db_url))
    try:
        await conn.execute(sql, first, last, 30.0, total, "generation-", accounts)
    finally:
        await conn.close()


async def add_account_runs(db_url: str, account_id: str, *, runs: int, live: int, tag: str) -> None:
    """``runs`` generations of one account, an hour apart up to now; the newest ``live`` of them still running."""
    status = f"CASE WHEN i > {runs - live} THEN 'running' ELSE 'succeeded' END"
    sql = _GENERATIONS.format(account="$6", status=status, outputs=_OUTPUTS)
    conn = await asyncpg.connect(_pg_dsn(db_url))
    try:
        await conn.execute(sql, 1, runs, 3600.0, runs, f"{tag}-{account_id}-", account_id)
    finally:
        await conn.close()


async def settle(db_url: str) -> None:
    """Vacuum and analyze, as a long-running database would be: no autovacuum pass starts mid-measurement."""
    conn = await asyncpg.connect(_pg_dsn(db_url))
    try:
        await conn.execute("VACUUM (ANALYZE) accounts, generations")
    finally:
        await conn.close()


async def count_rows(db_url: str) -> tuple[int, int]:
    """(accounts, generations) in the database."""
    conn = await asyncpg.connect(_pg_dsn(db_url))
    try:
        accounts = await conn.fetchval("SELECT count(*) FROM accounts")
        generations = await conn.fetchval("SELECT count(*) FROM generations")
        return int(accounts), int(generations)
    finally:
        await conn.close()
