"""Card top-ups on the web page: choose an amount, pay at Stripe Checkout, wait for its confirmation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from noema.domain.errors import NoemaError, PaymentsDisabled
from noema.domain.ids import parse_id
from noema.domain.money import display_usd
from noema.domain.payments import choose_amount
from noema.entrypoints.http.errors import status_of
from noema.entrypoints.http.web.account_routes import account_page_with
from noema.entrypoints.http.web.context import UserDep, render
from noema.services import card_payments, economy, payments

router = APIRouter(include_in_schema=False)


@router.post("/app/topup")
async def start_topup(request: Request, user: UserDep) -> Response:
    """Start a card payment of one offered amount and send the browser to Stripe Checkout."""
    form = await request.form()
    user.check_csrf(form.get("csrf"))
    c = user.container
    try:
        if c.stripe is None:
            raise PaymentsDisabled("Card payments are not set up on this Noema.")
        cents = choose_amount(str(form.get("amount") or "")[:20], c.settings.stripe_amounts)
        payment = await card_payments.start_checkout(
            c.uow,
            c.clock,
            c.stripe,
            account_id=user.account_id,
            amount_cents=cents,
            public_url=c.settings.base_url,
            most_open=c.settings.max_open_payments,
        )
    except NoemaError as exc:
        return await account_page_with(request, user, error=exc.message, status_code=status_of(exc))
    assert payment.checkout_url is not None
    return RedirectResponse(payment.checkout_url, status_code=303)


@router.get("/app/topup/done", response_class=HTMLResponse)
async def topup_done(request: Request, user: UserDep, payment: str = "") -> HTMLResponse:
    """Back from Checkout: "waiting for confirmation" until Stripe's webhook credits, then the new balance."""
    c = user.container
    shown = await payments.get(c.uow(), parse_id(payment[:64], what="payment"), account_id=user.account_id)
    return await render(request, "topup_done.html", {"page": "account", "payment": shown}, user=user)


@router.get("/app/payments/{payment_id}/status")
async def payment_status(payment_id: str, user: UserDep) -> dict[str, Any]:
    """One of your payments, for the waiting page: its status, whether it is credited, your balance."""
    c = user.container
    shown = await payments.get(c.uow(), parse_id(payment_id[:64], what="payment"), account_id=user.account_id)
    wallet = await economy.wallet(c.uow(), user.account_id)
    return {
        "status": shown.status.value,
        "credited": shown.credited,
        "credit": display_usd(shown.credit_nanos),
        "balance": display_usd(wallet.free_nanos),
    }
