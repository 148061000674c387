"""Form errors at the field: named by the input's display name, tied to it for screen readers, phone and desktop."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, Request, expect

from tests.browser.helpers import INTERNAL, new_account, shot, sign_in_link

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]
WIDTHS = {"phone": 390, "desktop": 1100}


def _runs(page: Page) -> list[Request]:
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/app/run") else None)
    return posts


async def _submit(page: Page) -> int:
    async with page.expect_response(lambda r: r.url.endswith("/app/run")) as posted:
        await page.click("#run")
    return (await posted.value).status


async def _fits(page: Page, width: int) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= width  # nothing spills sideways


async def _field_error(page: Page, name: str, text: str) -> None:
    field = page.locator(f"#in-{name}")
    message = page.locator(f"#err-{name}")
    await expect(message).to_have_text(text)
    await expect(message).to_be_visible()
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(field).to_have_attribute("aria-describedby", f"err-{name}")
    await expect(field).to_be_focused()
    await expect(page.locator("p.error")).to_have_count(0)  # said at the field, not in a banner
    # The message sits right under its input.
    field_box, message_box = await field.bounding_box(), await message.bounding_box()
    assert field_box is not None and message_box is not None
    assert 0 <= message_box["y"] - (field_box["y"] + field_box["height"]) < 80


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_an_all_spaces_prompt_is_refused_at_the_field_by_its_display_name(
    page: Page, api: httpx.AsyncClient, device: str
) -> None:
    width = WIDTHS[device]
    await page.set_viewport_size({"width": width, "height": 900})
    account_id = await new_account(api, usd_credit="0.50")
    await page.goto(await sign_in_link(api, account_id))
    await page.goto("/app?tool=txt2img")
    await page.fill("#in-input_text", "     ")
    assert await _submit(page) == 400
    await _field_error(page, "input_text", "Prompt is required.")
    await expect(page.locator("body")).not_to_contain_text("input_text")
    await _fits(page, width)
    await shot(page, f"11-spaces-prompt-{device}")
    r = await api.get(f"{INTERNAL}/users/{account_id}/generations")
    assert r.json()["items"] == []


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_steps_out_of_range_are_stopped_by_the_browser_and_refused_by_the_server_at_the_field(
    page: Page, api: httpx.AsyncClient, device: str
) -> None:
    width = WIDTHS[device]
    await page.set_viewport_size({"width": width, "height": 900})
    account_id = await new_account(api, usd_credit="0.50")
    await page.goto(await sign_in_link(api, account_id))
    await page.goto("/app?tool=txt2img")
    steps = page.locator("#in-steps")
    await expect(steps).to_have_attribute("min", "1")
    await expect(steps).to_have_attribute("max", "100")
    posts = _runs(page)
    await page.fill("#in-input_text", "a fox")
    await steps.fill("99999999")
    assert await steps.evaluate("el => el.validity.rangeOverflow")
    await page.click("#run")
    await page.wait_for_timeout(300)
    assert posts == []  # the browser kept it
    # Sent past the browser's check (as a script would), the server refuses it next to the field.
    await steps.evaluate("el => { el.removeAttribute('min'); el.removeAttribute('max'); }")
    assert await _submit(page) == 400
    await _field_error(page, "steps", "Steps must be between 1 and 100.")
    await expect(page.locator("#in-input_text")).to_have_value("a fox")  # what was typed is kept
    await _fits(page, width)
    await shot(page, f"11-steps-out-of-range-{device}")
    r = await api.get(f"{INTERNAL}/users/{account_id}/generations")
    assert r.json()["items"] == []
