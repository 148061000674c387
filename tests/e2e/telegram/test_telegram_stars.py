"""Telegram Stars end to end against the fake Bot API.

/topup → invoice → pre-checkout → payment → credited once → receipt; duplicates, expired invoices,
refunds; the ledger verifies clean after each.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from noema.domain.money import parse_usd
from noema.domain.stars import INVOICE_LIFETIME
from noema.services import economy, payments, stars_payments
from tests.e2e.telegram.harness import TelegramRig, telegram_app
from tests.fakes.clock import FakeClock
from tests.fakes.telegram_api import FakeTelegram

USER = 4242


async def _verify_clean(rig: TelegramRig) -> None:
    _checked, drifts = await economy.verify(rig.container.uow())
    assert drifts == []
    assert await payments.verify(rig.container.uow()) == []


async def _invoice(rig: TelegramRig, stars: int = 100) -> str:
    """The user sends /topup and picks a package; returns the invoice's payload."""
    msg = await rig.say(USER, "/topup")
    offer = rig.replies(USER, msg["message_id"])[-1]
    buttons = [b for row in (offer.reply_markup or {})["inline_keyboard"] for b in row]
    assert [b["callback_data"] for b in buttons] == ["stars:50", "stars:100", "stars:250", "stars:500"]
    assert "$1.30" in buttons[1]["text"]  # 100 stars at 0.013 USD
    await rig.press(USER, offer.message_id, f"stars:{stars}")
    invoice = rig.fake.calls_to("sendInvoice")[-1]
    assert invoice.ok, invoice.response
    assert invoice.params["currency"] == "XTR" and invoice.params["provider_token"] in ("", None)
    assert [price["amount"] for price in invoice.params["prices"]] == [stars]
    return str(invoice.params["payload"])


async def _pay(rig: TelegramRig, payload: str, stars: int = 100, charge: str | None = None) -> dict[str, Any]:
    update = rig.fake.successful_payment(USER, payload, stars, charge)
    assert (await rig.post(update)).status_code == 200
    return update


async def test_topup_invoice_precheckout_payment_credits_once_with_a_receipt(rig: TelegramRig) -> None:
    payload = await _invoice(rig)
    query = rig.fake.pre_checkout_query(USER, payload, 100)
    assert (await rig.post(query)).status_code == 200
    assert rig.fake.state.pre_checkout_answers[query["pre_checkout_query"]["id"]]["ok"] is True
    update = await _pay(rig, payload)
    await rig.post(update)  # Telegram delivers the same update again
    account = await rig.account_id(USER)
    assert (await rig.wallet(account))[0] == parse_usd("1.30")
    receipt = rig.replies(USER, update["message"]["message_id"])[0]
    assert "Payment received" in (receipt.text or "") and "$1.30" in (receipt.text or "")
    await _verify_clean(rig)


async def test_the_same_payment_delivered_concurrently_credits_once(rig: TelegramRig) -> None:
    payload = await _invoice(rig)
    update = rig.fake.successful_payment(USER, payload, 100)
    results = await asyncio.gather(*(rig.post(update) for _ in range(4)))
    assert all(r.status_code == 200 for r in results)
    assert (await rig.wallet(await rig.account_id(USER)))[0] == parse_usd("1.30")
    assert len(rig.replies(USER, update["message"]["message_id"])) == 1  # one receipt
    await _verify_clean(rig)


async def test_an_unknown_payload_or_an_invoice_paid_again_is_still_credited(rig: TelegramRig) -> None:
    payload = await _invoice(rig)
    await _pay(rig, payload)
    await _pay(rig, payload)  # the same invoice paid again: a new charge id
    await _pay(rig, "no-such-row", stars=50)
    assert (await rig.wallet(await rig.account_id(USER)))[0] == parse_usd("3.25")
    await _verify_clean(rig)


async def test_a_pre_checkout_for_an_unknown_invoice_is_refused_with_a_reason(rig: TelegramRig) -> None:
    query = rig.fake.pre_checkout_query(USER, "not-a-payment", 100)
    await rig.post(query)
    answer = rig.fake.state.pre_checkout_answers[query["pre_checkout_query"]["id"]]
    assert answer["ok"] is False and "not known" in answer["error_message"]


async def test_a_refund_after_spending_leaves_an_owed_amount_that_the_next_topup_pays(rig: TelegramRig) -> None:
    payload = await _invoice(rig)
    update = await _pay(rig, payload)
    charge = update["message"]["successful_payment"]["telegram_payment_charge_id"]
    account = await rig.account_id(USER)
    c = rig.container
    await economy.debit(c.uow(), c.clock, economy.Transfer(account_id=account, amount_nanos=parse_usd("1.00")))
    paid = (await payments.list_payments(c.uow(), account_id=account, limit=5, cursor=None)).items[0]
    assert c.stars is not None
    await stars_payments.refund(c.uow, c.clock, c.stars, paid.id)
    assert charge in rig.fake.state.refunded
    await rig.post(rig.fake.refunded_payment(USER, payload, 100, charge))  # Telegram's update: taken once
    owed = (await economy.wallet(c.uow(), account)).owed_nanos
    assert owed == parse_usd("1.00")
    status = await rig.say(USER, "/status")
    assert "Owed" in (rig.replies(USER, status["message_id"])[0].text or "")
    await _verify_clean(rig)
    await _pay(rig, await _invoice(rig))
    wallet = await economy.wallet(c.uow(), account)
    assert (wallet.owed_nanos, wallet.balance_nanos) == (0, parse_usd("0.30"))
    await _verify_clean(rig)


async def test_a_payment_that_cannot_be_credited_yet_fails_the_webhook_and_telegrams_redelivery_credits_it(
    rig: TelegramRig,
) -> None:
    from sqlalchemy import text

    payload = await _invoice(rig)
    update = rig.fake.successful_payment(USER, payload, 100)
    engine = rig.container.engine
    async with engine.begin() as conn:  # the database loses a table the credit needs (an outage)
        await conn.execute(text("ALTER TABLE payment_events RENAME TO payment_events_away"))
    try:
        failed = await rig.post(update)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE payment_events_away RENAME TO payment_events"))
    # Not 200: Telegram keeps the update and sends it again; nothing was credited and no receipt sent.
    assert failed.status_code >= 500
    account = await rig.account_id(USER)
    assert (await rig.wallet(account))[0] == 0
    assert rig.replies(USER, update["message"]["message_id"]) == []
    assert (await rig.post(update)).status_code == 200
    assert (await rig.wallet(account))[0] == parse_usd("1.30")
    assert "Payment received" in (rig.replies(USER, update["message"]["message_id"])[0].text or "")
    await _verify_clean(rig)


def _receipts(rig: TelegramRig, update: dict[str, Any]) -> list[str]:
    replies = rig.replies(USER, update["message"]["message_id"])
    return [r.text or "" for r in replies if "Payment received" in (r.text or "")]


async def test_a_receipt_that_telegram_fails_to_take_fails_the_webhook_and_the_redelivery_sends_it_once(
    rig: TelegramRig,
) -> None:
    payload = await _invoice(rig)
    update = rig.fake.successful_payment(USER, payload, 100)
    rig.fake.fail_next("sendMessage", error_code=502)  # the receipt: Telegram answers Bad Gateway
    failed = await rig.post(update)
    # Credited, but the receipt did not reach the chat: not 200, so Telegram sends the update again.
    assert failed.status_code >= 500
    account = await rig.account_id(USER)
    assert (await rig.wallet(account))[0] == parse_usd("1.30")
    assert _receipts(rig, update) == []
    assert (await rig.post(update)).status_code == 200
    assert (await rig.post(update)).status_code == 200  # and once more after the 200: nothing new
    assert (await rig.wallet(account))[0] == parse_usd("1.30")  # credited once
    (receipt,) = _receipts(rig, update)
    assert "$1.30 of credit" in receipt and "Balance: $1.30" in receipt
    await _verify_clean(rig)


async def test_a_redelivery_after_a_sent_receipt_sends_no_second_one(rig: TelegramRig) -> None:
    from sqlalchemy import text

    payload = await _invoice(rig)
    update = await _pay(rig, payload)
    assert len(_receipts(rig, update)) == 1
    assert (await rig.post(update)).status_code == 200  # Telegram missed our 200: the update was answered
    # The answered mark lost as well (say it could not be written): the payment path runs again.
    async with rig.container.engine.begin() as conn:
        await conn.execute(text("DELETE FROM platform_updates"))
    assert (await rig.post(update)).status_code == 200
    account = await rig.account_id(USER)
    assert (await rig.wallet(account))[0] == parse_usd("1.30")
    assert len(_receipts(rig, update)) == 1
    await _verify_clean(rig)


async def test_past_the_cap_no_invoice_is_sent_and_a_paid_or_expired_one_frees_a_place(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake, max_open_payments=2) as rig:
        msg = await rig.say(USER, "/topup")
        offer = rig.replies(USER, msg["message_id"])[-1]
        for _ in range(3):
            await rig.press(USER, offer.message_id, "stars:50")
        calls = rig.fake.calls_to("sendInvoice")
        assert len(calls) == 2 and all(call.ok for call in calls)
        invoices = [str(call.params["payload"]) for call in calls]
        refusal = rig.replies(USER, offer.message_id)[-1].text or ""
        assert "Too many unpaid invoices are open (2, at most 2)" in refusal
        account = await rig.account_id(USER)
        c = rig.container
        assert len((await payments.list_payments(c.uow(), account_id=account, limit=10, cursor=None)).items) == 2
        await _pay(rig, invoices[0], stars=50)  # paid: a place is free
        await rig.press(USER, offer.message_id, "stars:50")
        await rig.press(USER, offer.message_id, "stars:50")
        assert len(rig.fake.calls_to("sendInvoice")) == 3
        async with c.uow() as uow:  # an hour passes: the second invoice can no longer be paid
            row = await uow.payments.get(invoices[1], for_update=True)
            assert row is not None
            row.created_at -= INVOICE_LIFETIME + timedelta(seconds=1)
            await uow.commit()
        await rig.press(USER, offer.message_id, "stars:50")
        assert len(rig.fake.calls_to("sendInvoice")) == 4
        await _verify_clean(rig)


async def test_paysupport_answers_with_the_operators_text(db_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    text = "Payment trouble? Write to <billing@example.org> with the payment id & the date."
    async with telegram_app(db_url, tmp_path, fake, paysupport_text=text) as rig:
        msg = await rig.say(USER, "/paysupport")
        (answer,) = rig.replies(USER, msg["message_id"])
        assert answer.text == text  # sent as HTML, escaped: Telegram shows exactly the operator's words


def _answer_to(rig: TelegramRig, query: dict[str, Any]) -> dict[str, Any]:
    return dict(rig.fake.state.pre_checkout_answers[query["pre_checkout_query"]["id"]])


async def test_a_pre_checkout_for_an_expired_invoice_is_refused_and_a_payment_that_still_arrives_is_credited(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with telegram_app(db_url, tmp_path, fake, clock=clock) as rig:
        payload = await _invoice(rig)
        clock.advance(seconds=INVOICE_LIFETIME.total_seconds() - 1)
        fresh = rig.fake.pre_checkout_query(USER, payload, 100)
        await rig.post(fresh)
        assert _answer_to(rig, fresh)["ok"] is True
        clock.advance(seconds=2)
        late = rig.fake.pre_checkout_query(USER, payload, 100)
        await rig.post(late)
        answer = _answer_to(rig, late)
        assert (
            answer["ok"] is False and answer["error_message"] == "This invoice has expired. Send /topup for a new one."
        )
        # Telegram took the stars anyway (the user had confirmed in time): the money is credited, once.
        update = await _pay(rig, payload)
        await rig.post(update)
        account = await rig.account_id(USER)
        assert (await rig.wallet(account))[0] == parse_usd("1.30")
        (paid,) = (await payments.list_payments(rig.container.uow(), account_id=account, limit=5, cursor=None)).items
        assert paid.id == payload and paid.status.value == "paid"
        assert "Payment received" in (rig.replies(USER, update["message"]["message_id"])[0].text or "")
        await _verify_clean(rig)


async def test_a_pre_checkout_for_someone_elses_invoice_is_refused_with_the_reason(rig: TelegramRig) -> None:
    payload = await _invoice(rig)
    other_with_account, other_new = 5151, 5252
    await rig.fund(other_with_account, "0")
    for payer in (other_with_account, other_new):
        query = rig.fake.pre_checkout_query(payer, payload, 100)
        await rig.post(query)
        answer = _answer_to(rig, query)
        assert answer["ok"] is False, payer
        assert answer["error_message"] == "This invoice belongs to someone else. Send /topup for your own."
    mine = rig.fake.pre_checkout_query(USER, payload, 100)
    await rig.post(mine)
    assert _answer_to(rig, mine)["ok"] is True


async def test_a_pre_checkout_with_a_different_amount_or_for_a_paid_invoice_is_refused(rig: TelegramRig) -> None:
    payload = await _invoice(rig)
    changed = rig.fake.pre_checkout_query(USER, payload, 99)
    await rig.post(changed)
    assert "amount does not match" in _answer_to(rig, changed)["error_message"]
    await _pay(rig, payload)
    again = rig.fake.pre_checkout_query(USER, payload, 100)
    await rig.post(again)
    assert _answer_to(rig, again) == {
        "ok": False,
        "error_message": "This invoice was already used. Send /topup for a new one.",
    }


async def test_two_replicas_receiving_the_same_payment_at_once_credit_it_once(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with (
        telegram_app(db_url, tmp_path / "a", fake) as first,
        telegram_app(db_url, tmp_path / "b", fake) as second,
    ):
        payload = await _invoice(first)
        update = first.fake.successful_payment(USER, payload, 100)
        answers = await asyncio.gather(*(rig.post(update) for rig in (first, second, first, second)))
        assert [a.status_code for a in answers] == [200] * 4
        account = await first.account_id(USER)
        assert (await second.wallet(account))[0] == parse_usd("1.30")
        (paid,) = (await payments.list_payments(first.container.uow(), account_id=account, limit=5, cursor=None)).items
        assert (paid.id, paid.status.value) == (payload, "paid")
        receipts = first.replies(USER, update["message"]["message_id"])
        assert len(receipts) == 1 and "Payment received" in (receipts[0].text or "")
        await _verify_clean(first)
