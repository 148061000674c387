"""A real ``noema serve`` killed (SIGKILL) while it applies a Stripe event, then Stripe's retry: credited once.

The test holds the account's row lock in PostgreSQL, so the server's webhook request stops inside
its transaction (the payment locked, the event recorded, waiting for the account) and is seen
waiting there in ``pg_stat_activity``; then the server is killed. Nothing of that transaction may
survive, and the same event delivered again to the restarted server must credit exactly once.

PostgreSQL only: SQLite has no row lock to stop a request at a chosen point (its one write lock is
taken when a transaction begins, before the event is even looked at).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.fakes.processes import NoemaProcess, free_port, funded_api_account, noema_env, run_noema, start_serve
from tests.fakes.stripe_api import SECRET_KEY, WEBHOOK_SECRET, FakeStripe

ADMIN_KEY = "stripe-restart-admin-key-0123456789"
ADMIN = {"X-Internal-Client-Key": ADMIN_KEY}


def _env(db_url: str, port: int, tmp_path: Path, fake: FakeStripe) -> dict[str, str]:
    return noema_env(
        {
            "NOEMA_DATABASE_URL": db_url,
            "NOEMA_HOST": "127.0.0.1",
            "NOEMA_PORT": str(port),
            "NOEMA_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox"),
            "NOEMA_INTERNAL_API_KEYS": f"admin:{ADMIN_KEY}",
            "NOEMA_LOG_FORMAT": "json",
            "NOEMA_STRIPE_SECRET_KEY": SECRET_KEY,
            "NOEMA_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "NOEMA_STRIPE_API_BASE": fake.url,
        }
    )


async def _blocked_by_us(conn: asyncpg.Connection, *, seconds: float = 20) -> int:
    """The server session that waits for a lock this connection holds, once there is one (bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        pid = await conn.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pg_backend_pid() = ANY(pg_blocking_pids(pid)) LIMIT 1"
        )
        if pid:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("the webhook request never reached the held lock")


@pytest.mark.slow  # minutes, not seconds (measured with --durations)
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_server_killed_before_committing_a_stripe_credit_credits_it_once_on_stripes_retry(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    port = free_port()
    env = _env(db_url, port, tmp_path, fake_stripe)
    fake_stripe.webhook_url = f"http://127.0.0.1:{port}/api/webhook/stripe"
    processes: list[NoemaProcess] = []
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        first = await start_serve(env, cwd=tmp_path, name="serve-1", port=port)
        processes.append(first)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            aid, auth = await funded_api_account(
                client, admin=ADMIN, env=env, cwd=tmp_path, platform_id="stripe-kill", usd="1"
            )
            topup = await client.post("/api/v1/topups", json={"provider": "stripe", "amountUsd": "5"}, headers=auth)
            assert topup.status_code == 201, f"{topup.text}\n{first.tail()}"
        payment_id = topup.json()["paymentId"]
        event = fake_stripe.complete(topup.json()["checkoutUrl"].rsplit("/", 1)[1])

        held = conn.transaction()
        await held.start()
        await conn.execute("SELECT id FROM accounts WHERE id = $1 FOR UPDATE", aid)
        delivery = asyncio.create_task(fake_stripe.send(event))
        server = await _blocked_by_us(conn)
        # It stopped past the payment's lock and the event's record (written, uncommitted), before the credit.
        recorded = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND relation = 'payment_events'::regclass "
            "AND mode = 'RowExclusiveLock' AND granted",
            server,
        )
        assert recorded == 1
        assert first.kill() == -9, first.tail()
        with pytest.raises(httpx.TransportError):
            await delivery  # Stripe saw no answer: it will deliver the event again
        await held.rollback()

        # Nothing of the killed transaction is left: no event recorded, nothing credited.
        assert await conn.fetchval("SELECT count(*) FROM payment_events") == 0
        row = await conn.fetchrow("SELECT status, paid_at FROM payments WHERE id = $1", payment_id)
        assert (row["status"], row["paid_at"]) == ("created", None)
        assert await conn.fetchval("SELECT balance_nanos FROM accounts WHERE id = $1", aid) == 1_000_000_000

        second = await start_serve(env, cwd=tmp_path, name="serve-2", port=port)
        processes.append(second)
        retried = await fake_stripe.send(event)
        assert retried.status_code == 200 and retried.json() == {"status": "applied"}, second.tail()
        again = await fake_stripe.send(event)
        assert again.json() == {"status": "replayed"}
        assert await conn.fetchval("SELECT balance_nanos FROM accounts WHERE id = $1", aid) == 6_000_000_000
        credits = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE account_id = $1 AND transaction_type = 'payment_credit'", aid
        )
        assert credits == 1
        verified = await asyncio.to_thread(run_noema, "ledger", "verify", env=env, cwd=tmp_path)
        assert verified.returncode == 0 and "payments agree" in verified.stdout, verified.stdout + verified.stderr
    finally:
        for process in processes:
            process.stop()
        await conn.close()
