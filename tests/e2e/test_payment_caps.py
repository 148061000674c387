"""An account may keep only a few unpaid checkouts open: past the cap it gets 429 and nothing is made.

A paid, expired (Stripe's ``checkout.session.expired``) or out-of-date checkout frees its place.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import httpx

from noema.bootstrap import Container
from noema.domain.linking import CodePurpose
from noema.domain.payments import CHECKOUT_LIFETIME
from noema.services import linking
from tests.conftest import funded_key
from tests.e2e import stripe_harness as card
from tests.fakes.stripe_api import FakeStripe

TOPUP = {"provider": "stripe", "amountUsd": "5"}


async def _count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return len((await client.get("/api/v1/payments", headers=headers)).json()["items"])


async def test_past_the_cap_a_checkout_is_refused_with_429_and_nothing_is_made(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe, max_open_payments=2) as (application, client):
        _aid, headers = await funded_key(application, "0")
        first = card.session_id(await card.topup(client, headers))
        second = card.session_id(await card.topup(client, headers))
        asked = len(fake_stripe.requests)
        refused = await client.post("/api/v1/topups", json=TOPUP, headers=headers)
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert (
            error["code"] == "TOO_MANY_OPEN_PAYMENTS"
            and "Too many unpaid checkouts are open (2, at most 2)" in error["message"]
        )
        assert 23 * 3600 < int(refused.headers["Retry-After"]) <= 24 * 3600
        assert len(fake_stripe.requests) == asked and await _count(client, headers) == 2
        # Paid: its place is free again.
        await fake_stripe.send(fake_stripe.complete(first), client=client)
        third = card.session_id(await card.topup(client, headers))
        assert (await client.post("/api/v1/topups", json=TOPUP, headers=headers)).status_code == 429
        # Expired at Stripe: free again.
        await fake_stripe.send(fake_stripe.expired(second), client=client)
        await card.topup(client, headers)
        assert (await client.post("/api/v1/topups", json=TOPUP, headers=headers)).status_code == 429
        assert third in fake_stripe.sessions and await _count(client, headers) == 4


async def test_the_cap_is_per_account(db_url: str, tmp_path: Path, fake_stripe: FakeStripe) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe, max_open_payments=1) as (application, client):
        _a, mine = await funded_key(application, "0")
        _b, theirs = await funded_key(application, "0")
        await card.topup(client, mine)
        assert (await client.post("/api/v1/topups", json=TOPUP, headers=mine)).status_code == 429
        await card.topup(client, theirs)


async def test_concurrent_checkouts_past_the_cap_make_exactly_the_cap(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe, max_open_payments=3) as (application, client):
        _aid, headers = await funded_key(application, "0")
        answers = await asyncio.gather(*(client.post("/api/v1/topups", json=TOPUP, headers=headers) for _ in range(8)))
        assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 5
        assert await _count(client, headers) == 3 and len(fake_stripe.sessions) == 3


async def test_a_checkout_older_than_stripes_expiry_frees_its_place(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe, max_open_payments=1) as (application, client):
        c: Container = application.state.container
        _aid, headers = await funded_key(application, "0")
        old = await card.topup(client, headers)
        assert (await client.post("/api/v1/topups", json=TOPUP, headers=headers)).status_code == 429
        async with c.uow() as uow:  # a day passes without Stripe's expiry event arriving
            row = await uow.payments.get(old["paymentId"], for_update=True)
            assert row is not None
            row.created_at -= CHECKOUT_LIFETIME + timedelta(seconds=1)
            await uow.commit()
        await card.topup(client, headers)


async def test_the_web_panel_shows_the_refusal(db_url: str, tmp_path: Path, fake_stripe: FakeStripe) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe, max_open_payments=1) as (application, client):
        c: Container = application.state.container
        aid, headers = await funded_key(application, "0")
        await card.topup(client, headers)
        link = await linking.issue(c.uow(), c.clock, aid, CodePurpose.SIGN_IN, secrets=c.secrets)
        assert (await client.get(f"/signin/link/{link.code}?to=topup")).status_code == 303
        panel = await client.get("/app/account")
        csrf = re.search(r'name="csrf" value="([^"]+)"', panel.text)
        assert csrf is not None
        refused = await client.post("/app/topup", data={"csrf": csrf.group(1), "amount": "5.00"})
        assert refused.status_code == 429 and "Too many unpaid checkouts are open (1, at most 1)" in refused.text
        assert await _count(client, headers) == 1
