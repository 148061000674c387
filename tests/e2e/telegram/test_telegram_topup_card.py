"""Telegram: /topup card answers, in a private chat only, with a one-time sign-in link to the web top-up."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.stripe_harness import STRIPE_SETTINGS
from tests.e2e.telegram.harness import TelegramRig, telegram_app
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.telegram_api import FakeTelegram

USER = 7301


@pytest.fixture
async def card_rig(
    db_url: str, tmp_path: Path, fake: FakeTelegram, fake_stripe: FakeStripe
) -> AsyncIterator[TelegramRig]:
    """Noema with Telegram and card payments (against the fake Stripe API)."""
    async with telegram_app(db_url, tmp_path, fake, **STRIPE_SETTINGS, stripe_api_base=fake_stripe.url) as rig:
        yield rig


async def _answer(rig: TelegramRig, text: str, chat: int = USER, **kwargs: object) -> str:
    message = await rig.say(chat, text, **kwargs)
    (reply,) = rig.replies(chat, message["message_id"])
    return reply.text or ""


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


async def test_topup_card_signs_in_once_to_the_top_up_panel_where_a_card_checkout_starts(
    card_rig: TelegramRig, fake_stripe: FakeStripe
) -> None:
    rig = card_rig
    text = await _answer(rig, "/topup card")
    match = re.search(r"https://noema\.test(/signin/link/[\w-]+\?to=topup)", text)
    assert match, text
    opened = await rig.client.get(match.group(1))
    assert opened.status_code == 303 and opened.headers["location"] == "/app/account#add-funds"
    panel = await rig.client.get("/app/account")
    assert panel.status_code == 200 and 'id="add-funds"' in panel.text and 'data-topup="500"' in panel.text
    paid = await rig.client.post("/app/topup", data={"csrf": _csrf(panel.text), "amount": "5.00"})
    assert paid.status_code == 303 and paid.headers["location"].startswith(fake_stripe.url + "/pay/cs_test_")
    _method, _path, form, _headers = fake_stripe.requests[-1]
    assert form["metadata"]["account_id"] == await rig.account_id(USER)
    rig.client.cookies.clear()
    again = await rig.client.get(match.group(1))
    assert again.status_code == 400 and "not valid or has expired" in again.text


async def test_topup_offers_the_card_link_and_an_unknown_method_is_explained(card_rig: TelegramRig) -> None:
    message = await card_rig.say(USER, "/topup")
    (offer,) = card_rig.replies(USER, message["message_id"])
    assert "/topup card" in (offer.text or "") and offer.reply_markup is not None
    assert "/topup card to pay by card" in await _answer(card_rig, "/topup paypal")


async def test_topup_card_in_a_group_sends_no_link(card_rig: TelegramRig) -> None:
    text = await _answer(card_rig, "/topup card", chat=-100778, user_id=USER)
    assert "private chat" in text and "/signin/link/" not in text


async def test_topup_card_without_card_payments_says_so_and_gives_no_link(rig: TelegramRig) -> None:
    text = await _answer(rig, "/topup card")
    assert "Card payments are not set up" in text and "/signin/link/" not in text
    message = await rig.say(USER, "/topup")
    assert "/topup card" not in (rig.replies(USER, message["message_id"])[0].text or "")
