"""Signing in to the web page: the sandbox first run, an API key, a one-time link; and the refusals."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import NoemaServer
from tests.browser.helpers import cli, new_account, shot, sign_in_link, usd

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def assert_signed_out(page: Page) -> None:
    await expect(page.locator("form[action='/signout']")).to_have_count(0)
    await page.goto("/app")
    await expect(page).to_have_url(re.compile(r"/$"))  # the tools page sends a stranger to sign in
    await expect(page.locator("#api_key")).to_be_visible()


async def test_the_sandbox_first_run_signs_in_and_shows_the_tools_page_with_an_estimate(
    page: Page, context: BrowserContext
) -> None:
    await page.goto("/")
    await expect(page.locator("#api_key")).to_be_visible()
    await expect(page.locator("#try-sandbox")).to_be_visible()
    # Both sign-in forms carry the double-submit token of the noema_csrf cookie.
    cookie = next(c for c in await context.cookies() if c["name"] == "noema_csrf")
    assert cookie["httpOnly"] and cookie["value"]
    tokens = await page.locator("input[name=csrf]").evaluate_all("els => els.map(e => e.value)")
    assert tokens == [cookie["value"], cookie["value"]]
    await shot(page, "01-signin")

    await page.click("#try-sandbox")
    await expect(page).to_have_url(re.compile(r"/app$"))
    assert any(c["name"] == "noema_session" and c["httpOnly"] for c in await context.cookies())
    await expect(page.locator(".balance")).to_have_text("$0.50")
    await expect(page.locator("form[action='/signout'] button")).to_have_text("Sign out")
    await expect(page.locator("#tool-picker")).to_be_visible()
    commands = await page.locator("#tool-picker option:not([disabled])").evaluate_all("os => os.map(o => o.value)")
    assert {"txt2img", "img2img"} <= set(commands)
    estimate = page.locator(".estimate")
    await expect(estimate).to_contain_text("Estimated cost")
    assert await usd(estimate) > 0

    # Choosing another tool reloads the page with that tool's form and its own estimate.
    await page.select_option("#tool-picker", "txt2img")
    await expect(page).to_have_url(re.compile(r"/app\?tool=txt2img$"))
    await expect(page.locator("#in-input_text")).to_have_attribute("required", "")
    await expect(page.locator("#in-width")).to_have_attribute("type", "range")
    assert await usd(estimate) > 0
    await shot(page, "01-tools")


async def test_signing_in_with_an_api_key_works_and_a_wrong_key_shows_an_error_and_stays_signed_out(
    page: Page, context: BrowserContext, api: httpx.AsyncClient, noema_server: NoemaServer
) -> None:
    account_id = await new_account(api, platform="api", usd_credit="1.25")
    key = (await cli(noema_server.env, noema_server.cwd, "apikey", "create", account_id)).strip()
    assert key.startswith("nk_")

    await page.goto("/")
    await page.fill("#api_key", "nk_" + "x" * 40)
    async with page.expect_response(lambda r: r.url.endswith("/signin")) as wrong:
        await page.get_by_role("button", name="Sign in").click()
    assert (await wrong.value).status == 401
    await expect(page.locator("p.error[role=alert]")).to_have_text("That API key is not valid or has been revoked.")
    assert not any(c["name"] == "noema_session" for c in await context.cookies())
    await shot(page, "02-signin-wrong-key")
    await assert_signed_out(page)

    await page.fill("#api_key", key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/app$"))
    await expect(page.locator(".balance")).to_have_text("$1.25")

    # Signing out ends the session: the tools page is out of reach again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/$"))
    await assert_signed_out(page)


async def test_a_one_time_sign_in_link_signs_in_once_and_a_used_or_unknown_link_shows_an_error(
    page: Page, api: httpx.AsyncClient, noema_server: NoemaServer
) -> None:
    account_id = await new_account(api, platform="telegram", usd_credit="0.75")
    url = await sign_in_link(api, account_id)
    assert url.startswith(f"{noema_server.url}/signin/link/")

    await page.goto(url)
    await expect(page).to_have_url(re.compile(r"/app$"))
    await expect(page.locator(".balance")).to_have_text("$0.75")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/$"))

    response = await page.goto(url)  # the same link again
    assert response is not None and response.status == 400
    await expect(page.locator("p.error[role=alert]")).to_contain_text("not valid or has expired")
    await shot(page, "03-signin-link-used")
    await assert_signed_out(page)

    response = await page.goto("/signin/link/" + "A" * 43)  # a link Noema never issued
    assert response is not None and response.status == 400
    await expect(page.locator("p.error[role=alert]")).to_contain_text("not valid or has expired")
    await assert_signed_out(page)
