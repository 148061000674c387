"""Top-ups and your payments (``/api/v1/topups``, ``/api/v1/payments``)."""

from __future__ import annotations

from fastapi import APIRouter

from noema.domain.errors import PaymentsDisabled
from noema.domain.payments import choose_amount
from noema.entrypoints.http.deps import AccountDep, ContainerDep, PagingDep
from noema.entrypoints.http.payment_schemas import PaymentOut, TopupIn, TopupOut, payment_out
from noema.entrypoints.http.schemas import PageOut, page_out
from noema.services import card_payments, payments

router = APIRouter()


@router.post("/topups", status_code=201, response_model=TopupOut)
async def create_topup(body: TopupIn, account_id: AccountDep, c: ContainerDep) -> TopupOut:
    """Start a card top-up: 201 with the Checkout URL; credit follows Stripe's confirmation, never before."""
    if c.stripe is None:
        raise PaymentsDisabled("Card payments are not set up on this Noema.")
    cents = choose_amount(body.amount_usd, c.settings.stripe_amounts)
    payment = await card_payments.start_checkout(
        c.uow,
        c.clock,
        c.stripe,
        account_id=account_id,
        amount_cents=cents,
        public_url=c.settings.base_url,
        most_open=c.settings.max_open_payments,
    )
    assert payment.checkout_url is not None
    return TopupOut(checkout_url=payment.checkout_url, payment_id=payment.id)


@router.get("/payments", response_model=PageOut[PaymentOut])
async def my_payments(account_id: AccountDep, c: ContainerDep, paging: PagingDep) -> PageOut[PaymentOut]:
    """Your payments, newest first, with their status."""
    page = await payments.list_payments(c.uow(), account_id=account_id, limit=paging.limit, cursor=paging.cursor)
    return page_out(page, payment_out)
