"""Stripe disputes: found through their charge even before the payment's own event, won ones given back once.

A dispute event names its charge and payment intent but none of our metadata, so when it arrives
before ``checkout.session.completed`` Noema asks Stripe for the charge (``GET /v1/charges/{id}``),
whose metadata names the payment. The ledger and the payments verify clean after each test.
"""

from __future__ import annotations

from pathlib import Path

from noema.bootstrap import Container
from noema.domain.money import parse_usd
from noema.services import economy
from tests.conftest import funded_key
from tests.e2e import stripe_harness as card
from tests.fakes.stripe_api import FakeStripe


async def test_a_dispute_that_arrives_before_the_payment_is_matched_through_its_charge(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "1")
        sid = card.session_id(await card.topup(client, headers, "25"))
        completed = fake_stripe.complete(sid)
        disputed = fake_stripe.disputed(sid, fee=1500)
        first = await fake_stripe.send(disputed, client=client)
        assert first.json() == {"status": "applied"}, first.text
        charge = fake_stripe.charge_of(sid)["id"]
        assert ("GET", f"/v1/charges/{charge}") in [(m, p) for m, p, _f, _h in fake_stripe.requests]
        assert await card.wallet(application, aid) == ("1.00", "0.00")  # nothing credited, nothing taken
        assert (await fake_stripe.send(completed, client=client)).json() == {"status": "applied"}
        assert await card.wallet(application, aid) == ("1.00", "0.00")  # credited and taken back at once
        shown = await card.latest_payment(client, headers)
        assert (shown["status"], shown["disputed"], shown["disputeFee"], shown["takenBackUsd"]) == (
            "disputed",
            "25.00",
            "15.00",
            "25.000000000",
        )


async def test_a_won_dispute_gives_the_credit_back_once_paying_what_is_owed_first(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        c: Container = application.state.container
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers, "25"))
        await fake_stripe.send(fake_stripe.complete(sid), client=client)
        await economy.debit(c.uow(), c.clock, economy.Transfer(aid, parse_usd("20"), description="spent on runs"))
        await fake_stripe.send(fake_stripe.disputed(sid), client=client)
        assert await card.wallet(application, aid) == ("0.00", "20.00")
        won = fake_stripe.dispute_closed(sid, status="won")
        assert (await fake_stripe.send(won, client=client)).json() == {"status": "applied"}
        assert (await fake_stripe.send(won, client=client)).json() == {"status": "replayed"}
        again = fake_stripe.event("charge.dispute.funds_reinstated", won["data"]["object"])  # the same news
        await fake_stripe.send(again, client=client)
        assert await card.wallet(application, aid) == ("5.00", "0.00")
        me = (await client.get("/api/v1/me/status", headers=headers)).json()
        assert me["owedUsd"] == "0.000000000"
        shown = await card.latest_payment(client, headers)
        assert (shown["status"], shown["takenBackUsd"], shown["disputeFee"]) == ("paid", "0.000000000", "0.00")


async def test_a_won_dispute_delivered_before_the_dispute_itself_takes_nothing(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers, "10"))
        completed = fake_stripe.complete(sid)
        opened = fake_stripe.disputed(sid)
        won = fake_stripe.dispute_closed(sid, status="won")
        for event in (won, completed, opened):  # Stripe delivers out of order
            assert (await fake_stripe.send(event, client=client)).status_code == 200
        assert await card.wallet(application, aid) == ("10.00", "0.00")
        shown = await card.latest_payment(client, headers)
        assert (shown["status"], shown["disputeFee"]) == ("paid", "0.00")  # the later-sent "opened" keeps its fee


async def test_a_lost_dispute_keeps_the_credit_taken_back(db_url: str, tmp_path: Path, fake_stripe: FakeStripe) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers, "10"))
        await fake_stripe.send(fake_stripe.complete(sid), client=client)
        await fake_stripe.send(fake_stripe.disputed(sid), client=client)
        await fake_stripe.send(fake_stripe.dispute_closed(sid, status="lost"), client=client)
        assert await card.wallet(application, aid) == ("0.00", "0.00")
        shown = await card.latest_payment(client, headers)
        assert (shown["status"], shown["disputeFee"]) == ("disputed", "15.00")  # a lost dispute's fee stays


async def test_a_dispute_whose_charge_stripe_does_not_know_changes_nothing(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "3")
        sid = card.session_id(await card.topup(client, headers, "10"))
        fake_stripe.complete(sid)
        stray = fake_stripe.disputed(sid)
        stray["data"]["object"]["charge"] = "ch_not_ours"
        stray["data"]["object"]["payment_intent"] = "pi_not_ours"
        answer = await fake_stripe.send(stray, client=client)
        assert answer.status_code == 200 and answer.json() == {"status": "ignored"}
        assert await card.wallet(application, aid) == ("3.00", "0.00")
