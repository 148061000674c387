"""``noema accounts``: create, list and show accounts.

The commands reach the container through the ``CliRuntime`` that ``noema.entrypoints.cli`` puts in
the command context, like ``noema loras``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from noema.bootstrap import Container
from noema.domain.accounts import Platform, parse_platform
from noema.domain.ids import parse_id
from noema.domain.money import display_usd, format_usd, points
from noema.entrypoints.cli_loras import CliRuntime
from noema.entrypoints.cli_output import JSON_HELP, emit_json, emit_page, print_fields, print_rows
from noema.ports import Page
from noema.services import accounts

accounts_app = typer.Typer(help="Accounts: create, list, show.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


async def account_id(c: Container, ref: str) -> str:
    """An account id from ``<account-id>`` or ``<platform>:<platform-id>``."""
    platform, sep, platform_id = ref.partition(":")
    if sep and platform in {p.value for p in Platform}:
        return (await accounts.by_platform(c.uow(), parse_platform(platform), platform_id)).account.id
    return (await accounts.get(c.uow(), parse_id(ref, what="The account"))).account.id


def account_json(found: accounts.FoundAccount) -> dict[str, Any]:
    """An account as the JSON of ``--json``."""
    a = found.account
    return {
        "id": a.id,
        "status": a.status.value,
        "name": a.display_name or a.username,
        "identities": [f"{i.platform.value}:{i.platform_id}" for i in found.identities],
        "balanceUsd": format_usd(a.balance_nanos),
        "heldUsd": format_usd(a.held_nanos),
        "points": points(a.free_nanos),
        "exp": a.exp,
        "createdAt": a.created_at.isoformat(),
    }


@accounts_app.command("create")
def accounts_create(
    ctx: typer.Context,
    telegram: Annotated[str | None, typer.Option("--telegram", help="The Telegram user id it holds.")] = None,
    discord: Annotated[str | None, typer.Option("--discord", help="The Discord user id it holds.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="A display name.")] = None,
) -> None:
    """Create an account and print its id (give it to `noema apikey create` or `noema credit`)."""
    runtime: CliRuntime = ctx.obj
    if telegram is not None and discord is not None:
        runtime.err.print("Give --telegram or --discord, not both.", style="red")
        raise typer.Exit(2)
    identity = (Platform.TELEGRAM, telegram) if telegram is not None else None
    identity = (Platform.DISCORD, discord) if discord is not None else identity

    async def work(c: Container) -> accounts.FoundAccount:
        return await accounts.create(c.uow(), c.clock, identity=identity, name=name)

    found = runtime.run(work)
    runtime.out.print(found.account.id, markup=False, highlight=False, soft_wrap=True)


@accounts_app.command("list")
def accounts_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page: the cursor the previous page printed.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List accounts, newest first: id, name, identities, balance (--json adds status, EXP and creation time)."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> Page[accounts.FoundAccount]:
        return await accounts.list_page(c.uow(), limit=limit, cursor=cursor)

    page = runtime.run(work)
    if as_json:
        emit_page([account_json(f) for f in page.items], page.next_cursor)
        return
    rows = [
        [
            f.account.id,
            f.account.display_name or f.account.username or "-",
            " ".join(f"{i.platform.value}:{i.platform_id}" for i in f.identities) or "-",
            display_usd(f.account.balance_nanos),
        ]
        for f in page.items
    ]
    columns = ("id", "name", "identities", "balance")
    print_rows(runtime.out, f"{len(rows)} accounts", columns, rows, whole={"id", "balance"})
    if page.next_cursor:
        runtime.err.print(f"More: noema accounts list --cursor {page.next_cursor}", markup=False, soft_wrap=True)


@accounts_app.command("show")
def accounts_show(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Account id or platform:platform-id.")],
    as_json: JsonOption = False,
) -> None:
    """Show an account: identities, balance, holds, EXP."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> accounts.FoundAccount:
        return await accounts.get(c.uow(), await account_id(c, account))

    found = runtime.run(work)
    if as_json:
        emit_json(account_json(found))
        return
    a = found.account
    print_fields(
        runtime.out,
        [
            ("Account", a.id),
            ("Status", a.status.value),
            ("Name", a.display_name or a.username or "-"),
            ("Identities", ", ".join(f"{i.platform.value}:{i.platform_id}" for i in found.identities) or "-"),
            ("Balance", display_usd(a.balance_nanos)),
            ("Held", display_usd(a.held_nanos)),
            ("Points", f"{points(a.free_nanos):,}"),
            ("EXP", f"{a.exp:,}"),
            ("Created", a.created_at.isoformat()),
        ],
    )
