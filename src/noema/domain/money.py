"""Money: exact USD amounts as integer nano-dollars; decimal strings at the edges.

Money is never a float. Inside Noema an amount is an ``int`` of nano-USD (1e-9 USD), which the
database stores exactly and sums exactly. ``parse_usd`` and ``format_usd`` are the only doors
between that and the decimal strings users and APIs see.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

from noema.domain.errors import InvalidInput

NANOS_PER_USD = 1_000_000_000
DECIMALS = 9
#: The largest amount a single credit, debit or balance may hold: one billion dollars.
MAX_USD = Decimal(1_000_000_000)
MAX_NANOS = int(MAX_USD) * NANOS_PER_USD
_QUANTUM = Decimal(1).scaleb(-DECIMALS)

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
        raise InvalidInput(f"An amount may not exceed {MAX_USD} USD.")
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
    """A short human form: ``$1.25``, or more decimals for amounts under a cent."""
    value = to_decimal(nanos)
    if value == 0 or abs(value) >= Decimal("0.01"):
        return f"${value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"
    return f"${value.normalize():f}"


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
