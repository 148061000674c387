"""Stripe through its official library: Checkout Sessions, refunds, and signed webhook events.

The library's async methods over its httpx client keep the event loop free. Webhook bodies are
checked with ``stripe.Webhook.construct_event`` on the raw bytes (the signature covers them
exactly) and then read as plain JSON into a ``ProviderEvent``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import stripe

from noema.domain.errors import ExternalServiceError, InvalidInput
from noema.domain.payments import PaymentProvider
from noema.ports import CheckoutSession
from noema.services.payments import ProviderEvent

if TYPE_CHECKING:
    from stripe.params._refund_create_params import RefundCreateParams
    from stripe.params.checkout import SessionCreateParams

#: how old a signed webhook may be, in seconds (Stripe's own default)
TOLERANCE_SECONDS = 300
_PAID = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
_SESSION_EVENTS = _PAID | {"checkout.session.async_payment_failed", "checkout.session.expired"}
_DISPUTE_EVENTS = {
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
}
#: dispute statuses after which the disputed amount is ours again (won; an inquiry closed without a dispute)
_DISPUTE_UNDONE = {"won", "warning_closed"}


class BadSignature(InvalidInput):
    """The Stripe-Signature header is missing, wrong or too old; nothing was changed."""

    code = "BAD_SIGNATURE"


class StripeUnavailable(ExternalServiceError):
    """Stripe could not be reached or refused the request; nothing was charged."""

    code = "PAYMENT_PROVIDER_ERROR"


class StripeGateway:
    """Checkout Sessions and refunds at Stripe (or the fake at NOEMA_STRIPE_API_BASE), and its webhooks."""

    def __init__(self, *, secret_key: str, webhook_secret: str, api_base: str | None = None) -> None:
        self._http = stripe.HTTPXClient(timeout=30)
        self._client = stripe.StripeClient(
            secret_key,
            http_client=self._http,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=2,
        )
        self._webhook_secret = webhook_secret

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_checkout(
        self, *, payment_id: str, account_id: str, amount_cents: int, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        """A Checkout Session for ``amount_cents`` USD; the payment id is its idempotency key."""
        ids = {"payment_id": payment_id, "account_id": account_id}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": amount_cents,
                        "product_data": {"name": f"Noema credit: ${amount_cents / 100:.2f}"},
                    },
                }
            ],
            "client_reference_id": payment_id,
            "metadata": ids,
            # Copied onto the charge, so a refund or dispute names our payment even before the session event.
            "payment_intent_data": {"metadata": ids},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                cast("SessionCreateParams", params), options={"idempotency_key": f"checkout-{payment_id}"}
            )
        except stripe.StripeError as exc:
            raise StripeUnavailable(_describe(exc)) from exc
        if not session.id or not session.url:
            raise StripeUnavailable("Stripe answered without a checkout URL; nothing was charged.")
        return CheckoutSession(id=session.id, url=session.url)

    async def refund(self, *, payment_intent_id: str, amount_minor: int | None, idempotency_key: str) -> str:
        """Refund (part of) a payment at Stripe; the charge.refunded webhook then takes the credit back."""
        params: dict[str, Any] = {"payment_intent": payment_intent_id}
        if amount_minor is not None:
            params["amount"] = amount_minor
        try:
            refund = await self._client.v1.refunds.create_async(
                cast("RefundCreateParams", params), options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise StripeUnavailable(_describe(exc)) from exc
        return str(refund.id)

    async def payment_of_charge(self, charge_id: str) -> str | None:
        """The payment id a charge carries in its metadata (None: Stripe knows no such charge, or not ours)."""
        try:
            charge = await self._client.v1.charges.retrieve_async(charge_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise StripeUnavailable(_describe(exc)) from exc
        except stripe.StripeError as exc:
            raise StripeUnavailable(_describe(exc)) from exc
        metadata = charge.to_dict().get("metadata")
        return _text(metadata.get("payment_id")) if isinstance(metadata, dict) else None

    def parse_event(self, body: bytes, signature: str | None) -> ProviderEvent | None:
        """The payment event in a signed webhook body (None for events Noema does not act on)."""
        try:
            stripe.Webhook.construct_event(body, signature or "", self._webhook_secret, tolerance=TOLERANCE_SECONDS)
        except (stripe.SignatureVerificationError, ValueError):
            raise BadSignature() from None
        return to_provider_event(json.loads(body))


def _describe(exc: stripe.StripeError) -> str:
    status = f" (HTTP {exc.http_status})" if exc.http_status else ""
    return f"Stripe refused or could not be reached{status}; nothing was charged."


def _text(value: Any) -> str | None:
    """An id that Stripe sends either as a string or as an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def to_provider_event(event: dict[str, Any]) -> ProviderEvent | None:
    """Read a Stripe event: sessions paid, failed or expired; charges refunded; disputes opened, won or lost."""
    kind = str(event.get("type") or "")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(event.get("id"), str):
        return None
    raw_metadata = obj.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    base: dict[str, Any] = {
        "provider": PaymentProvider.STRIPE,
        "event_id": event["id"],
        "event_type": kind,
        "payment_id": _text(metadata.get("payment_id")),
        "payment_intent_id": _text(obj.get("payment_intent")),
    }
    if kind in _SESSION_EVENTS:
        return ProviderEvent(
            **base | {"payment_id": _text(obj.get("client_reference_id")) or base["payment_id"]},
            external_id=_text(obj.get("id")),
            paid=kind in _PAID and obj.get("payment_status") == "paid",
            amount_minor=_int(obj.get("amount_total")),
            currency=_text(obj.get("currency")),
            expired=kind == "checkout.session.expired",
            failed=kind == "checkout.session.async_payment_failed",
        )
    if kind == "charge.refunded":
        return ProviderEvent(**base, charge_id=_text(obj.get("id")), refunded_minor=_int(obj.get("amount_refunded")))
    if kind in _DISPUTE_EVENTS:
        # A dispute's metadata is its own (empty), not the charge's: the payment is found by the charge.
        base["payment_id"] = None
        amount = _int(obj.get("amount"))
        fees = [_int(t.get("fee")) or 0 for t in obj.get("balance_transactions") or [] if isinstance(t, dict)]
        return ProviderEvent(
            **base,
            charge_id=_text(obj.get("charge")),
            disputed_minor=amount,
            dispute_fee_minor=max(0, sum(fees)),  # a won dispute's reinstatement returns the fee (a negative fee)
            reinstated_minor=amount if obj.get("status") in _DISPUTE_UNDONE else None,
        )
    return None
