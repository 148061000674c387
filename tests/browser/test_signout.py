"""Signing out of a sandbox guest account that nothing could sign in to again warns first."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import NoemaServer
from tests.browser.helpers import shot, sign_in_sandbox
from tests.browser.test_signin import assert_signed_out

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def _ask_to_sign_out(page: Page) -> None:
    await page.locator("header form[action='/signout'] button").click()
    warning = page.locator("#signout-warning")
    await expect(warning).to_be_visible()
    await expect(warning.locator("[role=alert]")).to_contain_text("no API key and no linked chat")
    await expect(warning.locator("[role=alert]")).to_contain_text("lost for good")


async def test_a_guest_with_no_key_is_warned_and_cancelling_keeps_the_session_confirming_signs_out(
    page: Page,
) -> None:
    await sign_in_sandbox(page)
    await _ask_to_sign_out(page)
    await shot(page, "12-signout-warning")
    await page.set_viewport_size({"width": 375, "height": 740})  # a phone: both choices on screen
    await expect(page.locator("#signout-cancel")).to_be_in_viewport()
    await expect(page.locator("#signout-confirm")).to_be_in_viewport()
    await shot(page, "12-signout-warning-phone")
    await page.set_viewport_size({"width": 1100, "height": 900})

    await page.click("#signout-cancel")
    await expect(page).to_have_url(re.compile(r"/app/account$"))
    await expect(page.locator(".balance")).to_have_text("$0.50")  # still signed in, same account
    await page.goto("/app")
    await expect(page).to_have_url(re.compile(r"/app$"))

    await _ask_to_sign_out(page)
    await page.click("#signout-confirm")
    await expect(page).to_have_url(re.compile(r"/$"))
    await assert_signed_out(page)


async def test_the_web_first_run_gives_a_key_that_works_with_curl_and_then_signs_out_at_once(
    page: Page, noema_server: NoemaServer
) -> None:
    # The README's web path: Try the sandbox -> Account -> Create a key -> curl.
    await sign_in_sandbox(page)
    await page.get_by_role("link", name="Account").click()
    account_id = (await page.locator("#account-id").inner_text()).strip()
    assert str(uuid.UUID(account_id)) == account_id
    await page.click("#create-key")
    key = (await page.locator("#new-key").inner_text()).strip()
    curl = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        f"{noema_server.url}/api/v1/me/status",
        "-H",
        f"Authorization: Bearer {key}",
        stdout=asyncio.subprocess.PIPE,
    )
    answer, _ = await curl.communicate()
    assert curl.returncode == 0 and json.loads(answer)["accountId"] == account_id, answer
    await page.locator("header form[action='/signout'] button").click()
    await expect(page).to_have_url(re.compile(r"/$"))
    await expect(page.locator("#signout-warning")).to_have_count(0)
    await assert_signed_out(page)
