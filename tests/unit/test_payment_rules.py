"""The pure payment rules: what a refund or dispute takes back, what becomes owed, the offered amounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from noema.domain.errors import InvalidInput, TooManyOpenPayments
from noema.domain.payments import (
    OpenCap,
    Payment,
    PaymentProvider,
    PaymentStatus,
    check_open,
    choose_amount,
    owed_back,
    parse_amounts,
    repay_owed,
    status_of,
    take_back,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class W:
    balance_nanos: int
    held_nanos: int = 0
    owed_nanos: int = 0


def _payment(**kw: Any) -> Payment:
    values: dict[str, Any] = {
        "id": "p",
        "account_id": "a",
        "provider": PaymentProvider.STRIPE,
        "currency": "usd",
        "amount_minor": 1000,
        "credit_nanos": 10_000_000_000,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(kw)
    return Payment(**values)


@pytest.mark.parametrize(
    ("refunded", "disputed", "back"),
    [
        (0, 0, 0),
        (250, 0, 2_500_000_000),
        (1000, 0, 10_000_000_000),
        (600, 600, 10_000_000_000),
        (0, 400, 4_000_000_000),
    ],
)
def test_refunds_and_disputes_take_back_their_share_of_the_credit_never_more(
    refunded: int, disputed: int, back: int
) -> None:
    assert owed_back(_payment(refunded_minor=refunded, disputed_minor=disputed)) == back


def test_the_status_follows_the_amounts() -> None:
    assert status_of(_payment()) is PaymentStatus.CREATED
    assert status_of(_payment(paid_at=NOW)) is PaymentStatus.PAID
    assert status_of(_payment(paid_at=NOW, refunded_minor=1)) is PaymentStatus.PARTIALLY_REFUNDED
    assert status_of(_payment(paid_at=NOW, refunded_minor=1000)) is PaymentStatus.REFUNDED
    assert status_of(_payment(paid_at=NOW, refunded_minor=1000, disputed_minor=5)) is PaymentStatus.DISPUTED


def test_taking_back_more_than_the_free_balance_owes_the_rest_and_keeps_holds() -> None:
    wallet = W(balance_nanos=10, held_nanos=4)
    result = take_back(wallet, 9)
    assert result.posting is not None and result.posting.amount_nanos == 6
    assert (wallet.balance_nanos, wallet.held_nanos, wallet.owed_nanos, result.owed_nanos) == (4, 4, 3, 3)


def test_a_credit_pays_what_is_owed_first_as_far_as_it_goes() -> None:
    wallet = W(balance_nanos=5, owed_nanos=8)
    posting = repay_owed(wallet)
    assert posting is not None and posting.amount_nanos == 5
    assert (wallet.balance_nanos, wallet.owed_nanos) == (0, 3)
    assert repay_owed(W(balance_nanos=5)) is None


def test_offered_amounts_are_whole_cents_of_at_least_fifty_and_a_choice_must_be_one_of_them() -> None:
    assert parse_amounts("5, 10,25,10") == (500, 1000, 2500)
    with pytest.raises(InvalidInput):
        parse_amounts("0.499")
    assert choose_amount("10.00", (500, 1000)) == 1000
    with pytest.raises(InvalidInput, match=r"\$5.00, \$10.00"):
        choose_amount("7", (500, 1000))
    with pytest.raises(InvalidInput):
        choose_amount("not money", (500,))


@pytest.mark.parametrize(
    ("ages_minutes", "most", "retry_after"),
    [
        ([50, 10], 2, 10 * 60 + 1),  # the oldest (50 min old, 1 h lifetime) frees a place in 10 min
        ([50, 40, 30], 2, 20 * 60 + 1),  # the cap was lowered: two must expire, the second oldest in 20 min
        ([59.99], 1, 1),
    ],
)
def test_past_the_cap_the_refusal_says_when_a_place_frees(
    ages_minutes: list[float], most: int, retry_after: int
) -> None:
    opened = [NOW - timedelta(minutes=m) for m in ages_minutes]
    with pytest.raises(TooManyOpenPayments) as caught:
        check_open(opened, OpenCap(most, timedelta(hours=1), "invoices"), NOW)
    assert caught.value.retry_after == retry_after
    assert f"({len(opened)}, at most {most})" in caught.value.message


def test_under_the_cap_a_payment_may_be_made() -> None:
    check_open([NOW], OpenCap(2, timedelta(hours=1)), NOW)
    check_open([], OpenCap(1, timedelta(hours=1)), NOW)
