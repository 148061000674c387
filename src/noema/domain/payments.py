"""Payments: money a user paid a provider to add credit, and how refunds and disputes take it back.

A payment is credited once, on the provider's confirmation only. What a provider later takes back
(refunds, disputes) is recorded as cumulative amounts, so events may arrive twice or out of order
and the payment still ends in the same state: the credit owed back is always
``credit * (refunded + disputed) / amount``, and only the part not yet taken back is taken.
Taking back never sends a balance below zero: what the free balance cannot cover becomes
``owed_nanos`` on the account, which the next credit pays first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Protocol

from noema.domain.errors import InvalidInput, TooManyOpenPayments
from noema.domain.ledger import EntryKind, Posting
from noema.domain.money import NANOS_PER_USD, display_usd, parse_usd


class PaymentProvider(str, Enum):
    STRIPE = "stripe"
    TELEGRAM_STARS = "telegram_stars"


class PaymentStatus(str, Enum):
    CREATED = "created"  #: Noema made the row and asked the provider; nothing paid yet
    PAID = "paid"  #: confirmed by the provider and credited
    REFUNDED = "refunded"  #: all of it refunded; the credit taken back
    PARTIALLY_REFUNDED = "partially_refunded"
    DISPUTED = "disputed"  #: the payer disputed it; the disputed part taken back
    EXPIRED = "expired"  #: the checkout ended unpaid
    FAILED = "failed"  #: the provider says the payment did not go through


#: ledger transaction types of the payment entries (``noema ledger verify`` sums them)
CREDIT_TYPE = "payment_credit"
TAKE_BACK_TYPE = "payment_takeback"
GIVE_BACK_TYPE = "payment_giveback"  #: credit taken back and given again (a dispute won)
REPAY_TYPE = "owed_repayment"
NANOS_PER_CENT = NANOS_PER_USD // 100
#: how long a Stripe Checkout Session can be paid (Stripe's default expiry)
CHECKOUT_LIFETIME = timedelta(hours=24)


@dataclass(eq=False)
class Payment:
    """One payment: what was paid (currency, minor units), the credit it buys, what was taken back."""

    id: str
    account_id: str
    provider: PaymentProvider
    currency: str
    amount_minor: int
    credit_nanos: int
    created_at: datetime
    updated_at: datetime
    status: PaymentStatus = PaymentStatus.CREATED
    #: the provider's id that credits it: a Checkout Session id, a Telegram payment charge id
    external_id: str | None = None
    payment_intent_id: str | None = None
    charge_id: str | None = None
    checkout_url: str | None = None
    paid_at: datetime | None = None
    refunded_minor: int = 0
    disputed_minor: int = 0
    dispute_fee_minor: int = 0
    #: what a dispute won by the seller gave back of ``disputed_minor`` (cumulative)
    dispute_reinstated_minor: int = 0
    taken_back_nanos: int = 0

    @property
    def credited(self) -> bool:
        """The provider confirmed it and the credit was given."""
        return self.paid_at is not None

    @property
    def credit_key(self) -> str:
        """The idempotency key of its credit: one credit per provider payment, whatever the replays."""
        return f"payment:{self.provider.value}:{self.external_id}"


class OwingWallet(Protocol):
    balance_nanos: int
    held_nanos: int
    owed_nanos: int


def cents_to_nanos(cents: int) -> int:
    """USD cents as nanos."""
    return cents * NANOS_PER_CENT


def parse_amounts(raw: str) -> tuple[int, ...]:
    """A comma-separated list of USD amounts (``"5,10,25"``) as whole cents, each at least $0.50."""
    cents: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        nanos = parse_usd(part)
        if nanos % NANOS_PER_CENT or nanos < 50 * NANOS_PER_CENT:
            raise InvalidInput(f"{part!r} must be a USD amount in whole cents, at least $0.50.")
        cents.append(nanos // NANOS_PER_CENT)
    if not cents:
        raise InvalidInput("At least one amount is needed.")
    return tuple(sorted(set(cents)))


def choose_amount(raw: str, allowed: tuple[int, ...]) -> int:
    """The offered amount (in cents) that ``raw`` USD names, or InvalidInput naming the offered ones."""
    names = ", ".join(display_usd(cents_to_nanos(c)) for c in allowed)
    try:
        nanos = parse_usd(raw)
    except InvalidInput:
        nanos = -1
    if nanos % NANOS_PER_CENT or nanos // NANOS_PER_CENT not in allowed:
        raise InvalidInput(
            f"amountUsd must be one of: {names}.", details={"allowed": [str(Decimal(c) / 100) for c in allowed]}
        )
    return nanos // NANOS_PER_CENT


def owed_back(payment: Payment) -> int:
    """The part of the credit that refunds and disputes take back (cumulative, never above the credit)."""
    if payment.amount_minor <= 0:
        return 0
    reversed_minor = min(payment.amount_minor, payment.refunded_minor + lost_to_disputes(payment))
    return payment.credit_nanos * reversed_minor // payment.amount_minor


def lost_to_disputes(payment: Payment) -> int:
    """The disputed amount not given back by a dispute won."""
    return max(payment.disputed_minor - payment.dispute_reinstated_minor, 0)


def status_of(payment: Payment) -> PaymentStatus:
    """The status its amounts say: disputed, (partially) refunded, paid, or what it was."""
    if lost_to_disputes(payment) > 0:
        return PaymentStatus.DISPUTED
    if payment.refunded_minor >= payment.amount_minor > 0:
        return PaymentStatus.REFUNDED
    if payment.refunded_minor > 0:
        return PaymentStatus.PARTIALLY_REFUNDED
    if payment.credited:
        return PaymentStatus.PAID
    return payment.status


@dataclass(frozen=True)
class TakeBack:
    """Taking credit back: the debit of what the free balance covered, and what became owed."""

    posting: Posting | None
    owed_nanos: int


def take_back(wallet: OwingWallet, amount: int) -> TakeBack:
    """Debit ``amount`` from the free balance; the part it does not cover is owed, never negative."""
    if amount <= 0:
        raise InvalidInput("An amount to take back must be greater than zero.")
    free = max(wallet.balance_nanos - wallet.held_nanos, 0)
    taken = min(amount, free)
    posting = None
    if taken > 0:
        wallet.balance_nanos -= taken
        posting = Posting(EntryKind.DEBIT, taken, -taken, 0, wallet.balance_nanos, wallet.held_nanos)
    wallet.owed_nanos += amount - taken
    return TakeBack(posting, amount - taken)


def repay_owed(wallet: OwingWallet) -> Posting | None:
    """After a credit: pay what is owed from the free balance first (None when nothing is owed)."""
    free = max(wallet.balance_nanos - wallet.held_nanos, 0)
    paid = min(wallet.owed_nanos, free)
    if paid <= 0:
        return None
    wallet.balance_nanos -= paid
    wallet.owed_nanos -= paid
    return Posting(EntryKind.DEBIT, paid, -paid, 0, wallet.balance_nanos, wallet.held_nanos)


@dataclass(frozen=True)
class OpenCap:
    """At most ``most`` open payments (unpaid, younger than ``lifetime``) per account and provider."""

    most: int
    lifetime: timedelta
    what: str = "top-ups"  #: how the user calls them: "checkouts", "invoices"


def check_open(opened: Sequence[datetime], cap: OpenCap, now: datetime) -> None:
    """Refuse one more payment while ``cap.most`` are open (``opened``: when each open one was made)."""
    if len(opened) < cap.most:
        return
    frees_at = sorted(opened)[len(opened) - cap.most] + cap.lifetime
    wait = max(1, int((frees_at - now).total_seconds()) + 1)
    error = TooManyOpenPayments(
        f"Too many unpaid {cap.what} are open ({len(opened)}, at most {cap.most}): pay one of them, "
        f"or start a new one in {_duration(wait)} when the oldest expires.",
        details={"open": len(opened), "most": cap.most},
    )
    error.retry_after = wait
    raise error


def _duration(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60 + 1} min"


def owed_message(owed_nanos: int) -> str:
    """What a user reads when a run is refused for money owed."""
    return f"You owe {display_usd(owed_nanos)} from a refunded payment; top up to continue."
