"""``noema accounts create|list|show`` as real processes, and the account id on the API and the web page."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from noema.bootstrap import Container
from noema.services import api_keys
from tests.conftest import running_app
from tests.e2e.test_cli import noema
from tests.e2e.test_web_pages import _first_run


def _uuid(text: str) -> str:
    return str(uuid.UUID(text.strip()))


async def test_accounts_create_prints_only_the_new_id_and_holds_the_identity_given(db_url: str) -> None:
    plain = noema(db_url, "accounts", "create")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == _uuid(plain.stdout)  # nothing but the id: `id=$(noema accounts create)`
    named = noema(db_url, "accounts", "create", "--telegram", "777", "--name", "Ann")
    assert named.returncode == 0, named.stderr
    shown = json.loads(noema(db_url, "accounts", "show", "telegram:777", "--json").stdout)
    assert shown["id"] == _uuid(named.stdout) and shown["name"] == "Ann" and shown["identities"] == ["telegram:777"]
    assert shown["balanceUsd"] == "0.000000000"
    bare = json.loads(noema(db_url, "accounts", "show", _uuid(plain.stdout), "--json").stdout)
    assert bare["identities"] == [] and bare["name"] is None


async def test_accounts_create_refuses_a_taken_identity_or_two_platforms_and_changes_nothing(db_url: str) -> None:
    first = _uuid(noema(db_url, "accounts", "create", "--discord", "42").stdout)
    taken = noema(db_url, "accounts", "create", "--discord", "42")
    assert taken.returncode == 1 and f"discord:42 already belongs to account {first}" in taken.stderr
    both = noema(db_url, "accounts", "create", "--discord", "1", "--telegram", "2")
    assert both.returncode == 2 and "not both" in both.stderr
    bad = noema(db_url, "accounts", "create", "--telegram", "no spaces please")
    assert bad.returncode == 1 and "platformId" in bad.stderr
    for r in (taken, both, bad):
        assert not r.stdout.strip() and "Traceback" not in r.stderr
    listed = json.loads(noema(db_url, "accounts", "list", "--json").stdout)
    assert [a["id"] for a in listed["items"]] == [first]


async def test_accounts_list_pages_newest_first_as_a_table_and_as_json(db_url: str) -> None:
    made = [_uuid(noema(db_url, "accounts", "create", "--name", f"user {n}").stdout) for n in range(3)]
    first = noema(db_url, "accounts", "list", "--limit", "2", "--json")
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    assert [a["id"] for a in page["items"]] == made[:0:-1] and page["nextCursor"]
    rest = json.loads(
        noema(db_url, "accounts", "list", "--limit", "2", "--cursor", page["nextCursor"], "--json").stdout
    )
    assert [a["id"] for a in rest["items"]] == [made[0]] and rest["nextCursor"] is None
    table = noema(db_url, "accounts", "list", "--limit", "2")
    assert table.returncode == 0 and "2 accounts" in table.stdout
    assert made[2] in table.stdout and made[1] in table.stdout and made[0] not in table.stdout
    assert f"noema accounts list --cursor {page['nextCursor']}" in table.stderr
    wrong = noema(db_url, "accounts", "list", "--cursor", "nonsense")
    assert wrong.returncode == 1 and "cursor is not valid" in wrong.stderr


async def test_the_account_id_is_in_me_status_and_on_the_account_page(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        await _first_run(client)
        page = await client.get("/app/account")
        shown = re.search(r'<code id="account-id">([^<]+)</code>', page.text)
        assert page.status_code == 200 and shown, page.text[:500]
        c: Container = app.state.container
        key = await api_keys.create(c.uow(), c.clock, _uuid(shown.group(1)), secrets=c.secrets)
        me = await client.get("/api/v1/me/status", headers={"Authorization": f"Bearer {key.plain}"})
        assert me.status_code == 200 and me.json()["accountId"] == shown.group(1)
        doc = (await client.get("/api/v1/openapi.json")).json()
        schema = doc["components"]["schemas"]["StatusReportOut"]
        assert "accountId" in schema["required"] and schema["properties"]["accountId"]["description"]
