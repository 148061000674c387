"""The ``noema`` command line: serve, migrate, credit, accounts, API keys, ledger checks, LoRAs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from noema.bootstrap import Container, build_container
from noema.config import ConfigError, Settings, load_settings
from noema.domain.errors import NoemaError
from noema.domain.generation import LIVE, Generation
from noema.domain.money import display_usd, format_usd, parse_usd
from noema.domain.tools import Tool
from noema.entrypoints.cli_accounts import JsonOption, account_id, accounts_app
from noema.entrypoints.cli_backends import backends_app
from noema.entrypoints.cli_loras import CliRuntime, loras_app
from noema.entrypoints.cli_output import cli_log_level, emit_json, emit_page, model_json, print_rows
from noema.entrypoints.cli_payments import payments_app
from noema.entrypoints.http.generation_schemas import generation_out, tool_out
from noema.ports import GenerationFilter
from noema.services import api_keys, economy, history, payments

app = typer.Typer(
    help="Noema: ComfyUI workflows from chats, a web page and an API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
apikey_app = typer.Typer(help="Personal API keys.", no_args_is_help=True)
ledger_app = typer.Typer(help="Check the ledger.", no_args_is_help=True)
tools_app = typer.Typer(help="The tool catalog.", no_args_is_help=True)
generations_app = typer.Typer(help="Generations.", no_args_is_help=True)
media_app = typer.Typer(help="Noema's own media store (NOEMA_MEDIA_DIR).", no_args_is_help=True)
app.add_typer(media_app, name="media")
app.add_typer(tools_app, name="tools")
app.add_typer(generations_app, name="generations")
app.add_typer(apikey_app, name="apikey")
app.add_typer(ledger_app, name="ledger")

out = Console()
REPLAYED_CREDIT = "already credited earlier; nothing added"
err = Console(stderr=True)
T = TypeVar("T")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _run(work: Callable[[Container], Awaitable[T]]) -> T:
    """Run one piece of async work against a started container; errors become a message and exit 1."""
    from noema.adapters.logging import configure_logging

    settings = _settings()
    # Log lines go to stderr, never into stdout, and only warnings unless NOEMA_LOG_LEVEL is set.
    configure_logging(cli_log_level(settings), settings.log_format.value, secrets=settings.secret_values)

    async def main() -> T:
        container = build_container(settings)
        try:
            await container.start(serving=False)
            return await work(container)
        finally:
            await container.close()

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except NoemaError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    except (DBAPIError, OSError) as exc:  # unreachable, refused or locked: say so, without a traceback
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        reason = (str(cause).splitlines() or [type(cause).__name__])[0][:200]
        err.print(f"The database could not be used ({reason}).", markup=False)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default NOEMA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default NOEMA_PORT).")] = None,
) -> None:
    """Run the HTTP server, platform adapters and workers in one process."""
    import uvicorn

    from noema.adapters.logging import configure_logging
    from noema.entrypoints.http.app import create_app

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = _settings(**overrides)
    configure_logging(settings.log_level, settings.log_format.value, secrets=settings.secret_values)
    try:
        container = build_container(settings)
    except ConfigError as exc:  # e.g. a bad workflow file: named, without a traceback
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    application = create_app(container)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,  # uvicorn's loggers go through configure_logging's handler, which masks secrets
        proxy_headers=True,
    )


@app.command()
def worker() -> None:
    """Run only the background workers (delivery, reconciliation, sessions, catalog) for scale-out."""
    from noema.adapters.logging import configure_logging
    from noema.entrypoints.workers import Workers

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format.value, secrets=settings.secret_values)

    async def main() -> None:
        container = build_container(settings)
        await container.start(serving=False)
        workers = Workers(container)
        workers.start()
        try:
            await asyncio.Event().wait()
        finally:
            await workers.stop()
            await container.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    data_dir: Annotated[str, typer.Option(help="Where runs and files are kept.")] = "./sandbox-data",
    api_key: Annotated[
        str | None,
        typer.Option(help="The key clients must send (default NOEMA_SANDBOX_API_KEY, else a random one, printed)."),
    ] = None,
    webhook_base: Annotated[
        str | None,
        typer.Option(help="Webhooks go only to URLs under this one (default NOEMA_PUBLIC_URL: http://127.0.0.1:8000)."),
    ] = None,
) -> None:
    """Run the sandbox backend alone (a local ComfyDeploy V2 API; not a real GPU)."""
    import uvicorn

    from noema.adapters.backends.sandbox import SandboxConfig, create_standalone_app, new_api_key
    from noema.adapters.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format.value, secrets=settings.secret_values)
    key = (api_key or (settings.sandbox_api_key.get_secret_value() if settings.sandbox_api_key else "")).strip()
    if not key:
        key = new_api_key()
        # Printed for the operator only (never logged): give it to Noema as its ComfyDeploy key.
        out.print(f"Sandbox API key for this start: {key}", markup=False, highlight=False, soft_wrap=True)
        out.print("Give it to Noema as NOEMA_COMFYDEPLOY_API_KEY.", markup=False, highlight=False)
    try:
        config = SandboxConfig(
            public_base_url=f"http://{host}:{port}",
            data_dir=Path(data_dir),
            run_seconds=settings.sandbox_run_seconds,
            faults=settings.sandbox_faults,
            api_key=key,
            webhook_base=(webhook_base or settings.base_url).rstrip("/"),
        )
    except ValueError as exc:
        err.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None
    out.print(f"Sandbox on http://{host}:{port}; webhooks only to {config.webhook_base}.", markup=False)
    uvicorn.run(create_standalone_app(config), host=host, port=port, log_config=None, access_log=False)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from noema.adapters.db.migrate import current_revision, upgrade_to_head

    async def work(c: Container) -> str | None:
        await upgrade_to_head(c.engine)
        return await current_revision(c.engine)

    out.print(f"Database at migration {_run(work)}.")


@app.command()
def credit(
    account: Annotated[str, typer.Argument(help="Account id, or platform:platform-id (e.g. telegram:12345).")],
    usd: Annotated[str, typer.Argument(help="Amount in USD, e.g. 5 or 2.50.")],
    reason: Annotated[str, typer.Option(help="Shown in the ledger.")] = "operator credit",
    external_id: Annotated[str | None, typer.Option(help="Idempotency key: the same id never credits twice.")] = None,
) -> None:
    """Add credit to an account."""

    async def work(c: Container) -> economy.Posted:
        transfer = economy.Transfer(
            account_id=await account_id(c, account),
            amount_nanos=parse_usd(usd),
            description=reason,
            transaction_type="operator_credit",
            external_id=external_id,
        )
        return await economy.credit(c.uow(), c.clock, transfer)

    posted = _run(work)
    if posted.replayed:  # the same --external-id again: say so, and nothing that reads like a new credit
        out.print(REPLAYED_CREDIT, markup=False, highlight=False)
        return
    out.print(
        f"Credited {display_usd(posted.entry.amount_nanos)} to {posted.account.id}. "
        f"Balance: {display_usd(posted.account.balance_nanos)}.",
        soft_wrap=True,  # one line, however narrow the terminal: the id stays whole
    )


@apikey_app.command("create")
def apikey_create(
    account: Annotated[str, typer.Argument(help="Account id or platform:platform-id.")],
    name: Annotated[str | None, typer.Option(help="A label to tell keys apart.")] = None,
) -> None:
    """Create a personal API key; it is printed once and never shown again."""

    async def work(c: Container) -> api_keys.NewKey:
        return await api_keys.create(c.uow(), c.clock, await account_id(c, account), secrets=c.secrets, name=name)

    new = _run(work)
    err.print("Keep this key secret; it will not be shown again:")
    out.print(new.plain, markup=False, highlight=False, soft_wrap=True)


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Recompute every balance from the ledger; exit 1 with a table if any account drifted."""

    async def work(c: Container) -> tuple[int, list[economy.Drift], economy.WrittenOff, list[payments.PaymentDrift]]:
        checked, drifts = await economy.verify(c.uow())
        return checked, drifts, await economy.written_off(c.uow()), await payments.verify(c.uow())

    checked, drifts, lost, payment_drifts = _run(work)
    if lost.nanos:
        # Not a drift (the books add up), but money the operator paid the backend and no one paid back.
        out.print(
            f"Written off: {display_usd(lost.nanos)} of run costs over {lost.generations} generation(s) "
            "was not charged to anyone (see each generation's shortfallUsd)."
        )
    if payment_drifts:
        _print_payment_drifts(payment_drifts)
    if not drifts and not payment_drifts:
        out.print(f"Ledger OK: {checked} accounts, no drift; payments agree with the ledger.")
        return
    if not drifts:
        raise typer.Exit(1)
    rows = [
        [
            d.account_id,
            format_usd(d.balance_nanos),
            format_usd(d.ledger_balance_nanos),
            format_usd(d.held_nanos),
            format_usd(d.ledger_held_nanos),
        ]
        for d in drifts
    ]
    columns = ("account", "stored balance", "ledger balance", "stored held", "ledger held")
    print_rows(out, f"{len(drifts)} of {checked} accounts drifted", columns, rows, whole=columns)
    raise typer.Exit(1)


def _print_payment_drifts(drifts: list[payments.PaymentDrift]) -> None:
    rows = [
        [
            d.account_id,
            format_usd(d.credited_nanos),
            format_usd(d.ledger_credited_nanos),
            format_usd(d.taken_back_nanos),
            format_usd(d.ledger_taken_back_nanos),
        ]
        for d in drifts
    ]
    columns = ("account", "paid credit", "ledger credit", "taken back", "ledger taken back + owed")
    title = f"{len(drifts)} accounts whose payments disagree with the ledger"
    print_rows(out, title, columns, rows, whole=columns)


@tools_app.command("list")
def tools_list(as_json: JsonOption = False) -> None:
    """List the tools: command, GPU, price per second, and why a tool is disabled."""

    async def work(c: Container) -> list[Tool]:
        return await c.catalog.tools()

    _print_tools(_run(work), as_json=as_json)


@tools_app.command("refresh")
def tools_refresh(as_json: JsonOption = False) -> None:
    """Rebuild the catalog from the backend now."""

    async def work(c: Container) -> list[Tool]:
        return await c.catalog.refresh()

    _print_tools(_run(work), as_json=as_json)


@media_app.command("prune")
def media_prune() -> None:
    """Delete stored media files older than NOEMA_MEDIA_RETENTION_DAYS."""

    async def work(c: Container) -> int:
        if c.media_store is None:
            return 0
        keep = timedelta(days=c.settings.media_retention_days)
        return c.media_store.prune(c.clock.now(), keep)

    removed = _run(work)
    out.print(f"{removed} stored files removed")


def _print_tools(tools: list[Tool], *, as_json: bool) -> None:
    if as_json:
        emit_json({"items": [model_json(tool_out(t, None)) for t in tools]})
        return
    rows = [
        [
            f"/{t.command}",
            t.display_name,
            t.primary_input.value,
            t.output_kind.value if t.output_kind else "mixed",
            t.gpu or "-",
            format_usd(t.rate_nanos_per_second) if t.rate_nanos_per_second is not None else "-",
            "enabled" if t.enabled else f"disabled: {t.disabled_reason}",
        ]
        for t in tools
    ]
    columns = ("command", "name", "input", "output", "GPU", "USD/s", "status")
    print_rows(out, f"{len(tools)} tools", columns, rows, whole={"command", "USD/s"})


@generations_app.command("list")
def generations_list(
    stuck: Annotated[bool, typer.Option("--stuck", help="Only live runs with no news for 10 minutes.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page: the cursor the previous page printed.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List recent generations (or the stuck ones), newest first."""

    async def work(c: Container) -> tuple[list[Generation], str | None]:
        where = GenerationFilter(status_in=tuple(LIVE)) if stuck else GenerationFilter()
        page = await history.search(c.uow(), where, limit=limit, cursor=cursor)
        if not stuck:
            return page.items, page.next_cursor
        cutoff = c.clock.now() - timedelta(minutes=10)
        quiet = [g for g in page.items if (g.last_update_at or g.submitted_at or g.requested_at) < cutoff]
        return quiet, page.next_cursor

    found, next_cursor = _run(work)
    if as_json:
        emit_page([model_json(generation_out(g)) for g in found], next_cursor)
        return
    rows = [
        [
            g.id,
            f"/{g.tool_command}",
            g.status.value,
            g.account_id,
            g.requested_at.isoformat(timespec="seconds"),
            (g.last_update_at or g.requested_at).isoformat(timespec="seconds"),
            display_usd(g.cost_nanos),
        ]
        for g in found
    ]
    title = f"{len(rows)} generations" + (" with no news for 10 minutes" if stuck else "")
    columns = ("id", "tool", "status", "account", "requested", "last news", "cost")
    print_rows(out, title, columns, rows, whole={"id", "tool", "account", "cost"})
    if next_cursor:
        more = " --stuck" if stuck else ""
        err.print(f"More: noema generations list{more} --cursor {next_cursor}", markup=False, soft_wrap=True)


app.add_typer(accounts_app, name="accounts", context_settings={"obj": CliRuntime(run=_run, out=out, err=err)})
app.add_typer(loras_app, name="loras", context_settings={"obj": CliRuntime(run=_run, out=out, err=err)})
app.add_typer(payments_app, name="payments", context_settings={"obj": CliRuntime(run=_run, out=out, err=err)})
app.add_typer(backends_app, name="backends", context_settings={"obj": CliRuntime(run=_run, out=out, err=err)})


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
