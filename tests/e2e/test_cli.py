"""The ``noema`` command, run as a real process against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from noema.adapters.db.engine import create_engine
from noema.bootstrap import build_container
from noema.domain.accounts import Platform
from noema.services import accounts
from tests.conftest import funded_key, make_settings, running_app
from tests.fakes.processes import noema_env, run_noema


def noema(db_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    settings = noema_env({"NOEMA_DATABASE_URL": db_url, **(env or {})})
    return run_noema(*args, env=settings, cwd=Path(tempfile.mkdtemp(prefix="noema-cli-")))


async def _telegram_account(db_url: str, pid: str) -> str:
    c = build_container(make_settings(db_url))
    try:
        return (await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id=pid)).account.id
    finally:
        await c.close()


async def test_credit_show_apikey_and_verify(db_url: str) -> None:
    aid = await _telegram_account(db_url, "4242")
    r = noema(db_url, "credit", "telegram:4242", "2.50", "--reason", "welcome", "--external-id", "gift-1")
    assert r.returncode == 0, r.stderr
    assert "Credited $2.50" in r.stdout and "Balance: $2.50." in r.stdout
    again = noema(db_url, "credit", aid, "2.50", "--external-id", "gift-1")
    assert again.returncode == 0 and "nothing added" in again.stdout
    shown = noema(db_url, "accounts", "show", "telegram:4242")
    assert (
        shown.returncode == 0
        and "$2.50" in shown.stdout
        and "USD" not in shown.stdout
        and "telegram:4242" in shown.stdout
    )
    key = noema(db_url, "apikey", "create", aid)
    assert key.returncode == 0 and key.stdout.strip().startswith("nk_") and "not be shown again" in key.stderr
    ok = noema(db_url, "ledger", "verify")
    assert ok.returncode == 0 and "no drift" in ok.stdout


async def test_ledger_verify_exits_1_with_a_table_on_drift(db_url: str) -> None:
    aid = await _telegram_account(db_url, "1")
    assert noema(db_url, "credit", aid, "1").returncode == 0
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE accounts SET balance_nanos = 5 WHERE id = :id"), {"id": aid})
    await engine.dispose()
    r = noema(db_url, "ledger", "verify")
    assert r.returncode == 1
    assert aid in r.stdout and "1.000000000" in r.stdout and "0.000000005" in r.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["credit", "telegram:999", "1"], 1, "No account holds"),
        (["credit", "nonsense", "1"], 1, "must be a UUID"),
        (["credit", "telegram:1", "-5"], 2, "No such option"),
        (["credit", "telegram:1", "--", "-5"], 1, "negative"),
        (["credit", "telegram:1", "NaN"], 1, "finite"),
        (["accounts", "show", "discord:1"], 1, "No account holds"),
    ],
)
async def test_bad_cli_input_exits_non_zero_with_a_message_and_changes_nothing(
    db_url: str, args: list[str], code: int, message: str
) -> None:
    await _telegram_account(db_url, "1")
    r = noema(db_url, *args)
    assert r.returncode == code
    assert "Traceback" not in r.stderr and r.stderr.strip()
    assert message in r.stderr
    assert "no drift" in noema(db_url, "ledger", "verify").stdout
    shown = noema(db_url, "accounts", "show", "telegram:1").stdout
    assert re.search(r"Balance\W+\$0\.00\W", shown), shown


def test_a_bad_setting_stops_the_cli_naming_the_variable(tmp_path: Path) -> None:
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/x.db", "migrate", env={"NOEMA_PORT": "eighty"})
    assert r.returncode == 2 and "NOEMA_PORT" in r.stderr and "Traceback" not in r.stderr


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/fresh.db", "migrate")
    assert r.returncode == 0 and "Database at migration" in r.stdout


def test_tools_list_shows_prices_and_why_a_tool_is_disabled(tmp_path: Path) -> None:
    env = {"NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox")}
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "tools", "list", env=env)
    assert r.returncode == 0, r.stderr
    assert "/txt2img" in r.stdout and "A10G" in r.stdout and "0.000337000" in r.stdout
    assert "disabled: No price" in r.stdout and "H200" in r.stdout
    refreshed = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "tools", "refresh", env=env)
    assert refreshed.returncode == 0 and "6 tools" in refreshed.stdout


async def test_generations_list_shows_recent_and_stuck_runs(db_url: str, tmp_path: Path) -> None:

    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        gid = (
            await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "cli"}}
            )
        ).json()["id"]
    env = {"NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox"), "NOEMA_WORKERS_ENABLED": "false"}
    listed = noema(db_url, "generations", "list", env=env)
    assert listed.returncode == 0 and gid in listed.stdout and "/txt2img" in listed.stdout
    assert gid not in noema(db_url, "generations", "list", "--stuck", env=env).stdout
    engine = create_engine(db_url)
    async with engine.begin() as conn:  # make it look abandoned: live, no news for an hour
        old = datetime.now(UTC) - timedelta(hours=1)
        await conn.execute(
            text("UPDATE generations SET status = 'running', last_update_at = :t, requested_at = :t WHERE id = :id"),
            {"t": old if "postgres" in db_url else old.replace(tzinfo=None), "id": gid},
        )
    await engine.dispose()
    stuck = noema(db_url, "generations", "list", "--stuck", env=env)
    assert stuck.returncode == 0 and gid in stuck.stdout and "no news for 10 minutes" in stuck.stdout


async def test_generations_list_pages_newest_first_with_the_cursor_it_prints(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        made = []
        for n in range(3):
            body = {"toolId": "txt2img", "inputs": {"input_text": f"page {n}"}}
            made.append((await client.post("/api/v1/generations", headers=auth, json=body)).json()["id"])
    env = {"NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox"), "NOEMA_WORKERS_ENABLED": "false"}
    first = noema(db_url, "generations", "list", "--limit", "2", "--json", env=env)
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    assert [g["id"] for g in page["items"]] == made[:0:-1] and page["nextCursor"]
    rest = noema(db_url, "generations", "list", "--limit", "2", "--cursor", page["nextCursor"], "--json", env=env)
    assert json.loads(rest.stdout) == {"items": [json.loads(rest.stdout)["items"][0]], "nextCursor": None}
    assert json.loads(rest.stdout)["items"][0]["id"] == made[0]
    table = noema(db_url, "generations", "list", "--limit", "2", env=env)
    assert made[2] in table.stdout and made[1] in table.stdout and made[0] not in table.stdout
    assert f"noema generations list --cursor {page['nextCursor']}" in table.stderr
    wrong = noema(db_url, "generations", "list", "--cursor", "nonsense", env=env)
    assert wrong.returncode == 1 and "cursor is not valid" in wrong.stderr and "Traceback" not in wrong.stderr


def test_a_database_that_cannot_be_reached_is_named_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    refused = noema("postgresql+asyncpg://postgres@127.0.0.1:1/test", "accounts", "list")
    missing = noema(f"sqlite+aiosqlite:///{tmp_path}/no-such-folder/noema.db", "generations", "list")
    for r, reason in ((refused, "Connect call failed"), (missing, "unable to open database file")):
        assert r.returncode == 1 and not r.stdout
        assert "The database could not be used" in r.stderr and reason in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
