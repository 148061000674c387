"""The account panel: API keys shown once and revocable, and linking with a chat account."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import NoemaServer
from tests.browser.helpers import INTERNAL, shot, sign_in_sandbox, start_tool, usd

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_creating_an_api_key_shows_it_once_it_works_and_revoking_it_makes_the_api_refuse_it(
    page: Page, noema_server: NoemaServer
) -> None:
    await sign_in_sandbox(page)
    await page.goto("/app/account")
    await expect(page.locator("table.keys tbody")).to_contain_text("No keys yet.")
    await page.fill("#key-name", "my script")
    await page.click("#create-key")
    new_key = page.locator("#new-key")
    await expect(new_key).to_be_visible()
    key = (await new_key.inner_text()).strip()
    assert re.fullmatch(r"nk_[A-Za-z0-9_\-]{20,}", key), key
    rows = page.locator("tr[data-prefix]")
    await expect(rows).to_have_count(1)
    prefix = await rows.first.get_attribute("data-prefix")
    assert prefix and key.startswith(prefix) and len(prefix) < len(key)
    await expect(rows.first).to_contain_text("my script")
    await expect(rows.first).not_to_contain_text(key)  # the table shows only the prefix
    await shot(page, "08-account-new-key")

    async with httpx.AsyncClient(base_url=noema_server.url) as client:
        me = await client.get("/api/v1/me/status", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, me.text
        assert Decimal(me.json()["usdCredit"]) == Decimal("0.5")

        # Shown once: coming back to the page shows the prefix only.
        await page.goto("/app/account")
        await expect(page.locator("#new-key")).to_have_count(0)
        assert key not in await page.content()
        await expect(page.locator(f"tr[data-prefix='{prefix}']")).to_contain_text("my script")

        await page.get_by_role("button", name=f"Revoke key {prefix}").click()
        await expect(page).to_have_url(re.compile(r"/app/account$"))
        row = page.locator(f"tr[data-prefix='{prefix}']")
        await expect(row).to_contain_text("revoked")
        await expect(row.get_by_role("button")).to_have_count(0)

        refused = await client.get("/api/v1/me/status", headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 401, refused.text
        # The key no longer signs in to the web page either. With no working key left, signing out
        # of the guest account asks first.
        await page.get_by_role("button", name="Sign out", exact=True).click()
        await page.click("#signout-confirm")
        await page.fill("#api_key", key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("p.error[role=alert]")).to_contain_text("not valid or has been revoked")
        await expect(page.locator("#api_key")).to_be_visible()


async def test_linking_a_telegram_account_with_its_code_merges_it_and_the_balance_grows_by_its_credit(
    page: Page, api: httpx.AsyncClient
) -> None:
    telegram_id = str(uuid.uuid4().int % 10**9)
    found = await api.post(f"{INTERNAL}/users/find-or-create", json={"platform": "telegram", "platformId": telegram_id})
    assert found.status_code == 201, found.text
    telegram_account = found.json()["masterAccountId"]
    credit = await api.post(f"{INTERNAL}/users/{telegram_account}/economy/credit", json={"amountUsd": "2"})
    assert credit.status_code == 201, credit.text
    issued = await api.post(
        f"{INTERNAL}/users/{telegram_account}/link-codes", json={"purpose": "link", "platform": "telegram"}
    )
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code

    await sign_in_sandbox(page)
    await page.goto("/app/account")
    before = await usd(page.locator("#balance-usd"))
    assert before == Decimal("0.5")

    # The page also offers a code to type into a chat.
    await page.click("#show-code")
    await expect(page.locator("#link-code-shown")).to_have_text(re.compile(r"^/link [A-Z0-9]{4}-[A-Z0-9]{4}$"))
    await shot(page, "09-account-link-code-shown")

    await page.fill("#link-code", code.lower())  # as typed by a person
    await page.click("#enter-code")
    await expect(page.locator("p.notice[role=status]")).to_contain_text("Linked")
    await expect(page.locator("p.error")).to_have_count(0)
    after = await usd(page.locator("#balance-usd"))
    assert after - before == Decimal("2")
    await expect(page.locator(".balance")).to_have_text("$2.50")
    await shot(page, "09-account-linked")

    # The browser's session follows the merge, and Telegram's account now carries the web identity too.
    await page.goto("/app/account")
    assert await usd(page.locator("#balance-usd")) == Decimal("2.5")
    user = await api.get(f"{INTERNAL}/users/by-platform/telegram/{telegram_id}")
    assert user.status_code == 200, user.text
    identities = user.json()["platformIdentities"]
    assert set(identities) == {"web", "telegram"} and identities["telegram"] == telegram_id, identities
    economy = (await api.get(f"{INTERNAL}/users/{user.json()['masterAccountId']}/economy")).json()
    assert Decimal(economy["usdCredit"]) == Decimal("2.5")

    # A code works once.
    await page.fill("#link-code", code)
    await page.click("#enter-code")
    await expect(page.locator("p.error[role=alert]")).to_contain_text("not valid or has expired")
    assert await usd(page.locator("#balance-usd")) == Decimal("2.5")


async def test_the_account_pages_running_now_list_links_to_each_running_generation(page: Page) -> None:
    await sign_in_sandbox(page)
    gid = await start_tool(page, "txt2img", "still running")
    await page.goto("/app/account")
    link = page.locator("ul.live a").first
    await expect(link).to_contain_text("/txt2img")
    await expect(link).to_have_attribute("href", f"/app/generations/{gid}", timeout=1000)
