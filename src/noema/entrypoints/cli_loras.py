"""``noema loras``: list, add, import and switch off LoRAs of the library.

The commands reach the container through the ``CliRuntime`` that ``noema.entrypoints.cli`` puts in
the command context, so this module needs nothing from the main CLI module.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from noema.bootstrap import Container
from noema.domain.errors import InvalidInput
from noema.domain.loras import format_weight, parse_lora_file
from noema.entrypoints.cli_output import JSON_HELP, emit_json, model_json, print_rows
from noema.entrypoints.http.internal.loras import lora_out
from noema.ports import LoraRecord
from noema.services.loras import ImportSummary, Saved

T = TypeVar("T")
MAX_FILE_BYTES = 50 * 1024 * 1024
_PAGE = 100


class Runner(Protocol):
    def __call__(self, work: Callable[[Container], Awaitable[T]]) -> T:
        """Run async work against a started container; errors become a message and exit 1."""
        ...


@dataclass(frozen=True)
class CliRuntime:
    """What the commands need from the main CLI: its runner and its consoles."""

    run: Runner
    out: Console
    err: Console


loras_app = typer.Typer(help="The LoRA library: trigger words that put LoRAs into prompts.", no_args_is_help=True)


@loras_app.command("list")
def loras_list(
    ctx: typer.Context,
    disabled: Annotated[bool, typer.Option("--disabled", help="Only the switched-off LoRAs.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the LoRAs: slug, family, triggers, default weight, who may use them, uses."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> list[LoraRecord]:
        records: list[LoraRecord] = []
        cursor: str | None = None
        while len(records) < limit:
            size = min(_PAGE, limit - len(records))
            page = await c.loras.page(limit=size, cursor=cursor, enabled=False if disabled else None)
            records += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return records

    records = runtime.run(work)
    if as_json:
        emit_json({"items": [model_json(lora_out(r)) for r in records]})
        return
    rows = []
    for record in records:
        lora = record.lora
        words = [*lora.triggers, *(f"{c.word}→{c.replace_with}" for c in lora.cognates)]
        rows.append(
            [
                lora.slug,
                lora.display_name,
                lora.family.value,
                ", ".join(words) or "-",
                format_weight(lora.default_weight),
                lora.visibility.value,
                lora.owner_id or "-",
                "enabled" if lora.enabled else "disabled",
                f"{lora.usage_count:,}",
            ]
        )
    title = f"{len(records)} LoRAs" + (" switched off" if disabled else "")
    columns = ("slug", "name", "family", "triggers", "weight", "visibility", "owner", "status", "uses")
    print_rows(runtime.out, title, columns, rows, whole={"slug", "weight", "owner", "uses"})


@loras_app.command("add")
def loras_add(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The name used in <lora:slug:weight> tags.")],
    family: Annotated[str, typer.Option(help="Base model: SD1.5, SDXL, PONY, FLUX, SD3 or SD1.5-XL.")],
    trigger: Annotated[list[str] | None, typer.Option(help="A trigger word or phrase (repeat for more).")] = None,
    cognate: Annotated[
        list[str] | None, typer.Option(help="WORD=REPLACEMENT: WORD calls the LoRA and becomes REPLACEMENT.")
    ] = None,
    weight: Annotated[float | None, typer.Option(help="Default weight (1 when not given).")] = None,
    name: Annotated[str | None, typer.Option(help="Display name (the slug when not given).")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner account id (for private LoRAs).")] = None,
    visibility: Annotated[str | None, typer.Option(help="public (default), private or allowed.")] = None,
    allow: Annotated[list[str] | None, typer.Option(help="An account allowed to use it (repeat for more).")] = None,
) -> None:
    """Add a LoRA, or replace the definition of the one with this slug (its usage count is kept)."""
    runtime: CliRuntime = ctx.obj
    entry: dict[str, Any] = {
        "slug": slug,
        "family": family,
        "triggers": trigger or [],
        "cognates": [_cognate(c) for c in cognate or []],
        "defaultWeight": weight,
        "displayName": name,
        "ownerId": owner,
        "visibility": visibility,
        "allowedAccounts": allow,
    }

    async def work(c: Container) -> Saved:
        return await c.loras.save(parse_lora_file([entry])[0])

    saved = runtime.run(work)
    lora = saved.record.lora
    runtime.out.print(f"LoRA {lora.slug} ({lora.family.value}) {saved.outcome.value}.")


@loras_app.command("import")
def loras_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help='A JSON file: a list of LoRA objects, or {"loras": [...]}.')],
) -> None:
    """Add or update every LoRA of a JSON file; importing the same file again changes nothing."""
    runtime: CliRuntime = ctx.obj
    data = _read_json(file, runtime.err)

    async def work(c: Container) -> ImportSummary:
        loras = parse_lora_file(data)
        columns = (TextColumn("Importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=runtime.err) as progress:
            task = progress.add_task("import", total=len(loras))
            return await c.loras.import_loras(loras, on_progress=lambda n: progress.advance(task, n))

    summary = runtime.run(work)
    runtime.out.print(
        f"Imported {summary.total} LoRAs: {summary.added} added, {summary.updated} updated, "
        f"{summary.unchanged} unchanged."
    )


@loras_app.command("disable")
def loras_disable(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The LoRA's slug.")],
) -> None:
    """Switch a LoRA off: prompts stop applying it, and its tags are removed with a warning."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> LoraRecord:
        return await c.loras.disable(slug)

    record = runtime.run(work)
    runtime.out.print(f"LoRA {record.lora.slug} is switched off.")


def _cognate(raw: str) -> dict[str, str]:
    word, sep, replacement = raw.partition("=")
    if not sep:
        raise typer.BadParameter(f"{raw[:40]!r} is not WORD=REPLACEMENT", param_hint="--cognate")
    return {"word": word, "replaceWith": replacement}


def _read_json(file: Path, err: Console) -> Any:
    """The parsed JSON of ``file``, or a message and exit 1."""
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"The file is larger than {MAX_FILE_BYTES // 2**20} MB.")
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        err.print(f"[red]Cannot read {file}: {exc.strerror or exc}.[/red]")
    except UnicodeDecodeError:
        err.print(f"[red]{file} is not UTF-8 text.[/red]")
    except json.JSONDecodeError as exc:
        err.print(f"[red]{file} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.[/red]")
    except InvalidInput as exc:
        err.print(f"[red]{exc.message}[/red]")
    raise typer.Exit(1)
