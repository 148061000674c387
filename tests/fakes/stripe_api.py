"""A fake Stripe API on 127.0.0.1 that the real ``stripe`` library talks to, and Stripe's signed webhooks.

It speaks Stripe's wire format for what Noema calls: form-encoded ``POST /v1/checkout/sessions``
(``Idempotency-Key`` honoured: the same key answers the same session, other parameters under it are
refused), ``GET /v1/checkout/sessions/{id}``, ``GET /v1/charges/{id}`` (a charge carries the
``payment_intent_data[metadata]`` of its session, as Stripe copies it) and ``POST /v1/refunds``. A session's ``url`` is a page
here with a "Pay" button that completes the session and posts the signed
``checkout.session.completed`` webhook to ``webhook_url``, then sends the browser to the
session's ``success_url``. Tests make any other event with ``event`` and sign it with ``sign``
(``Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "t.payload">``, Stripe's scheme).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.telegram_api_server import ThreadedServer

SECRET_KEY = "sk_test_fake_0123456789"
WEBHOOK_SECRET = "whsec_fake_0123456789abcdef"
_KEY_PART = re.compile(r"\[([^\]]*)\]")


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) as nested dicts; numeric keys become list positions."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head) :])]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return {k: _listify(v) for k, v in root.items()}  # the body itself is always an object


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for ``payload``, signed now (or at ``timestamp``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


@dataclass
class FakeStripe:
    """Stripe's state for the calls Noema makes, every request received, and the events it sent."""

    webhook_url: str | None = None
    #: seconds between paying and sending the webhook (a browser then sees "waiting for confirmation" first)
    webhook_delay: float = 0.0
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)  #: by charge id (one dispute per charge)
    requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    _idempotency: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadedServer | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        """Where the fake listens (NOEMA_STRIPE_API_BASE)."""
        assert self._server is not None, "start the fake first"
        return self._server.url

    async def start(self) -> str:
        """Serve on a free loopback port."""
        self._server = ThreadedServer(self.app())
        return await self._server.start()

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            await self._server.stop()

    def app(self) -> Starlette:
        """The ASGI app of the fake."""
        return Starlette(
            routes=[
                Route("/v1/checkout/sessions", self._create_session, methods=["POST"]),
                Route("/v1/checkout/sessions/{sid}", self._get_session, methods=["GET"]),
                Route("/v1/charges/{cid}", self._get_charge, methods=["GET"]),
                Route("/v1/refunds", self._create_refund, methods=["POST"]),
                Route("/pay/{sid}", self._pay_page, methods=["GET"]),
                Route("/pay/{sid}", self._pay, methods=["POST"]),
            ]
        )

    # -- the API ------------------------------------------------------------------------------

    async def _form(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        # Starlette types a form value as str | UploadFile; the Stripe calls Noema makes upload no file.
        body = nest(list((await request.form()).multi_items()))  # type: ignore[arg-type]
        self.requests.append((request.method, request.url.path, body, dict(request.headers)))
        if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return body, _error(401, "authentication_error", "Invalid API Key provided.")
        return body, None

    def _replay(self, request: Request, body: dict[str, Any]) -> Response | None:
        key = request.headers.get("idempotency-key")
        if key is None or key not in self._idempotency:
            return None
        params, answer = self._idempotency[key]
        if params != body:
            return _error(
                400, "idempotency_error", "Keys for idempotent requests can only be used with the same parameters."
            )
        return JSONResponse(answer, headers={"Idempotent-Replayed": "true"})

    async def _create_session(self, request: Request) -> Response:
        body, refused = await self._form(request)
        if refused is not None:
            return refused
        with self._lock:
            replay = self._replay(request, body)
            if replay is not None:
                return replay
            items = body.get("line_items") or []
            if body.get("mode") != "payment" or len(items) != 1:
                return _error(400, "invalid_request_error", "mode=payment and one line item are required.")
            price = items[0]["price_data"]
            sid = "cs_test_" + secrets.token_hex(12)
            session = {
                "id": sid,
                "object": "checkout.session",
                "mode": "payment",
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": int(price["unit_amount"]) * int(items[0].get("quantity", 1)),
                "currency": price["currency"],
                "client_reference_id": body.get("client_reference_id"),
                "metadata": body.get("metadata") or {},
                "payment_intent": None,
                "success_url": body["success_url"],
                "cancel_url": body["cancel_url"],
                "url": f"{self.url}/pay/{sid}",
                "_intent_metadata": (body.get("payment_intent_data") or {}).get("metadata") or {},
            }
            self.sessions[sid] = session
            answer = _public(session)
            if key := request.headers.get("idempotency-key"):
                self._idempotency[key] = (body, answer)
        return JSONResponse(answer)

    async def _get_session(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path, {}, dict(request.headers)))
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return _error(404, "invalid_request_error", "No such checkout.session")
        return JSONResponse(_public(session))

    async def _get_charge(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path, {}, dict(request.headers)))
        if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return _error(401, "authentication_error", "Invalid API Key provided.")
        charge = self.charges.get(request.path_params["cid"])
        if charge is None:
            return _error(404, "invalid_request_error", f"No such charge: '{request.path_params['cid']}'")
        return JSONResponse(dict(charge))

    async def _create_refund(self, request: Request) -> Response:
        body, refused = await self._form(request)
        if refused is not None:
            return refused
        with self._lock:
            replay = self._replay(request, body)
            if replay is not None:
                return replay
            charge = next((c for c in self.charges.values() if c["payment_intent"] == body.get("payment_intent")), None)
            if charge is None:
                return _error(400, "invalid_request_error", "No such payment_intent")
            left = charge["amount"] - charge["amount_refunded"]
            amount = int(body.get("amount", left))
            if not 0 < amount <= left:
                return _error(400, "invalid_request_error", "Refund amount is greater than the unrefunded amount.")
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            refund = {
                "id": "re_" + secrets.token_hex(10),
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "status": "succeeded",
                "currency": charge["currency"],
            }
            self.refunds.append(refund)
            if key := request.headers.get("idempotency-key"):
                self._idempotency[key] = (body, refund)
        return JSONResponse(refund)

    # -- the hosted checkout page -------------------------------------------------------------

    async def _pay_page(self, request: Request) -> Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return HTMLResponse("No such checkout", status_code=404)
        amount = f"${session['amount_total'] / 100:.2f}"
        page = (
            "<!doctype html><title>Fake Stripe Checkout</title>"
            f"<h1>Pay {html.escape(amount)}</h1>"
            f"<form method='post' action='/pay/{html.escape(session['id'])}'><button type='submit'>Pay</button></form>"
        )
        return HTMLResponse(page)

    async def _pay(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        if sid not in self.sessions:
            return HTMLResponse("No such checkout", status_code=404)
        event = self.complete(sid)
        if self.webhook_url:
            if self.webhook_delay:
                task = asyncio.create_task(self._send_later(event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                await self.send(event)
        return RedirectResponse(self.sessions[sid]["success_url"], status_code=303)

    async def _send_later(self, event: dict[str, Any]) -> None:
        await asyncio.sleep(self.webhook_delay)
        await self.send(event)

    # -- what tests drive ---------------------------------------------------------------------

    def complete(self, sid: str, *, paid: bool = True) -> dict[str, Any]:
        """Pay the session (or leave it processing, for an async method): its checkout.session.completed event."""
        with self._lock:
            session = self.sessions[sid]
            if session["payment_intent"] is None:
                pi = "pi_" + secrets.token_hex(10)
                charge = {
                    "id": "ch_" + secrets.token_hex(10),
                    "object": "charge",
                    "amount": session["amount_total"],
                    "amount_refunded": 0,
                    "refunded": False,
                    "currency": session["currency"],
                    "payment_intent": pi,
                    "metadata": dict(session["_intent_metadata"]),
                }
                self.charges[charge["id"]] = charge
                session["payment_intent"] = pi
            session["status"] = "complete"
            session["payment_status"] = "paid" if paid else "unpaid"
            return self.event("checkout.session.completed", _public(session))

    def async_succeeded(self, sid: str) -> dict[str, Any]:
        """A delayed payment method (a bank debit) went through: checkout.session.async_payment_succeeded."""
        with self._lock:
            session = self.sessions[sid]
            session["payment_status"] = "paid"
            return self.event("checkout.session.async_payment_succeeded", _public(session))

    def expired(self, sid: str) -> dict[str, Any]:
        """The session reached its expiry unpaid: checkout.session.expired (it cannot be paid any more)."""
        with self._lock:
            session = self.sessions[sid]
            if session["status"] != "open":
                raise ValueError(f"only an open session expires, not a {session['status']} one")
            session["status"] = "expired"
            return self.event("checkout.session.expired", _public(session))

    def charge_of(self, sid: str) -> dict[str, Any]:
        """The charge that paid the session."""
        pi = self.sessions[sid]["payment_intent"]
        return next(c for c in self.charges.values() if c["payment_intent"] == pi)

    def refunded(self, sid: str, amount: int | None = None) -> dict[str, Any]:
        """Refund at Stripe's dashboard: the charge.refunded event (amount_refunded is cumulative)."""
        with self._lock:
            charge = self.charge_of(sid)
            charge["amount_refunded"] = min(charge["amount"], charge["amount_refunded"] + (amount or charge["amount"]))
            return self.event("charge.refunded", dict(charge))

    def refund_event(self, sid: str) -> dict[str, Any]:
        """The charge.refunded event for the charge as it stands (after refunds made through the API)."""
        return self.event("charge.refunded", dict(self.charge_of(sid)))

    def disputed(self, sid: str, *, amount: int | None = None, fee: int = 1500) -> dict[str, Any]:
        """The payer's bank opened a dispute: charge.dispute.created, with Stripe's dispute fee.

        Like Stripe's, the dispute names its charge and payment intent but carries none of their
        metadata (its own ``metadata`` is empty): which payment it is about is found through the charge.
        """
        with self._lock:
            charge = self.charge_of(sid)
            disputed = amount or charge["amount"]
            dispute = {
                "id": "dp_" + secrets.token_hex(10),
                "object": "dispute",
                "amount": disputed,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "status": "needs_response",
                "metadata": {},
                "balance_transactions": [{"object": "balance_transaction", "amount": -disputed, "fee": fee}],
            }
            self.disputes[charge["id"]] = dispute
            charge["disputed"] = True
            return self.event("charge.dispute.created", dict(dispute))

    def dispute_closed(self, sid: str, *, status: str = "won") -> dict[str, Any]:
        """The bank decided: charge.dispute.closed; a won dispute reinstates the amount and the fee."""
        with self._lock:
            dispute = self.disputes[self.charge_of(sid)["id"]]
            dispute["status"] = status
            if status == "won":
                withdrawn = dispute["balance_transactions"][0]
                dispute["balance_transactions"] = [
                    withdrawn,
                    {"object": "balance_transaction", "amount": -withdrawn["amount"], "fee": -withdrawn["fee"]},
                ]
            return self.event("charge.dispute.closed", dict(dispute))

    def event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A Stripe event wrapping ``obj``."""
        return {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "type": kind,
            "api_version": "2025-09-30",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }

    async def send(
        self, event: dict[str, Any], *, client: httpx.AsyncClient | None = None, **signing: Any
    ) -> httpx.Response:
        """Post the event, signed, to Noema's webhook (through ``client`` when given, else to webhook_url)."""
        payload = json.dumps(event).encode()
        headers = {"Stripe-Signature": sign(payload, **signing), "Content-Type": "application/json"}
        self.sent.append(event)
        if client is not None:
            return await client.post("/api/webhook/stripe", content=payload, headers=headers)
        assert self.webhook_url, "set webhook_url or pass a client"
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(self.webhook_url, content=payload, headers=headers)


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)
