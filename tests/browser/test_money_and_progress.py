"""Money and progress on the page, at phone (390 px) and desktop widths.

What is reserved, what a run cost, the level bar, the settings a result used, and readable download names.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.browser.helpers import (
    INTERNAL,
    SHOWN_USD,
    new_account,
    shot,
    sign_in_link,
    sign_in_sandbox,
    start_tool,
    usd,
    wait_for_result_image,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]
WIDTHS: dict[str, ViewportSize] = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1100, "height": 900}}


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_header_shows_the_hold_as_reserved_and_then_what_the_run_cost(page: Page, width: str) -> None:
    await page.set_viewport_size(WIDTHS[width])
    await sign_in_sandbox(page)
    await expect(page.locator(".reserved")).to_be_hidden()
    await start_tool(page, "txt2img", "a lantern by the sea")
    reserved = page.locator(".reserved")
    await expect(reserved).to_be_visible()
    await expect(reserved).to_have_text(re.compile(r"^\$[\d.]+ reserved$"))
    await expect(page.locator("#live-status")).not_to_contain_text("Executing")
    await shot(page, f"16-{width}-running-reserved")

    await wait_for_result_image(page)
    cost = await usd(page.locator("#generation-card"))
    await expect(reserved).to_be_hidden()
    change = page.locator(".balance-change")
    await expect(change).to_be_visible()
    charged = (await change.inner_text()).strip()
    assert charged.startswith("-") and SHOWN_USD.match(charged) and cost > 0, charged
    # The settings used, the image flush with its card, and a readable download name.
    await expect(page.locator("#settings-used")).to_contain_text(re.compile(r"Seed \d+ · Size \d+×\d+ · Steps \d+"))
    margin = await page.locator("#generation-card figure").first.evaluate("f => getComputedStyle(f).margin")
    assert margin == "0px", margin
    download = page.locator("#generation-card a[download]").first
    await expect(download).to_have_attribute("download", re.compile(r"^txt2img-[0-9a-f]{5}-1\.png$"))
    image = page.locator("#generation-card img.result").first
    box, card = await image.bounding_box(), await page.locator("#generation-card").bounding_box()
    assert box and card and box["width"] <= card["width"]  # fits a phone screen
    await shot(page, f"16-{width}-result")


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_level_bar_is_as_full_as_its_percentage_and_points_and_exp_are_explained(
    page: Page, api: httpx.AsyncClient, width: str
) -> None:
    await page.set_viewport_size(WIDTHS[width])
    account_id = await new_account(api, usd_credit="1")
    r = await api.put(f"{INTERNAL}/users/{account_id}/economy/exp", json={"expChange": 2})  # level 1, 1/7 = 14%
    assert r.status_code == 200, r.text
    await page.goto(await sign_in_link(api, account_id))
    await page.goto("/app/account")
    bar = page.locator("#level-bar")
    await expect(bar).to_have_attribute("value", "14")
    await expect(bar).to_have_attribute("max", "100")
    assert await bar.evaluate("b => b.position") == pytest.approx(0.14)
    await expect(page.locator("#level-percent")).to_have_text("14%")
    for what in ("#points", "#exp", "#level-bar"):
        assert await page.locator(what).get_attribute("title"), what
    await expect(page.locator(".explain")).to_contain_text("Points: your balance in seconds of an A10G GPU")
    await expect(page.locator(".explain")).to_contain_text("cube root of EXP")
    await shot(page, f"17-{width}-account-level")
