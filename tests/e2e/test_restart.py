"""``noema serve`` killed with SIGKILL mid-flight and started again, as real processes, on SQLite and PostgreSQL.

SPEC §3: "The service may stop at any moment (deploy, crash, kill -9) and start again: no generation
is left stuck, none is charged twice or given away free, and no result is delivered twice or lost."
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from noema.adapters.db.engine import create_engine
from tests.fakes.processes import NoemaProcess, free_port, funded_api_account, noema_env, run_noema, start_serve

ADMIN_KEY = "restart-admin-key-0123456789"
ADMIN = {"X-Internal-Client-Key": ADMIN_KEY}
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
GENERATIONS = 6


def _settings(db_url: str, port: int, sandbox_dir: Path) -> dict[str, str]:
    return noema_env(
        {
            "NOEMA_DATABASE_URL": db_url,
            "NOEMA_HOST": "127.0.0.1",
            "NOEMA_PORT": str(port),
            "NOEMA_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NOEMA_SANDBOX_DATA_DIR": str(sandbox_dir),
            "NOEMA_SANDBOX_RUN_SECONDS": "2",
            "NOEMA_INTERNAL_API_KEYS": f"admin:{ADMIN_KEY}",
            "NOEMA_QUIET_SECONDS": "1",
            "NOEMA_POLL_SECONDS": "1",
            "NOEMA_LOG_FORMAT": "json",
            # All six runs of the one account must be live at once (the default cap is 3).
            "NOEMA_MAX_CONCURRENT_RUNS": str(GENERATIONS),
        }
    )


async def _statuses(client: httpx.AsyncClient, ids: list[str], auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    bodies = {}
    for gid in ids:
        response = await client.get(f"/api/v1/generations/{gid}", headers=auth)
        assert response.status_code == 200, response.text
        bodies[gid] = response.json()
    return bodies


async def _db_rows(db_url: str, sql: str, **params: object) -> list[tuple[Any, ...]]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql), params)).all()]
    finally:
        await engine.dispose()


async def _listed(client: httpx.AsyncClient, aid: str, delivery_status: str) -> set[str]:
    response = await client.get(
        "/internal/v1/data/generations",
        headers=ADMIN,
        params={"deliveryStatus": delivery_status, "masterAccountId": aid, "limit": 100},
    )
    assert response.status_code == 200, response.text
    return {g["id"] for g in response.json()["items"]}


async def _submit(client: httpx.AsyncClient, auth: dict[str, str], server: NoemaProcess) -> list[str]:
    """The ids of ``GENERATIONS`` txt2img runs, each accepted (202)."""
    ids = []
    for i in range(GENERATIONS):
        r = await client.post(
            "/api/v1/generations",
            headers={**auth, "Idempotency-Key": f"restart-{i}"},
            json={"toolId": "txt2img", "inputs": {"input_text": f"restart {i}"}},
        )
        assert r.status_code == 202, f"{r.text}\n{server.tail()}"
        ids.append(r.json()["id"])
    return ids


async def _wait_for_a_running_run(
    client: httpx.AsyncClient, ids: list[str], auth: dict[str, str], server: NoemaProcess
) -> None:
    """Return once a run is seen running (its started_at is persisted); fail after 10 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        seen = await _statuses(client, ids, auth)
        if any(b["status"] == "running" for b in seen.values()):
            return
        assert loop.time() < deadline, f"no run reached running: {seen}\n{server.tail()}"
        await asyncio.sleep(0.05)


async def _assert_left_in_flight(db_url: str, ids: list[str], aid: str) -> None:
    """What the dead server left behind: runs in flight, holds open, nothing settled for them yet."""
    rows = await _db_rows(db_url, "SELECT id, status FROM generations")
    left = {str(gid): status for gid, status in rows}
    assert set(left) == set(ids)
    live_at_kill = {gid for gid, status in left.items() if status not in TERMINAL}
    assert live_at_kill, f"every run had already ended before the kill: {left}"
    at_kill = {k for (k,) in await _db_rows(db_url, "SELECT idempotency_key FROM ledger_entries")}
    assert all(f"hold:{gid}" in at_kill and f"settle:{gid}:debit" not in at_kill for gid in live_at_kill), at_kill
    [(held,)] = await _db_rows(db_url, "SELECT held_nanos FROM accounts WHERE id = :id", id=aid)
    assert held > 0


async def _wait_until_every_run_ended(
    client: httpx.AsyncClient, ids: list[str], auth: dict[str, str], server: NoemaProcess
) -> dict[str, dict[str, Any]]:
    """Every run's body once all have ended; fail if any is still live 60 s on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        final = await _statuses(client, ids, auth)
        if all(b["status"] in TERMINAL for b in final.values()):
            return final
        stuck = {gid: b["status"] for gid, b in final.items() if b["status"] not in TERMINAL}
        assert loop.time() < deadline, f"still live 60 s after the restart: {stuck}\n{server.tail()}"
        await asyncio.sleep(0.25)


async def _assert_each_succeeded_run_charged_once(
    client: httpx.AsyncClient, db_url: str, aid: str, final: dict[str, dict[str, Any]], succeeded: set[str]
) -> None:
    """One debit per succeeded run (through the API, and by its ledger key), none for the rest."""
    page = await client.get(f"/internal/v1/data/users/{aid}/transactions", headers=ADMIN, params={"limit": 100})
    assert page.status_code == 200, page.text
    assert page.json()["nextCursor"] is None
    debits = [t for t in page.json()["items"] if t["type"] == "debit"]
    for gid in final:
        mine = [t for t in debits if t["relatedItems"].get("generationId") == gid]
        assert len(mine) == (1 if gid in succeeded else 0), (gid, final[gid]["status"], mine)
        if mine:
            assert mine[0]["amountUsd"] == final[gid]["costUsd"]
    keys = [k for (k,) in await _db_rows(db_url, "SELECT idempotency_key FROM ledger_entries")]
    for gid in succeeded:
        assert keys.count(f"settle:{gid}:debit") == 1, gid


@pytest.mark.slow  # minutes, not seconds (measured with --durations)
async def test_a_server_killed_with_sigkill_mid_run_restarts_and_every_run_ends_charged_once(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = _settings(db_url, port, tmp_path / "sandbox")
    processes: list[NoemaProcess] = []
    try:
        first = await start_serve(env, cwd=tmp_path, name="serve-1", port=port)
        processes.append(first)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            # Each run holds the most it may cost (15 minutes of A10G, $0.3033): enough for all of them.
            aid, auth = await funded_api_account(
                client, admin=ADMIN, env=env, cwd=tmp_path, platform_id="restart-1", usd="5"
            )
            ids = await _submit(client, auth, first)
            # Kill once a run is seen running while the others are still live.
            await _wait_for_a_running_run(client, ids, auth, first)
        assert first.kill() == -9, first.tail()
        await _assert_left_in_flight(db_url, ids, aid)

        second = await start_serve(env, cwd=tmp_path, name="serve-2", port=port)
        processes.append(second)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            final = await _wait_until_every_run_ended(client, ids, auth, second)

            # Every run ended; a run that failed cost nothing.
            for body in final.values():
                assert body["status"] in {"succeeded", "failed"}, body
                if body["status"] == "failed":
                    assert body["costUsd"] == "0.000000000", body
            succeeded = {gid for gid, body in final.items() if body["status"] == "succeeded"}
            assert succeeded, f"no run succeeded after the restart: {final}\n{second.tail()}"
            for gid in succeeded:
                assert final[gid]["costUsd"] != "0.000000000" and final[gid]["outputs"], final[gid]

            await _assert_each_succeeded_run_charged_once(client, db_url, aid, final, succeeded)

            # The ledger adds up, and no money is left held.
            verified = await asyncio.to_thread(run_noema, "ledger", "verify", env=env, cwd=tmp_path)
            assert verified.returncode == 0 and "no drift" in verified.stdout, verified.stdout + verified.stderr
            wallet = (await client.get(f"/internal/v1/data/users/{aid}/economy", headers=ADMIN)).json()
            assert wallet["heldUsd"] == "0.000000000", wallet
            spent = sum(int(final[gid]["costUsd"].replace(".", "")) for gid in ids)
            assert int(wallet["usdCredit"].replace(".", "")) == 5_000_000_000 - spent, wallet

            # API runs are read (and streamed), never sent: not one outbox row was written for them,
            # before or after the kill. Delivery across restarts is proven for the chats
            # (tests/e2e/telegram/test_telegram_delivery.py).
            assert await _listed(client, aid, "pending") == set()
            assert await _db_rows(db_url, "SELECT generation_id, kind, status FROM deliveries") == []
    finally:
        for process in processes:
            process.kill()
