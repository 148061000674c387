"""Card top-ups end to end: the real app and the real ``stripe`` library against the fake Stripe API.

Webhooks are signed with Stripe's scheme and posted to ``/api/webhook/stripe``; after each test
the ledger and the payments must verify clean.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from noema.bootstrap import Container
from noema.domain.money import parse_usd
from noema.services import economy
from tests.conftest import funded_key
from tests.e2e import stripe_harness as card
from tests.fakes.stripe_api import WEBHOOK_SECRET, FakeStripe, sign

TXT2IMG = {"toolId": "txt2img", "inputs": {"input_text": "a lighthouse"}}


async def test_a_topup_opens_a_checkout_and_only_the_signed_webhook_credits_it_once(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        topup = await card.topup(client, headers)
        assert topup["checkoutUrl"].startswith(fake_stripe.url + "/pay/cs_test_")
        method, path, form, sent_headers = fake_stripe.requests[-1]
        assert (method, path) == ("POST", "/v1/checkout/sessions")
        assert form["client_reference_id"] == topup["paymentId"] and form["metadata"]["account_id"] == aid
        assert form["line_items"][0]["price_data"] == {
            "currency": "usd",
            "unit_amount": "500",
            "product_data": {"name": "Noema credit: $5.00"},
        }
        assert form["success_url"] == f"http://noema.test/app/topup/done?payment={topup['paymentId']}"
        assert sent_headers["idempotency-key"] == f"checkout-{topup['paymentId']}"
        assert (await card.latest_payment(client, headers))["status"] == "created"
        assert await card.wallet(application, aid) == ("0.00", "0.00")
        event = fake_stripe.complete(card.session_id(topup))
        first = await fake_stripe.send(event, client=client)
        again = await fake_stripe.send(event, client=client)
        assert (first.json(), again.json()) == ({"status": "applied"}, {"status": "replayed"})
        assert await card.wallet(application, aid) == ("5.00", "0.00")
        shown = await card.latest_payment(client, headers)
        assert (shown["status"], shown["amountPaid"], shown["creditUsd"]) == ("paid", "5.00", "5.000000000")


async def test_racing_deliveries_of_the_same_payment_credit_it_once(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers, "10"))
        completed = fake_stripe.complete(sid)
        succeeded = fake_stripe.async_succeeded(sid)
        answers = await asyncio.gather(
            *(fake_stripe.send(e, client=client) for e in [completed, completed, completed, succeeded, succeeded])
        )
        assert all(a.status_code == 200 for a in answers)
        assert await card.wallet(application, aid) == ("10.00", "0.00")


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "stale", "missing", "tampered body", "garbage header"],
)
async def test_a_forged_stale_or_unsigned_webhook_gets_400_and_changes_nothing(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe, how: str
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers))
        payload = json.dumps(fake_stripe.complete(sid)).encode()
        signature = {
            "wrong secret": sign(payload, secret="whsec_not_ours"),
            "stale": sign(payload, timestamp=int(time.time()) - 301),
            "missing": None,
            "tampered body": sign(payload.replace(b'"paid"', b'"unpaid"')),
            "garbage header": "t=abc,v1=zz",
        }[how]
        sent = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature else {})
        r = await client.post("/api/webhook/stripe", content=payload, headers=sent)
        assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_SIGNATURE", r.text
        assert "Traceback" not in r.text and WEBHOOK_SECRET not in r.text
        assert await card.wallet(application, aid) == ("0.00", "0.00")
        assert (await card.latest_payment(client, headers))["status"] == "created"


async def test_an_amount_that_is_not_offered_is_refused_naming_the_offered_ones(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        _aid, headers = await funded_key(application, "0")
        r = await client.post("/api/v1/topups", json={"provider": "stripe", "amountUsd": "7"}, headers=headers)
        assert r.status_code == 400 and "$5.00, $10.00, $25.00" in r.json()["error"]["message"]
        assert fake_stripe.requests == []
        assert (await client.get("/api/v1/payments", headers=headers)).json()["items"] == []


async def test_a_refund_delivered_before_the_payment_ends_with_nothing_credited(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "1")
        sid = card.session_id(await card.topup(client, headers))
        completed = fake_stripe.complete(sid)
        refunded = fake_stripe.refunded(sid)
        assert (await fake_stripe.send(refunded, client=client)).status_code == 200
        assert (await fake_stripe.send(completed, client=client)).status_code == 200
        assert await card.wallet(application, aid) == ("1.00", "0.00")
        assert (await card.latest_payment(client, headers))["status"] == "refunded"


async def test_a_partial_refund_takes_back_its_share(db_url: str, tmp_path: Path, fake_stripe: FakeStripe) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers, "10"))
        await fake_stripe.send(fake_stripe.complete(sid), client=client)
        await fake_stripe.send(fake_stripe.refunded(sid, 300), client=client)
        assert await card.wallet(application, aid) == ("7.00", "0.00")
        shown = await card.latest_payment(client, headers)
        assert (shown["status"], shown["refunded"], shown["takenBackUsd"]) == (
            "partially_refunded",
            "3.00",
            "3.000000000",
        )


async def test_a_refund_after_spending_is_owed_refuses_runs_and_the_next_topup_pays_it_first(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        c: Container = application.state.container
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers, "10"))
        await fake_stripe.send(fake_stripe.complete(sid), client=client)
        await economy.debit(c.uow(), c.clock, economy.Transfer(aid, parse_usd("8"), description="spent on runs"))
        await fake_stripe.send(fake_stripe.refunded(sid), client=client)
        assert await card.wallet(application, aid) == ("0.00", "8.00")
        me = (await client.get("/api/v1/me/status", headers=headers)).json()
        assert (me["owedUsd"], me["usdCredit"]) == ("8.000000000", "0.000000000")
        refused = await client.post("/api/v1/generations", json=TXT2IMG, headers=headers)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "AMOUNT_OWED"
        assert error["message"] == "You owe $8.00 from a refunded payment; top up to continue."
        second = card.session_id(await card.topup(client, headers, "10"))
        await fake_stripe.send(fake_stripe.complete(second), client=client)
        assert await card.wallet(application, aid) == ("2.00", "0.00")
        assert (await client.get("/api/v1/me/status", headers=headers)).json()["owedUsd"] == "0.000000000"
        accepted = await client.post("/api/v1/generations", json=TXT2IMG, headers=headers)
        assert accepted.status_code in {201, 202}, accepted.text


async def test_a_dispute_takes_the_credit_back_and_records_the_fee(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers, "25"))
        await fake_stripe.send(fake_stripe.complete(sid), client=client)
        await fake_stripe.send(fake_stripe.disputed(sid, fee=1500), client=client)
        assert await card.wallet(application, aid) == ("0.00", "0.00")
        shown = await card.latest_payment(client, headers)
        assert (shown["status"], shown["disputed"], shown["disputeFee"]) == ("disputed", "25.00", "15.00")


async def test_an_async_payment_is_credited_only_when_it_succeeds(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers))
        await fake_stripe.send(fake_stripe.complete(sid, paid=False), client=client)
        assert await card.wallet(application, aid) == ("0.00", "0.00")
        assert (await card.latest_payment(client, headers))["status"] == "created"
        await fake_stripe.send(fake_stripe.async_succeeded(sid), client=client)
        assert await card.wallet(application, aid) == ("5.00", "0.00")


async def test_someone_elses_payments_are_not_listed(db_url: str, tmp_path: Path, fake_stripe: FakeStripe) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        _a, mine = await funded_key(application, "0")
        _b, theirs = await funded_key(application, "0")
        await card.topup(client, mine)
        assert (await client.get("/api/v1/payments", headers=theirs)).json()["items"] == []
        assert len((await client.get("/api/v1/payments", headers=mine)).json()["items"]) == 1


async def test_the_internal_api_lists_payments_for_the_admin_client_only(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    from tests.conftest import ADMIN, PLATFORM

    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        topup = await card.topup(client, headers)
        listed = await client.get("/internal/v1/data/payments", params={"masterAccountId": aid}, headers=ADMIN)
        assert listed.status_code == 200 and [p["id"] for p in listed.json()["items"]] == [topup["paymentId"]]
        one = await client.get(f"/internal/v1/data/payments/{topup['paymentId']}", headers=ADMIN)
        assert one.status_code == 200 and one.json()["accountId"] == aid
        refused = await client.get("/internal/v1/data/payments", headers=PLATFORM)
        assert refused.status_code == 403
