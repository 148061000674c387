"""Card top-ups in the browser: the account panel, the (fake) Stripe Checkout, the live confirmation."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import NoemaServer
from tests.browser.helpers import shot, sign_in_sandbox
from tests.fakes.stripe_api import FakeStripe

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_choosing_an_amount_paying_at_checkout_shows_the_new_balance_once_stripe_confirms(
    page: Page, noema_server: NoemaServer, fake_stripe: FakeStripe
) -> None:
    await sign_in_sandbox(page)
    await page.goto("/app/account")
    await expect(page.locator("#add-funds")).to_contain_text("Add funds")
    await page.get_by_role("button", name="Add $10.00").click()
    await page.wait_for_url(f"{fake_stripe.url}/pay/**")
    await expect(page.locator("h1")).to_have_text("Pay $10.00")
    await shot(page, "30-fake-checkout")
    fake_stripe.webhook_delay = 2.0
    try:
        await page.get_by_role("button", name="Pay").click()
        await page.wait_for_url(f"{noema_server.url}/app/topup/done**")
        # Back from Checkout before Stripe's webhook: the page waits and credits nothing by itself.
        await expect(page.locator("#topup-status")).to_contain_text("Waiting for confirmation")
        await expect(page.locator(".balance")).to_have_text("$0.50")
    finally:
        fake_stripe.webhook_delay = 0.0
    # The sandbox sign-in starts with $0.50; the webhook adds $10.00 and the page shows it without a reload.
    await expect(page.locator("#topup-status")).to_contain_text("Your balance is $10.50")
    await expect(page.locator(".balance")).to_have_text("$10.50")
    await shot(page, "31-topup-confirmed")
    await page.goto("/app/account")
    await expect(page.locator("table.payments tbody tr")).to_have_count(1)
    await expect(page.locator("table.payments")).to_contain_text("paid")
