"""Telegram Stars top-ups: the packages offered, the credit a star buys, when an invoice is stale.

A Stars payment is a ``Payment`` with currency ``XTR`` whose ``amount_minor`` is the number of
stars and whose ``external_id`` is Telegram's ``telegram_payment_charge_id``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from noema.domain.errors import InvalidInput
from noema.domain.money import NANOS_PER_USD
from noema.domain.payments import Payment, PaymentStatus

CURRENCY = "XTR"
#: how long an invoice may be paid before pre-checkout refuses it (a payment that still arrives is credited)
INVOICE_LIFETIME = timedelta(hours=1)
MAX_STARS = 10_000  #: Telegram's largest single Stars invoice


def parse_packages(raw: str) -> tuple[int, ...]:
    """A comma-separated list of star counts (``"50,100,250,500"``), each 1..10000, sorted, no repeats."""
    found: set[int] = set()
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_STARS:
            raise InvalidInput(f"{part!r} must be a whole number of stars from 1 to {MAX_STARS}.")
        found.add(int(part))
    if not found:
        raise InvalidInput("At least one Stars package is needed.")
    return tuple(sorted(found))


def parse_rate(raw: str) -> int:
    """USD of credit per star (``"0.013"``) as nanos per star, greater than zero."""
    try:
        nanos = Decimal(raw.strip()) * NANOS_PER_USD
    except InvalidOperation:
        raise InvalidInput(f"{raw!r} is not a USD amount per star.") from None
    if not nanos.is_finite() or nanos <= 0 or nanos != nanos.to_integral_value() or nanos > NANOS_PER_USD * 100:
        raise InvalidInput(f"{raw!r} must be a USD amount per star above 0 and at most 100, in nano-dollars.")
    return int(nanos)


def credit_for(stars: int, nanos_per_star: int) -> int:
    """The credit ``stars`` buy."""
    return stars * nanos_per_star


def refusal(payment: Payment | None, *, payer_account_id: str | None, stars: int, now: datetime) -> str | None:
    """Why a pre-checkout must be refused (None: it may be paid)."""
    if payment is None or payment.currency != CURRENCY:
        return "This invoice is not known any more. Send /topup for a new one."
    if payment.credited or payment.status is not PaymentStatus.CREATED:
        return "This invoice was already used. Send /topup for a new one."
    if now - payment.created_at > INVOICE_LIFETIME:
        return "This invoice has expired. Send /topup for a new one."
    if stars != payment.amount_minor:
        return "The amount does not match the invoice. Send /topup for a new one."
    if payer_account_id != payment.account_id:  # a payer with no account yet is not the invoice's account either
        return "This invoice belongs to someone else. Send /topup for your own."
    return None
