"""Telegram Stars in the fake Bot API.

sendInvoice, answerPreCheckoutQuery, refundStarPayment, and the updates a paying user causes
(``pre_checkout_query``, ``successful_payment``, ``refunded_payment``).
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from tests.fakes.telegram_api_core import BotApiError
from tests.fakes.telegram_api_state import BotState, MessageKind
from tests.fakes.telegram_api_users import make_user


def _bad(text: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {text}")


def send_invoice(state: BotState, params: dict[str, Any], files: Any) -> dict[str, Any]:
    """sendInvoice: Stars invoices only (currency XTR, empty provider token, one price)."""
    prices = params.get("prices")
    if params.get("currency") != "XTR" or params.get("provider_token") not in (None, ""):
        raise _bad("Stars invoices need currency XTR and an empty provider token")
    if not isinstance(prices, list) or len(prices) != 1 or not isinstance(prices[0].get("amount"), int):
        raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
    chat_id = int(params["chat_id"])
    message = state.new_message(chat_id)
    message["invoice"] = {
        "title": params.get("title", ""),
        "description": params.get("description", ""),
        "start_parameter": "",
        "currency": "XTR",
        "total_amount": prices[0]["amount"],
    }
    message["_payload"] = params.get("payload", "")
    state.record(message, kind=MessageKind.TEXT, method="sendInvoice", params=params)
    return copy.deepcopy({k: v for k, v in message.items() if not k.startswith("_")})


def answer_pre_checkout_query(state: BotState, params: dict[str, Any], files: Any) -> bool:
    """answerPreCheckoutQuery: remembered per query id; an error message is required when not ok."""
    ok = params.get("ok") in (True, "true", "True")
    if not ok and not params.get("error_message"):
        raise _bad("error_message is required")
    state.pre_checkout_answers[str(params.get("pre_checkout_query_id"))] = {
        "ok": ok,
        "error_message": params.get("error_message"),
    }
    return True


def refund_star_payment(state: BotState, params: dict[str, Any], files: Any) -> bool:
    """refundStarPayment: only a charge the fake made, by its payer, once."""
    charge = str(params.get("telegram_payment_charge_id"))
    payer = state.charges.get(charge)
    if payer is None or payer != int(params.get("user_id", 0)):
        raise _bad("CHARGE_ID_INVALID")
    if charge in state.refunded:
        raise _bad("CHARGE_ALREADY_REFUNDED")
    state.refunded.add(charge)
    return True


def _queue(state: BotState, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    update = {"update_id": state.next_update_id(), kind: payload}
    state.pending_updates.append(update)
    return copy.deepcopy(update)


def pre_checkout_query(state: BotState, user_id: int, payload: str, stars: int) -> dict[str, Any]:
    """A user confirms an invoice: the pre_checkout_query update (its id is the update's ``id``)."""
    with state.lock:
        query = {
            "id": str(secrets.randbelow(9 * 10**18) + 10**18),
            "from": make_user(user_id),
            "currency": "XTR",
            "total_amount": stars,
            "invoice_payload": payload,
        }
        return _queue(state, "pre_checkout_query", query)


def successful_payment(
    state: BotState, user_id: int, payload: str, stars: int, charge_id: str | None = None
) -> dict[str, Any]:
    """Telegram took the stars: the service message with ``successful_payment`` (a new charge id unless given)."""
    with state.lock:
        charge = charge_id or f"stxCharge{secrets.token_hex(8)}"
        state.charges[charge] = user_id
        message = state.new_message(user_id, sender=make_user(user_id))
        message["successful_payment"] = {
            "currency": "XTR",
            "total_amount": stars,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge,
            "provider_payment_charge_id": "",
        }
        state.store(message)
        return _queue(state, "message", message)


def refunded_payment(state: BotState, user_id: int, payload: str, stars: int, charge_id: str) -> dict[str, Any]:
    """Telegram refunded a payment: the service message with ``refunded_payment``."""
    with state.lock:
        state.refunded.add(charge_id)
        message = state.new_message(user_id, sender=make_user(user_id))
        message["refunded_payment"] = {
            "currency": "XTR",
            "total_amount": stars,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
        }
        state.store(message)
        return _queue(state, "message", message)
