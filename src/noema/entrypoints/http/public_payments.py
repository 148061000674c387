"""Top-ups and your payments (``/api/v1/topups``, ``/api/v1/payments``)."""

from __future__ import annotations

from fastapi import APIRouter

from noema.domain.errors import PaymentsDisabled
from noema.entrypoints.http.deps import CardPaymentsDep, CurrentAccount, PagingDep, UowDep
from noema.entrypoints.http.payment_schemas import PaymentOut, TopupIn, TopupOut, payment_out
from noema.entrypoints.http.schemas import PageOut, page_out
from noema.services import payments

router = APIRouter()


@router.post("/topups", status_code=201, response_model=TopupOut)
async def create_topup(body: TopupIn, account_id: CurrentAccount, cards: CardPaymentsDep) -> TopupOut:
    """Start a card top-up: 201 with the Checkout URL; credit follows Stripe's confirmation, never before."""
    if cards is None:
        raise PaymentsDisabled("Card payments are not set up on this Noema.")
    payment = await cards.checkout(account_id, body.amount_usd)
    assert payment.checkout_url is not None
    return TopupOut(checkout_url=payment.checkout_url, payment_id=payment.id)


@router.get("/payments", response_model=PageOut[PaymentOut])
async def my_payments(account_id: CurrentAccount, uow: UowDep, paging: PagingDep) -> PageOut[PaymentOut]:
    """Your payments, newest first, with their status."""
    page = await payments.list_payments(uow, account_id=account_id, limit=paging.limit, cursor=paging.cursor)
    return page_out(page, payment_out)
