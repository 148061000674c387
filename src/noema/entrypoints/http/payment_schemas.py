"""The JSON of payments and top-ups (public and internal API)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from noema.domain.money import format_usd
from noema.domain.payments import Payment
from noema.entrypoints.http.schemas import ApiModel


class TopupIn(ApiModel):
    """A top-up to start: the provider and one of the offered amounts in USD."""

    provider: Literal["stripe"]
    amount_usd: str = Field(max_length=20, description='One of the offered amounts, such as "5".')


class TopupOut(ApiModel):
    """Where to send the payer, and the payment that will be credited once the provider confirms it."""

    checkout_url: str
    payment_id: str


class PaymentOut(ApiModel):
    """One payment: what was paid, the credit it gives, what refunds and disputes took back."""

    id: str
    account_id: str
    provider: str
    status: str
    currency: str
    amount_paid: str = Field(description="In the currency's major units, such as 5.00 (USD) or 100 (XTR stars).")
    credit_usd: str
    taken_back_usd: str
    refunded: str
    disputed: str
    dispute_fee: str
    external_id: str | None
    created_at: datetime
    paid_at: datetime | None


def _major(minor: int, currency: str) -> str:
    # Telegram Stars have no minor unit; card currencies here have cents.
    return str(minor) if currency.upper() == "XTR" else f"{Decimal(minor) / 100:.2f}"


def payment_out(p: Payment) -> PaymentOut:
    """The JSON of a payment."""
    return PaymentOut(
        id=p.id,
        account_id=p.account_id,
        provider=p.provider.value,
        status=p.status.value,
        currency=p.currency,
        amount_paid=_major(p.amount_minor, p.currency),
        credit_usd=format_usd(p.credit_nanos),
        taken_back_usd=format_usd(p.taken_back_nanos),
        refunded=_major(p.refunded_minor, p.currency),
        disputed=_major(p.disputed_minor, p.currency),
        dispute_fee=_major(p.dispute_fee_minor, p.currency),
        external_id=p.external_id,
        created_at=p.created_at,
        paid_at=p.paid_at,
    )
