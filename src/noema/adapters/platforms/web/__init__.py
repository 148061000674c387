"""The web page's templates and static files, and the Jinja2 environment that renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.templating import Jinja2Templates

from noema.domain.money import display_usd, format_usd

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _usd(nanos: Any) -> str:
    return display_usd(int(nanos or 0))


def _money(nanos: Any) -> Markup:
    """The amount as people see it, with the exact amount kept for machines in ``<data value>``."""
    amount = int(nanos or 0)
    return Markup('<data class="usd" value="{}">{}</data>').format(format_usd(amount), display_usd(amount))


def _num(value: Any) -> str:
    """A bound or step as a form attribute: 5.0 as 5, never in exponent form for whole numbers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return str(value)


templates.env.filters["usd"] = _usd
templates.env.filters["num"] = _num
templates.env.filters["money"] = _money
templates.env.filters["thousands"] = lambda n: f"{int(n):,}"
