"""Card top-ups on the web page: choose an amount, pay at Stripe Checkout, wait for its confirmation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from noema.domain.errors import NoemaError, PaymentsDisabled
from noema.domain.ids import parse_id
from noema.domain.money import display_usd
from noema.entrypoints.http.deps import CardPaymentsDep, UowDep
from noema.entrypoints.http.errors import status_of
from noema.entrypoints.http.web.account_routes import AccountPageDep
from noema.entrypoints.http.web.context import PagesDep, UserDep
from noema.services import economy, payments

router = APIRouter(include_in_schema=False)


@router.post("/app/topup")
async def start_topup(request: Request, page: AccountPageDep, cards: CardPaymentsDep) -> Response:
    """Start a card payment of one offered amount and send the browser to Stripe Checkout."""
    form = await request.form()
    page.user.check_csrf(form.get("csrf"))
    try:
        if cards is None:
            raise PaymentsDisabled("Card payments are not set up on this Noema.")
        payment = await cards.checkout(page.user.account_id, str(form.get("amount") or "")[:20])
    except NoemaError as exc:
        return await page.show(error=exc.message, status_code=status_of(exc))
    assert payment.checkout_url is not None
    return RedirectResponse(payment.checkout_url, status_code=303)


@router.get("/app/topup/done", response_class=HTMLResponse)
async def topup_done(request: Request, user: UserDep, pages: PagesDep, payment: str = "") -> HTMLResponse:
    """Back from Checkout: "waiting for confirmation" until Stripe's webhook credits, then the new balance."""
    shown = await payments.get(pages.uow, parse_id(payment[:64], what="payment"), account_id=user.account_id)
    return await pages.render(request, "topup_done.html", {"page": "account", "payment": shown}, user=user)


@router.get("/app/payments/{payment_id}/status")
async def payment_status(payment_id: str, user: UserDep, uow: UowDep) -> dict[str, Any]:
    """One of your payments, for the waiting page: its status, whether it is credited, your balance."""
    shown = await payments.get(uow, parse_id(payment_id[:64], what="payment"), account_id=user.account_id)
    wallet = await economy.wallet(uow, user.account_id)
    return {
        "status": shown.status.value,
        "credited": shown.credited,
        "credit": display_usd(shown.credit_nanos),
        "balance": display_usd(wallet.free_nanos),
    }
