"""The CLI's tables: ids and prices are never cut or wrapped, whatever the terminal's width."""

from __future__ import annotations

import io
import uuid

import pytest
from rich.console import Console

from noema.entrypoints.cli_output import print_fields, print_rows

COLUMNS = ("id", "tool", "status", "account", "requested", "note", "cost USD")
WHOLE = {"id", "account", "cost USD"}


def _rows(n: int, note: str) -> list[list[str]]:
    return [
        [
            str(uuid.uuid4()),
            "/txt2img",
            "succeeded",
            str(uuid.uuid4()),
            "2026-01-02T03:04:05+00:00",
            note,
            "0.000766338",
        ]
        for _ in range(n)
    ]


def _printed(width: int, rows: list[list[str]], columns: tuple[str, ...] = COLUMNS) -> list[str]:
    buffer = io.StringIO()
    print_rows(Console(file=buffer, width=width), "generations", columns, rows, whole=WHOLE)
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize("width", [40, 60, 80, 100, 160, 240])
@pytest.mark.parametrize("note", ["-", "a long note that has to wrap over several lines " * 3, "x" * 70])
def test_every_id_and_price_is_printed_whole_on_one_line_and_no_line_is_wider_than_the_terminal(
    width: int, note: str
) -> None:
    rows = _rows(3, note)
    lines = _printed(width, rows)
    for row in rows:
        for index, column in enumerate(COLUMNS):
            if column in WHOLE:
                assert any(row[index] in line for line in lines), (column, row[index], "\n".join(lines))
    if width >= 60:  # a uuid with its label fits; narrower, the terminal itself wraps the line
        assert max(len(line) for line in lines) <= width, "\n".join(lines)


def test_a_table_that_fits_stays_a_table_and_one_that_cannot_becomes_one_block_per_row() -> None:
    narrow_columns = ("id", "tool", "cost USD")
    fits = _printed(80, [[*r[:2], r[6]] for r in _rows(2, "-")], narrow_columns)
    assert any("┃ id" in line for line in fits)
    blocks = _printed(80, _rows(2, "-"))
    assert not any("┃" in line for line in blocks) and sum(line.strip().startswith("id:") for line in blocks) == 2


@pytest.mark.parametrize("width", [30, 60, 80, 200])
def test_show_commands_keep_every_value_whole_on_its_line(width: int) -> None:
    buffer = io.StringIO()
    fields = [("Account", str(uuid.uuid4())), ("Identities", "discord:" + "9" * 20 + ", telegram:" + "8" * 12)]
    print_fields(Console(file=buffer, width=width), fields)
    lines = buffer.getvalue().splitlines()
    for _, value in fields:
        assert any(value in line for line in lines), "\n".join(lines)
    assert any("┌" in line for line in lines) == (width >= 80)


@pytest.mark.parametrize("width", [80, 200])
def test_cells_are_plain_text_never_markup(width: int) -> None:
    buffer = io.StringIO()
    name = "[/] [bold red]Ann[/bold red]"
    print_rows(
        Console(file=buffer, width=width), "accounts", ("id", "name"), [[str(uuid.UUID(int=1)), name]], whole={"id"}
    )
    print_fields(Console(file=buffer, width=width), [("Name", name)])
    assert buffer.getvalue().count(name) == 2


@pytest.mark.parametrize("width", [80, 100, 120])
def test_words_in_a_wrapped_column_are_never_split_across_lines(width: int) -> None:
    reason = "disabled: No price is configured for GPU H200; an operator must add one (NOEMA_GPU_RATES)."
    columns = ("command", "name", "input", "output", "GPU", "USD/s", "status")
    rows = [
        ["/animate", "animate", "text", "animation", "L40S", "0.000596000", "enabled"],
        ["/flux_pro", "flux-pro", "text", "image", "H200", "-", reason],
        ["/img2img", "img2img", "image_text", "image", "L4", "0.000320000", "enabled"],
    ]
    buffer = io.StringIO()
    print_rows(Console(file=buffer, width=width), "tools", columns, rows, whole={"command", "USD/s"})
    printed = buffer.getvalue()
    words = set(printed.replace("│", " ").replace(":", " ").split())
    for word in reason.replace(":", " ").split():
        assert word in words, f"{word!r} was split:\n{printed}"
