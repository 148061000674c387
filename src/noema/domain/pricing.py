"""Prices: GPU rates in nanos per second, estimates before a run and the charge after it.

A tool is never free: an unknown GPU has no rate (``None``), and a tool without a rate is
disabled by the catalog unless an operator gave it a flat price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, InvalidOperation

from noema.domain.errors import InvalidInput
from noema.domain.money import NANOS_PER_USD, cost_of, rate_to_nanos
from noema.domain.tools import Tool

#: USD per GPU-second (SPEC §5); operators may change or extend it (NOEMA_GPU_RATES).
DEFAULT_RATES_USD: dict[str, str] = {
    "CPU": "0.00004",
    "T4": "0.00018",
    "L4": "0.00032",
    "A10G": "0.000337",
    "L40S": "0.000596",
    "A100": "0.00114",
    "A100-80GB": "0.001708",
    "H100": "0.002338",
}


def parse_rates(overrides: Mapping[str, str]) -> dict[str, int]:
    """The default rate table merged with the operator's overrides, as nanos per second by upper-cased GPU."""
    merged: dict[str, str] = dict(DEFAULT_RATES_USD)
    for raw_gpu, raw_rate in overrides.items():
        gpu = raw_gpu.strip().upper() if isinstance(raw_gpu, str) else ""
        if not gpu:
            raise InvalidInput("A GPU rate needs a GPU name.", details={"field": "gpu_rates"})
        merged[gpu] = raw_rate
    return {gpu: _parse_rate(gpu, raw) for gpu, raw in merged.items()}


def _parse_rate(gpu: str, raw: object) -> int:
    # Floats are refused like everywhere money enters: "0.1" must mean exactly one tenth.
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise InvalidInput(f'The rate of GPU {gpu} must be a decimal string such as "0.000337".')
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(f"The rate of GPU {gpu} is not a decimal number: {str(raw)[:40]!r}.") from None
    if not value.is_finite() or value <= 0:
        raise InvalidInput(f"The rate of GPU {gpu} must be a positive number of USD per second.")
    if value > 1000:
        raise InvalidInput(f"The rate of GPU {gpu} is implausibly high ({value} USD per second).")
    nanos = rate_to_nanos(value)
    # A rate finer than a nano per second would be silently truncated (or become free): refuse it.
    if Decimal(nanos) != value * NANOS_PER_USD:
        raise InvalidInput(f"The rate of GPU {gpu} must be a whole number of nano-USD per second (9 decimals).")
    return nanos


def rate_for(gpu: str | None, rates: Mapping[str, int]) -> int | None:
    """The rate in nanos per second of a GPU, or None when it has none (an unknown GPU is never free)."""
    if not isinstance(gpu, str) or not gpu.strip():
        return None
    rate = rates.get(gpu.strip().upper())
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        return None
    return rate


def estimate_nanos(tool: Tool, *, expected_seconds: float | None = None) -> int:
    """The expected cost of one run of a tool, rounded up to a whole nano; ValueError if it has no price."""
    if tool.flat_price_nanos is not None:
        return tool.flat_price_nanos
    if tool.rate_nanos_per_second is None:
        raise ValueError(f"The tool {tool.command} has no price.")
    seconds = tool.expected_seconds if expected_seconds is None else expected_seconds
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"Expected seconds must be a finite number >= 0, not {seconds!r}.")
    cost = Decimal(tool.rate_nanos_per_second) * Decimal(str(seconds)) * _multiplier(tool.price_multiplier)
    return int(cost.to_integral_value(rounding=ROUND_CEILING))


def max_cost_nanos(tool: Tool) -> int:
    """The most one run of a tool may cost: its flat price, or its maximum runtime at its rate (rounded up)."""
    return max(1, estimate_nanos(tool, expected_seconds=tool.max_seconds))


def hold_for(*, free: int, estimate: int, ceiling: int) -> int | None:
    """What to hold for a run: the most it may cost, capped by what is free; None when that is below its estimate.

    Noema stops a run when its cost reaches the hold, so no run is ever charged beyond it.
    """
    held = min(max(ceiling, estimate), free)
    return held if held >= estimate and held > 0 else None


def ms_covered(hold_nanos: int, rate_nanos_per_second: int, *, price_multiplier: float = 1.0) -> int:
    """The first whole GPU millisecond at which a run priced by the rate costs its whole hold."""
    per_ms = Decimal(rate_nanos_per_second) * _multiplier(price_multiplier) / Decimal(1000)
    return int((Decimal(hold_nanos) / per_ms).to_integral_value(rounding=ROUND_CEILING))


def charge_nanos(
    tool_rate: int | None,
    duration_ms: int,
    *,
    price_multiplier: float = 1.0,
    flat_price_nanos: int | None = None,
) -> int:
    """What a finished run costs: the flat price if set, else duration * rate * multiplier (half-even)."""
    if flat_price_nanos is not None:
        return flat_price_nanos
    if tool_rate is None:
        raise ValueError("A run without a flat price needs a rate.")
    multiplier = _multiplier(price_multiplier)
    if multiplier == 1:
        return cost_of(duration_ms, tool_rate)
    if duration_ms <= 0:
        return 0
    # One rounding over the exact product, so a multiplier never compounds cost_of's rounding.
    cost = Decimal(duration_ms) * Decimal(tool_rate) * multiplier / Decimal(1000)
    return int(cost.to_integral_value(rounding=ROUND_HALF_EVEN))


def _multiplier(value: float) -> Decimal:
    # str() first: Decimal(1.1) would carry the float's binary error into the price.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"A price multiplier must be a finite number > 0, not {value!r}.")
    return Decimal(str(value))


@dataclass(frozen=True)
class PriceSnapshot:
    """What a run is billed by, frozen from its tool when its generation is pointed at that tool.

    A catalog change while the run goes on does not touch it; only the backend's own answer may
    replace the rate, with that of the machine that ran the run.
    """

    rate_nanos_per_second: int  #: 0 when the tool has only a flat price
    price_multiplier: float = 1.0
    flat_price_nanos: int | None = None
    max_runtime_seconds: float = 15 * 60.0  #: the run is stopped (a timeout, never charged) past this

    @classmethod
    def of(cls, tool: Tool) -> PriceSnapshot:
        """The tool's price as it stands now."""
        return cls(
            rate_nanos_per_second=tool.rate_nanos_per_second or 0,
            price_multiplier=tool.price_multiplier,
            flat_price_nanos=tool.flat_price_nanos,
            max_runtime_seconds=tool.max_seconds,
        )

    def used(self, duration_ms: int) -> int:
        """What ``duration_ms`` GPU milliseconds cost at the rate (the flat price aside)."""
        return charge_nanos(self.rate_nanos_per_second, duration_ms, price_multiplier=self.price_multiplier)

    def covered_ms(self, hold_nanos: int) -> int | None:
        """GPU milliseconds after which a run has cost its whole hold; None for a flat price (the hold covers it)."""
        if self.flat_price_nanos is not None or self.rate_nanos_per_second <= 0:
            return None
        return ms_covered(hold_nanos, self.rate_nanos_per_second, price_multiplier=self.price_multiplier)

    def cost(self, duration_ms: int, *, succeeded: bool) -> int:
        """What a finished run that used ``duration_ms`` on the GPU costs (before it is capped by its hold).

        A flat price is what a successful run costs; a cancelled flat-priced run pays for the seconds
        it used, never more than the whole run would have.
        """
        if duration_ms == 0:
            return 0
        flat = self.flat_price_nanos
        if flat is not None and succeeded:
            return flat
        used = self.used(duration_ms)
        return used if flat is None else min(used, flat)
