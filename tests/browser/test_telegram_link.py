"""The web page and a real chat flow: /link in Telegram gives a code to enter on the page and a sign-in link."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.helpers import shot, sign_in_sandbox
from tests.fakes.telegram_api import FakeTelegram

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def _link_reply(fake: FakeTelegram, chat_id: int) -> str:
    """Send /link as a Telegram user; the served Noema polls the update and answers (waited for)."""
    fake.user_message(chat_id, "/link")
    for _ in range(200):
        replies = [s.text or "" for s in fake.sent_to(chat_id) if "link code" in (s.text or "")]
        if replies:
            return replies[-1]
        await asyncio.sleep(0.1)
    raise AssertionError("Noema did not answer /link in Telegram")


async def test_the_code_from_telegrams_link_joins_the_browser_account_to_the_chat_account(
    page: Page, fake_telegram: FakeTelegram
) -> None:
    chat_id = 10_000 + uuid.uuid4().int % 10**6
    text = await _link_reply(fake_telegram, chat_id)
    code = re.search(r"Your link code: ([A-Z0-9]{4}-[A-Z0-9]{4})", text)
    assert code is not None, text

    await sign_in_sandbox(page)
    await page.goto("/app/account")
    await page.fill("#link-code", code.group(1))
    await page.click("#enter-code")
    await expect(page.locator("p.notice[role=status]")).to_contain_text("Linked")
    await shot(page, "10-account-linked-from-telegram")

    # In the chat, /account now lists both platforms of the one account.
    fake_telegram.user_message(chat_id, "/account")
    for _ in range(200):
        accounts = [s.text or "" for s in fake_telegram.sent_to(chat_id) if "Your account" in (s.text or "")]
        if accounts:
            break
        await asyncio.sleep(0.1)
    assert accounts and "telegram" in accounts[-1] and "web" in accounts[-1], accounts


async def test_the_sign_in_link_from_telegrams_link_signs_in_once(
    context: BrowserContext, page: Page, fake_telegram: FakeTelegram
) -> None:
    chat_id = 20_000 + uuid.uuid4().int % 10**6
    text = await _link_reply(fake_telegram, chat_id)
    url = re.search(r"(http://\S+/signin/link/\S+)", text)
    assert url is not None, text
    await page.goto(url.group(1))
    await expect(page).to_have_url(re.compile(r"/app"))
    await expect(page.locator(".balance")).to_be_visible()
    await shot(page, "10-signed-in-from-telegram")

    assert context.browser is not None  # a context made by a launched browser knows it
    second = await context.browser.new_context()
    try:
        other = await second.new_page()
        await other.goto(url.group(1))
        await expect(other.locator("p.error[role=alert]")).to_contain_text("not valid or has expired")
    finally:
        await second.close()
