"""The browser finds the page's icon: no 404 for /favicon.ico, and Chromium can draw it."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DRAW_ICON = """() => new Promise((done) => {
  const img = new Image();
  img.onload = () => done(img.naturalWidth);
  img.onerror = () => done(0);
  img.src = document.querySelector("link[rel=icon]").href;
})"""


async def test_the_page_icon_loads_in_the_browser(page: Page) -> None:
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await page.goto("/")
    width = await page.evaluate(DRAW_ICON)
    assert width >= 16
    assert failed == []
