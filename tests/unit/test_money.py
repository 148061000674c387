"""Money: parsing, formatting and costing are exact and refuse what is not an amount."""

from __future__ import annotations

from decimal import Decimal

import pytest

from noema.domain.errors import InvalidInput
from noema.domain.money import cost_of, display_usd, format_usd, parse_usd, points, rate_to_nanos


@pytest.mark.parametrize(
    ("raw", "nanos"),
    [
        ("1", 1_000_000_000),
        ("1.25", 1_250_000_000),
        ("0.000000001", 1),
        (" 2.5 ", 2_500_000_000),
        (3, 3_000_000_000),
        (Decimal("0.1"), 100_000_000),
        ("1000000000", 10**18),
        ("1e2", 100_000_000_000),
    ],
)
def test_parse_usd_accepts_exact_amounts(raw: str | int | Decimal, nanos: int) -> None:
    assert parse_usd(raw) == nanos


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("-1", "negative"),
        ("0", "greater than zero"),
        ("NaN", "finite"),
        ("1e400", "exceed"),
        ("inf", "finite"),
        ("abc", "not a decimal"),
        ("", "not a decimal"),
        ("0.0000000001", "decimal places"),
        ("1000000000.01", "exceed"),
        (1.5, "decimal string"),
        (True, "decimal string"),
        (None, "decimal string"),
    ],
)
def test_parse_usd_refuses_bad_amounts_with_a_reason(raw: object, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_usd(raw)  # type: ignore[arg-type]


def test_parse_usd_allows_zero_and_negative_only_when_asked() -> None:
    assert parse_usd("0", allow_zero=True) == 0
    assert parse_usd("-2", allow_negative=True) == -2_000_000_000


@pytest.mark.parametrize(
    ("nanos", "text", "shown"),
    [
        (0, "0.000000000", "$0.00"),
        (1_250_000_000, "1.250000000", "$1.25"),
        (1, "0.000000001", "$0.000000001"),
        (337_000, "0.000337000", "$0.00034"),
        (123_456_789_000_000, "123456.789000000", "$123,456.79"),
    ],
)
def test_amounts_format_as_nine_decimals_and_as_dollars(nanos: int, text: str, shown: str) -> None:
    assert format_usd(nanos) == text
    assert display_usd(nanos) == shown


@pytest.mark.parametrize(
    ("duration_ms", "rate", "cost"),
    [
        (1000, "0.000337", 337_000),
        (10_500, "0.000337", 3_538_500),
        (0, "0.002338", 0),
        (-5, "0.1", 0),
        (1, "0.00004", 40),
        (60_000, "0.002338", 140_280_000),
    ],
)
def test_cost_is_duration_times_rate(duration_ms: int, rate: str, cost: int) -> None:
    assert cost_of(duration_ms, rate_to_nanos(rate)) == cost


@pytest.mark.parametrize(("nanos", "pts"), [(0, 0), (336_999, 0), (337_000, 1), (1_000_000_000, 2967), (-5, 0)])
def test_points_are_whole_a10g_seconds(nanos: int, pts: int) -> None:
    assert points(nanos) == pts


@pytest.mark.parametrize(
    ("nanos", "shown"),
    [
        (500_000_000, "$0.50"),
        (499_233_662, "$0.50"),
        (10_110_000, "$0.01"),
        (766_338, "$0.00077"),
        (9_949_999, "$0.0099"),
        (9_950_000, "$0.01"),
        (5_000_000, "$0.005"),
        (4_995_000, "$0.005"),
        (1_234_500_000_000, "$1,234.50"),
        (-766_338, "-$0.00077"),
        (-2_500_000_000, "-$2.50"),
    ],
)
def test_people_see_cents_and_two_significant_digits_below_a_cent(nanos: int, shown: str) -> None:
    assert display_usd(nanos) == shown
