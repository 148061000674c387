"""Running tools from the web page: live progress, the result in place, uploads, cancelling, history."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Page, expect

from tests.browser.conftest import RUN_SECONDS
from tests.browser.helpers import (
    INTERNAL,
    TERMINAL,
    card_cost,
    generation,
    run_to_result,
    shot,
    sign_in_sandbox,
    start_tool,
    usd,
    wait_for_result_image,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

#: Installed before any page script: every change of the live card's status, progress and live status.
RECORD_PROGRESS = """
window.__seen = [];
setInterval(() => {
  const card = document.getElementById("generation-card");
  if (!card) return;
  const bar = document.getElementById("progress");
  const text = document.getElementById("status-text");
  const live = document.getElementById("live-status");
  const now = [card.dataset.status, text ? text.textContent : null, bar ? bar.value : null, live ? live.textContent : null];
  const last = window.__seen[window.__seen.length - 1];
  if (!last || JSON.stringify(last) !== JSON.stringify(now)) window.__seen.push(now);
}, 20);
"""


async def test_running_txt2img_shows_progress_changing_and_then_the_image_in_place(
    page: Page, api: httpx.AsyncClient
) -> None:
    await page.add_init_script(RECORD_PROGRESS)
    await sign_in_sandbox(page)
    gid = await start_tool(page, "txt2img", "a red fox in the snow")

    card = page.locator("#generation-card")
    await expect(card).to_have_attribute("data-id", gid)
    await expect(page.locator("#cancel")).to_be_visible()
    await expect(page.locator("#progress")).to_be_attached()
    await expect(page.locator("#live-status")).to_have_attribute("aria-live", "polite")
    # Wait until the run is visibly under way (the sandbox reports progress by node), then keep a picture of it.
    await page.wait_for_function("() => { const b = document.getElementById('progress'); return b && b.value > 0; }")
    await shot(page, "04-txt2img-running")

    src = await wait_for_result_image(page)
    seen: list[list[Any]] = await page.evaluate("window.__seen")  # [status, live status, progress], as JSON
    live = [s for s in seen if s[0] not in TERMINAL]
    statuses = {s[1] for s in live}
    progress = {s[2] for s in live}
    assert len({tuple(s) for s in live}) >= 2, seen
    assert "running" in statuses and len(statuses) >= 2, seen  # e.g. submitted/started, then running
    assert len(progress) >= 2 and max(p for p in progress if p is not None) > 0, seen  # the bar moved
    assert seen[-1][0] == "succeeded"

    # The result replaced the live card in place (same page, no reload): image, download link, cost.
    assert page.url.endswith(f"/app/generations/{gid}")
    await expect(page.locator("#cancel")).to_have_count(0)
    await expect(page.locator("#progress")).to_have_count(0)
    await expect(page.locator("#status-text")).to_have_text("succeeded")
    download = page.locator("#generation-card a[download]").first
    await expect(download).to_have_attribute("href", f"/app/generations/{gid}/download/1")
    await expect(download).to_have_attribute("download", re.compile(r"^txt2img-[0-9a-z]+-1\.png$"))
    cost = await card_cost(page)
    assert Decimal(0) < cost < Decimal("0.5")
    async with httpx.AsyncClient() as plain:
        image = await plain.get(src)
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
    g = await generation(api, gid)
    assert g["status"] == "succeeded" and Decimal(g["costUsd"]) == cost
    await shot(page, "04-txt2img-result")


async def test_img2img_with_an_uploaded_png_shows_the_preview_and_then_a_result_image(
    page: Page, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    picture = tmp_path / "garden.png"
    Image.new("RGB", (96, 64), (30, 140, 60)).save(picture)
    await sign_in_sandbox(page)
    await page.goto("/app?tool=img2img")
    file_input = page.locator("#in-input_image")
    await expect(file_input).to_have_attribute("accept", re.compile(r"^image/"))
    await expect(file_input).to_have_attribute("data-max-bytes", str(20 * 1024 * 1024))
    preview = page.locator("#preview-input_image")
    await expect(preview).to_be_hidden()

    await file_input.set_input_files(picture)
    await expect(preview).to_be_visible()
    await expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    await page.wait_for_function(
        "() => { const i = document.getElementById('preview-input_image'); return i.complete && i.naturalWidth === 96; }"
    )
    assert await file_input.evaluate("el => el.validity.valid")
    await page.fill("#in-input_text", "make it autumn")
    await shot(page, "05-img2img-preview")

    await page.click("#run")
    await page.wait_for_url(re.compile(r"/app/generations/[0-9a-f-]{36}$"))
    gid = page.url.rsplit("/", 1)[1]
    await wait_for_result_image(page)
    assert await card_cost(page) > 0
    g = await generation(api, gid)
    assert g["tool"] == "img2img" and g["status"] == "succeeded"
    # The uploaded file reached the backend as an input of the run.
    assert g["inputs"]["input_image"], g["inputs"]
    await shot(page, "05-img2img-result")


async def test_cancelling_a_running_generation_shows_it_cancelled_and_what_was_charged(
    page: Page, api: httpx.AsyncClient
) -> None:
    await sign_in_sandbox(page)
    gid = await start_tool(page, "txt2img", "a slow lighthouse")
    await expect(page.locator("#cancel")).to_be_visible()
    # Cancel once the GPU is busy (the sandbox run takes 3 s, running from about 0.75 s).
    await expect(page.locator("#status-text")).to_have_text("running")
    await page.click("#cancel")
    await expect(page).to_have_url(re.compile(rf"/app/generations/{gid}$"))
    card = page.locator("#generation-card")
    await expect(card).to_have_attribute("data-status", "cancelled")
    await expect(page.locator("#status-text")).to_have_text("cancelled")
    await expect(page.locator("#cancel")).to_have_count(0)
    await expect(page.locator("img.result")).to_have_count(0)
    message = page.locator("#generation-card p.error[role=alert]")
    await expect(message).to_contain_text("Cancelled")
    text = await message.inner_text()

    g = await generation(api, gid)
    assert g["status"] == "cancelled"
    charged = Decimal(g["costUsd"])
    # The GPU seconds used until the cancel are charged (less than the whole run), and the card says how much.
    assert Decimal(0) < charged < Decimal(g["usdPerSecond"]) * RUN_SECONDS, g
    assert "You were charged" in text and await usd(message) == charged, text
    # The hold is released: the page's balance is the welcome credit less exactly what was charged.
    await page.goto("/app/account")
    assert await usd(page.locator("#balance-usd")) == Decimal("0.5") - charged
    economy = (await api.get(f"{INTERNAL}/users/{g['masterAccountId']}/economy")).json()
    assert Decimal(economy["heldUsd"]) == 0
    await page.goto(f"/app/generations/{gid}")
    await shot(page, "06-cancelled")


async def test_history_lists_the_runs_newest_first_and_the_balance_fell_by_exactly_the_charged_costs(
    page: Page, api: httpx.AsyncClient
) -> None:
    await sign_in_sandbox(page)
    first, first_cost = await run_to_result(page, "txt2img", "first: a blue whale")
    second, second_cost = await run_to_result(page, "txt2img", "second: a green owl")
    account_id = (await generation(api, first))["masterAccountId"]
    assert (await generation(api, second))["masterAccountId"] == account_id

    await page.goto("/app/history")
    cards = page.locator(".gallery li")
    await expect(cards).to_have_count(2)
    for index, (gid, prompt, cost) in enumerate([(second, "second", second_cost), (first, "first", first_cost)]):
        item = cards.nth(index)
        await expect(item.locator(f"a[href='/app/generations/{gid}']")).to_have_count(1)
        await expect(item.locator(".prompt")).to_contain_text(prompt)
        await expect(item).to_contain_text("/txt2img · succeeded")
        await expect(item).to_contain_text(re.compile(r"\d+\.\d s"))  # duration
        await expect(item.get_by_role("link", name="Rerun")).to_have_attribute("href", re.compile(f"rerun={gid}"))
        assert await usd(item) == cost
        thumb = item.locator("img")
        await thumb.scroll_into_view_if_needed()
        await expect(thumb).to_have_js_property("complete", True)
        assert await thumb.evaluate("i => i.naturalWidth") > 0
    await shot(page, "07-history")

    # The account page's balance is the welcome credit less exactly the two charged costs ...
    await page.goto("/app/account")
    balance = await usd(page.locator("#balance-usd"))
    assert balance == Decimal("0.5") - first_cost - second_cost
    await expect(page.locator("#points")).to_contain_text("points")
    # ... which is what the ledger says: one debit per run, each the cost on its card; holds all released.
    entries = (await api.get(f"{INTERNAL}/users/{account_id}/transactions", params={"limit": 100})).json()["items"]
    debits = {e["relatedItems"].get("generationId"): Decimal(e["amountUsd"]) for e in entries if e["type"] == "debit"}
    assert debits == {first: first_cost, second: second_cost}, entries
    credits = [Decimal(e["amountUsd"]) for e in entries if e["type"] == "credit"]
    assert credits == [Decimal("0.5")], entries
    assert sum(credits) - sum(debits.values()) == balance
    assert min(Decimal(e["balanceAfterUsd"]) for e in entries) == balance
    economy = (await api.get(f"{INTERNAL}/users/{account_id}/economy")).json()
    assert Decimal(economy["usdCredit"]) == balance and Decimal(economy["heldUsd"]) == 0
    await shot(page, "07-account")

    # Rerun pre-fills the form with the earlier prompt.
    await page.goto("/app/history")
    await cards.nth(0).get_by_role("link", name="Rerun").click()
    await expect(page.locator("#in-input_text")).to_have_value("second: a green owl")
