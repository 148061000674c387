"""Prices: the GPU rate table, operator overrides, estimates before a run and charges after it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from noema.domain.errors import InvalidInput
from noema.domain.money import rate_to_nanos
from noema.domain.pricing import DEFAULT_RATES_USD, charge_nanos, estimate_nanos, parse_rates, rate_for
from noema.domain.tools import PrimaryInput, Tool

A10G = 337_000


def priced_tool(
    *,
    rate: int | None = A10G,
    expected_seconds: float = 30.0,
    price_multiplier: float = 1.0,
    flat_price_nanos: int | None = None,
) -> Tool:
    return Tool(
        id="dep-1",
        command="txt2img",
        display_name="txt2img",
        description="",
        inputs=(),
        primary_input=PrimaryInput.NONE,
        output_kind=None,
        deployment_id="dep-1",
        machine_id="m-1",
        gpu="A10G",
        rate_nanos_per_second=rate,
        expected_seconds=expected_seconds,
        price_multiplier=price_multiplier,
        flat_price_nanos=flat_price_nanos,
    )


# --- the rate table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpu", "nanos_per_second"),
    [
        ("CPU", 40_000),
        ("T4", 180_000),
        ("L4", 320_000),
        ("A10G", 337_000),
        ("L40S", 596_000),
        ("A100", 1_140_000),
        ("A100-80GB", 1_708_000),
        ("H100", 2_338_000),
    ],
)
def test_the_default_table_holds_the_spec_rates_in_nanos_per_second(gpu: str, nanos_per_second: int) -> None:
    assert parse_rates({})[gpu] == nanos_per_second


def test_the_default_table_has_exactly_the_eight_spec_gpus() -> None:
    assert set(DEFAULT_RATES_USD) == {"CPU", "T4", "L4", "A10G", "L40S", "A100", "A100-80GB", "H100"}
    assert parse_rates({}) == {gpu: rate_to_nanos(rate) for gpu, rate in DEFAULT_RATES_USD.items()}


def test_an_operator_override_replaces_a_rate_and_adds_a_gpu_case_insensitively() -> None:
    rates = parse_rates({"a10g": "0.0004", " h200 ": "0.003"})
    assert rates["A10G"] == 400_000
    assert rates["H200"] == 3_000_000
    assert rates["T4"] == 180_000
    assert "a10g" not in rates


def test_parse_rates_does_not_change_the_default_table() -> None:
    parse_rates({"A10G": "1"})
    assert DEFAULT_RATES_USD["A10G"] == "0.000337"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"H200": "-0.001"}, "H200"),
        ({"H200": "0"}, "positive"),
        ({"H200": "abc"}, "not a decimal"),
        ({"H200": "NaN"}, "positive"),
        ({"H200": "Infinity"}, "positive"),
        ({"H200": ""}, "not a decimal"),
        ({"H200": "0.0000000001"}, "nano"),
        ({"H200": "5000"}, "implausibly high"),
        ({"": "0.001"}, "GPU name"),
        ({"B200": 0.001}, "decimal string"),
        ({"B200": True}, "decimal string"),
    ],
)
def test_a_bad_rate_is_refused_and_names_the_gpu(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        parse_rates(overrides)  # type: ignore[arg-type]
    gpu = next(iter(overrides)).strip()
    if gpu:
        assert gpu in caught.value.message


def test_rates_may_be_given_as_integers_or_decimals() -> None:
    assert parse_rates({"X1": Decimal("0.5"), "X2": 1})["X1"] == 500_000_000  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("gpu", "rate"),
    [("A10G", 337_000), ("a10g", 337_000), (" l4 ", 320_000), ("H200", None), ("", None), (None, None)],
)
def test_rate_for_upper_cases_and_returns_none_for_an_unknown_gpu(gpu: str | None, rate: int | None) -> None:
    assert rate_for(gpu, parse_rates({})) == rate


def test_a_zero_rate_in_a_table_is_treated_as_no_rate_never_as_free() -> None:
    assert rate_for("FREE", {"FREE": 0}) is None


# --- estimates --------------------------------------------------------------------------------


def test_an_estimate_is_rate_times_expected_seconds() -> None:
    assert estimate_nanos(priced_tool(expected_seconds=30)) == 30 * A10G


def test_an_estimate_may_use_other_expected_seconds() -> None:
    assert estimate_nanos(priced_tool(), expected_seconds=10.5) == 3_538_500


def test_an_estimate_applies_the_multiplier_exactly() -> None:
    # 1.1 as a float is 1.100000000000000088…; the price must use the decimal 1.1.
    assert estimate_nanos(priced_tool(expected_seconds=10, price_multiplier=1.1)) == 3_707_000


def test_an_estimate_rounds_up_to_a_whole_nano() -> None:
    assert estimate_nanos(priced_tool(rate=3, expected_seconds=0.5)) == 2


def test_a_flat_price_is_the_estimate() -> None:
    assert estimate_nanos(priced_tool(flat_price_nanos=50_000_000, price_multiplier=3.0)) == 50_000_000


def test_a_flat_price_needs_no_rate() -> None:
    assert estimate_nanos(priced_tool(rate=None, flat_price_nanos=7)) == 7


def test_an_estimate_without_a_rate_is_an_error_never_zero() -> None:
    with pytest.raises(ValueError, match="no price"):
        estimate_nanos(priced_tool(rate=None))


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_an_estimate_refuses_impossible_durations(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        estimate_nanos(priced_tool(), expected_seconds=seconds)


# --- charges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "duration_ms", "multiplier", "nanos"),
    [
        (A10G, 10_500, 1.0, 3_538_500),
        (A10G, 1, 1.0, 337),
        (A10G, 0, 1.0, 0),
        (A10G, -5, 2.0, 0),
        (2_338_000, 60_000, 1.0, 140_280_000),
        (A10G, 10_000, 1.1, 3_707_000),
        (A10G, 10_000, 0.5, 1_685_000),
        (3, 500, 1.0, 2),  # 1.5 rounds half-even to 2
        (5, 500, 1.0, 2),  # 2.5 rounds half-even to 2
        (1, 500, 3.0, 2),  # 1.5 -> 2: one rounding over the exact product
    ],
)
def test_a_charge_is_duration_times_rate_times_multiplier(
    rate: int, duration_ms: int, multiplier: float, nanos: int
) -> None:
    assert charge_nanos(rate, duration_ms, price_multiplier=multiplier) == nanos


def test_a_flat_price_is_the_charge_whatever_the_duration() -> None:
    assert charge_nanos(A10G, 999_999, flat_price_nanos=1_000, price_multiplier=5.0) == 1_000
    assert charge_nanos(None, 999_999, flat_price_nanos=1_000) == 1_000


def test_a_charge_without_a_rate_or_flat_price_is_an_error() -> None:
    with pytest.raises(ValueError, match="rate"):
        charge_nanos(None, 1000)


@pytest.mark.parametrize("multiplier", [0.0, -1.0, float("nan"), float("inf")])
def test_a_charge_refuses_a_multiplier_that_is_not_positive_and_finite(multiplier: float) -> None:
    with pytest.raises(ValueError, match="multiplier"):
        charge_nanos(A10G, 1000, price_multiplier=multiplier)
