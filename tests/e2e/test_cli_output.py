"""What the ``noema`` commands print.

Only their answer on stdout, whole ids and prices at 80 columns, ``--json`` on every list and show
command, and a replayed credit that says only that it was one.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import typer.main

from noema.entrypoints.cli import REPLAYED_CREDIT, app
from tests.e2e.test_cli import noema


def _db(tmp_path: Path) -> tuple[str, dict[str, str]]:
    return f"sqlite+aiosqlite:///{tmp_path}/cli.db", {"NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox")}


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``group`` with its path (typer's groups have ``commands``)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
    return found


def test_every_list_and_show_command_takes_json() -> None:
    commands = _commands(typer.main.get_command(app))
    listing = [(path, c) for path, c in commands if path[-1] in {"list", "show", "refresh"} or path == ("backends",)]
    assert len(listing) >= 9, [p for p, _ in listing]
    for path, command in listing:
        assert any("--json" in p.opts for p in command.params), f"noema {' '.join(path)} has no --json"


def test_tools_list_prints_only_its_table_and_logs_nothing_unless_asked(tmp_path: Path) -> None:
    db, env = _db(tmp_path)
    quiet = noema(db, "tools", "list", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.lstrip().startswith("6 tools") and quiet.stderr == ""
    logged = noema(db, "tools", "refresh", env={**env, "NOEMA_LOG_LEVEL": "INFO"})
    assert logged.returncode == 0 and "catalog_changed" in logged.stderr  # asked for: on stderr only
    assert logged.stdout.lstrip().startswith("6 tools") and "catalog_changed" not in logged.stdout


def test_at_80_columns_no_id_or_price_is_cut(tmp_path: Path) -> None:
    db, env = _db(tmp_path)
    narrow = {**env, "COLUMNS": "80"}
    tools = json.loads(noema(db, "tools", "list", "--json", env=env).stdout)["items"]
    table = noema(db, "tools", "list", env=narrow)
    assert table.returncode == 0 and max(len(line) for line in table.stdout.splitlines()) <= 80, table.stdout
    for tool in tools:
        assert f"/{tool['command']}" in table.stdout
        if tool["usdPerSecond"] is not None:
            assert tool["usdPerSecond"] in table.stdout, (tool["usdPerSecond"], table.stdout)
    ids = [str(uuid.UUID(noema(db, "accounts", "create", "--name", f"n{n}", env=env).stdout.strip())) for n in range(2)]
    assert noema(db, "credit", ids[0], "1234.56789", env=env).returncode == 0
    for args in (["accounts", "list"], ["accounts", "show", ids[0]]):
        shown = noema(db, *args, env=narrow)
        assert shown.returncode == 0 and "$1,234.57" in shown.stdout, shown.stdout  # one money format
        assert all(i in shown.stdout for i in (ids if args[1] == "list" else ids[:1])), shown.stdout
        assert max(len(line) for line in shown.stdout.splitlines()) <= 80, shown.stdout


def test_list_commands_print_json_for_scripts(tmp_path: Path) -> None:
    db, env = _db(tmp_path)
    account = noema(db, "accounts", "create", env=env).stdout.strip()
    for args in (["generations", "list"], ["loras", "list"], ["payments", "list"], ["backends"]):
        r = noema(db, *args, "--json", env=env)
        assert r.returncode == 0, (args, r.stderr)
        items = json.loads(r.stdout)["items"]
        assert isinstance(items, list), args
        if args == ["backends"]:
            assert items == [{"backend": "Sandbox (not a real GPU)", "up": True, "reason": "up"}]
        else:
            assert items == [], (args, items)
    assert json.loads(noema(db, "accounts", "show", account, "--json", env=env).stdout)["id"] == account


def test_a_replayed_credit_says_only_that_nothing_was_added(tmp_path: Path) -> None:
    db, env = _db(tmp_path)
    account = noema(db, "accounts", "create", env=env).stdout.strip()
    first = noema(db, "credit", account, "2", "--external-id", "gift-7", env=env)
    assert first.returncode == 0 and "Credited $2.00" in first.stdout
    again = noema(db, "credit", account, "2", "--external-id", "gift-7", env=env)
    assert again.returncode == 0 and again.stdout == REPLAYED_CREDIT + "\n" and again.stderr == ""
    assert REPLAYED_CREDIT == "already credited earlier; nothing added"
    shown = json.loads(noema(db, "accounts", "show", account, "--json", env=env).stdout)
    assert shown["balanceUsd"] == "2.000000000"
