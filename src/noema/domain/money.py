"""Money: exact USD amounts as integer nano-dollars; decimal strings at the edges.

Money is never a float. Inside Noema an amount is an ``int`` of nano-USD (1e-9 USD), which the
database stores exactly and sums exactly. ``parse_usd`` and ``format_usd`` are the only doors
between that and the exact decimal strings machines read (API fields, ledger checks);
``display_usd`` is the one form people see, on every surface.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

from noema.domain.errors import InvalidInput

NANOS_PER_USD = 1_000_000_000
DECIMALS = 9
#: The largest amount a single credit, debit or balance may hold: one billion dollars.
MAX_USD = Decimal(1_000_000_000)
MAX_NANOS = int(MAX_USD) * NANOS_PER_USD
_QUANTUM = Decimal(1).scaleb(-DECIMALS)
_CENT = Decimal("0.01")

#: 1 point = the price of one A10G second.
NANOS_PER_POINT = 337_000


def parse_usd(raw: str | int | Decimal, *, allow_zero: bool = False, allow_negative: bool = False) -> int:
    """Parse a USD amount into nanos, refusing floats, NaN, infinities, excess precision and giants."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise InvalidInput('An amount must be a decimal string such as "1.50".')
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(raw)
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{str(raw)[:40]!r} is not a decimal amount.") from None
    if not value.is_finite():
        raise InvalidInput("An amount must be a finite number.")
    if abs(value) > MAX_USD:
        raise InvalidInput(f"An amount may not exceed {display_usd(MAX_NANOS)}.")
    if value != value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN):
        raise InvalidInput(f"An amount may have at most {DECIMALS} decimal places.")
    nanos = int(value.scaleb(DECIMALS))
    if nanos < 0 and not allow_negative:
        raise InvalidInput("An amount may not be negative.")
    if nanos == 0 and not allow_zero:
        raise InvalidInput("An amount must be greater than zero.")
    return nanos


def to_decimal(nanos: int) -> Decimal:
    """The exact Decimal USD value of an amount in nanos."""
    return Decimal(nanos).scaleb(-DECIMALS).quantize(_QUANTUM)


def format_usd(nanos: int) -> str:
    """The decimal string of an amount, always with nine decimals (``"1.250000000"``)."""
    return f"{to_decimal(nanos):.{DECIMALS}f}"


def display_usd(nanos: int) -> str:
    """The one form people see: ``$0.50``, ``$1,234.50``; under a cent two significant digits (``$0.00077``)."""
    value = to_decimal(abs(nanos))
    sign = "-" if nanos < 0 else ""
    if value < _CENT:
        # Two significant digits, so a charge of a fraction of a cent never reads as $0.00.
        small = value.quantize(Decimal(1).scaleb(value.adjusted() - 1), rounding=ROUND_HALF_UP) if value else value
        if small < _CENT:
            return f"{sign}${small.normalize():f}" if small else "$0.00"
        value = small
    return f"{sign}${value.quantize(_CENT, rounding=ROUND_HALF_UP):,}"


def points(nanos: int) -> int:
    """Points shown to users: floor(balance / price of one A10G second)."""
    return max(nanos, 0) // NANOS_PER_POINT


def rate_to_nanos(rate_usd_per_second: str | Decimal) -> int:
    """A cost rate in USD per second as nanos per second (rates are exact to the nano)."""
    value = Decimal(rate_usd_per_second)
    return int((value * NANOS_PER_USD).to_integral_value(rounding=ROUND_FLOOR))


def cost_of(duration_ms: int, rate_nanos_per_second: int) -> int:
    """Cost in nanos of a run of ``duration_ms`` milliseconds at the given rate, rounded half-even."""
    if duration_ms <= 0:
        return 0
    cost = Decimal(duration_ms) * Decimal(rate_nanos_per_second) / Decimal(1000)
    return int(cost.to_integral_value(rounding=ROUND_HALF_EVEN))
