"""Stripe's webhook: signed payment events credit a payment once, or take its credit back."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request

from noema.domain.errors import NotFound
from noema.entrypoints.http.deps import CardPaymentsDep, StripeDep

router = APIRouter(tags=["webhooks"])
log = structlog.get_logger(__name__)


@router.post("/api/webhook/stripe", include_in_schema=False)
async def stripe_webhook(request: Request, stripe: StripeDep, cards: CardPaymentsDep) -> dict[str, str]:
    """A Stripe event; a missing, wrong or stale signature gets 400 and changes nothing."""
    if stripe is None or cards is None:
        raise NotFound("Card payments are not enabled on this Noema.")
    event = stripe.parse_event(await request.body(), request.headers.get("stripe-signature"))
    if event is None:
        return {"status": "ignored"}
    applied = await cards.apply(event)
    outcome = "replayed" if applied.replayed else "applied" if applied.payment else "ignored"
    log.info(
        "stripe_event",
        event_id=event.event_id,
        event_type=event.event_type,
        payment_id=applied.payment.id if applied.payment else None,
        outcome=outcome,
    )
    return {"status": outcome}
