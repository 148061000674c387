"""How the ``noema`` commands print: tables that never cut ids or prices, JSON for scripts, quiet logs.

Rules every command follows:

* stdout holds only the command's answer; messages for the person go to stderr, and a one-shot
  command logs only warnings and errors (unless ``NOEMA_LOG_LEVEL`` is set), so no log line sits
  between a command and its table;
* an id or a price is printed whole on one line: the other columns wrap first, and a table that
  cannot fit the terminal even so is printed as one block of ``label: value`` lines per row;
* ``--json`` prints ``{"items": [...], "nextCursor": ...}`` for a list and one object for a show.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from noema.config import Settings

#: a column of words may be narrowed to this width, never less than its longest word up to it (so
#: words wrap whole; only a word longer than this is split across lines)
_FOLD_WIDTH = 14
#: the ``--json`` option every list and show command takes
JSON_HELP = "Print JSON (for scripts) instead of a table."


def cli_log_level(settings: Settings) -> str:
    """The log level of a one-shot command: warnings and errors only, unless NOEMA_LOG_LEVEL says otherwise."""
    return settings.log_level if "log_level" in settings.model_fields_set else "WARNING"


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (never wrapped or coloured)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def model_json(model: BaseModel) -> dict[str, Any]:
    """An API model as the JSON the public API would send (camelCase), for ``--json``."""
    return model.model_dump(mode="json", by_alias=True)


def emit_page(items: list[dict[str, Any]], next_cursor: str | None = None) -> None:
    """Print one page of a list as JSON."""
    emit_json({"items": items, "nextCursor": next_cursor})


def print_rows(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    whole: Collection[str],
) -> None:
    """A table whose ``whole`` columns (ids, prices) are never cut; one block per row when it cannot fit."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        if column in whole:
            table.add_column(column, no_wrap=True, overflow="ignore")
        else:
            table.add_column(column, overflow="fold", min_width=_fold_width(column, [row[index] for row in rows]))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # plain text: a name like "[/]" is no markup
    if _narrowest(columns, rows, whole) <= console.width:
        console.print(table)
        return
    console.print(Text(title, style="bold"))
    width = max(len(c) for c in columns)
    for row in rows:
        console.print()
        for column, value in zip(columns, row, strict=True):
            console.print(Text(f"{column:>{width}}: {value}"), soft_wrap=column in whole)


def _narrowest(columns: Sequence[str], rows: Sequence[Sequence[str]], whole: Collection[str]) -> int:
    """The width the table needs with ``whole`` columns on one line and the others wrapped (or folded)."""
    total = 1  # the left border; each column adds its padding (2) and a border (1)
    for index, column in enumerate(columns):
        cells = [column, *(row[index] for row in rows)]
        if column in whole:
            total += 3 + max(len(line) for cell in cells for line in cell.splitlines() or [""])
        else:
            total += 3 + _fold_width(column, cells)
    return total


def _fold_width(column: str, cells: Sequence[str]) -> int:
    """The narrowest a column of words may be: its longest word, at most ``_FOLD_WIDTH``."""
    return min(_FOLD_WIDTH, max(len(word) for cell in [column, *cells] for word in cell.split() or [""]))


def print_fields(console: Console, fields: Sequence[tuple[str, str]]) -> None:
    """A two-column ``label value`` table for a show command; ``label: value`` lines when it cannot fit."""
    label_width = max((len(label) for label, _ in fields), default=0)
    value_width = max((len(line) for _, value in fields for line in value.splitlines() or [""]), default=0)
    if label_width + value_width + 7 <= console.width:  # borders and padding: 7 characters
        table = Table(show_header=False)
        table.add_column("field", no_wrap=True)
        table.add_column("value", no_wrap=True, overflow="ignore")
        for label, value in fields:
            table.add_row(label, Text(value))
        console.print(table)
        return
    for label, value in fields:
        console.print(Text(f"{label:>{label_width}}: {value}"), soft_wrap=True)
