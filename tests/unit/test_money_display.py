"""The one money form people see: never $0.00 for something, never far from the exact amount."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from noema.domain.money import MAX_NANOS, display_usd, to_decimal

SHOWN = re.compile(r"^-?\$(\d{1,3}(,\d{3})*|0)(\.\d+)?$")
amounts = st.integers(min_value=-MAX_NANOS, max_value=MAX_NANOS)


def _value(shown: str) -> Decimal:
    return Decimal(shown.replace("$", "").replace(",", ""))


@given(amounts)
def test_a_non_zero_amount_never_shows_as_zero_dollars(nanos: int) -> None:
    shown = display_usd(nanos)
    assert SHOWN.match(shown), shown
    assert (_value(shown) == 0) == (nanos == 0), (nanos, shown)


@given(amounts)
def test_the_shown_amount_has_the_sign_of_the_amount_and_stays_within_rounding(nanos: int) -> None:
    shown, exact = display_usd(nanos), to_decimal(nanos)
    value = _value(shown)
    assert (value < 0) == (nanos < 0)
    if abs(exact) >= Decimal("0.01"):
        assert abs(value - exact) <= Decimal("0.005"), (nanos, shown)
        assert len(shown.rsplit(".", 1)[1]) == 2, shown  # always whole cents from a cent up
    else:
        assert abs(value - exact) <= abs(exact) * Decimal("0.05"), (nanos, shown)  # two significant digits


@given(amounts)
def test_below_a_cent_at_most_two_significant_digits_are_shown(nanos: int) -> None:
    shown = display_usd(nanos)
    if _value(shown) != 0 and abs(_value(shown)) < Decimal("0.01"):
        digits = shown.rsplit(".", 1)[1].lstrip("0")
        assert 1 <= len(digits) <= 2, shown
