"""Steps the browser tests share: signing in, running a tool, reading money off the page."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Locator, Page, expect

from tests.fakes.processes import run_noema

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
INTERNAL = "/internal/v1/data"
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
#: How people see money on every surface: $0.50, and two significant digits below a cent ($0.00077).
SHOWN_USD = re.compile(r"^-?\$(\d{1,3}(,\d{3})*|0)\.(\d\d|0*[1-9]\d?)$")


async def shot(page: Page, name: str) -> Path:
    """A full-page screenshot kept for reviewers as ``test-output/screenshots/<name>.png``."""
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path


async def usd(where: Locator) -> Decimal:
    """The exact amount behind the first money figure in ``where``; its text must be in the one shown form."""
    figure = where.locator("data.usd").first
    shown = await figure.inner_text()
    assert SHOWN_USD.match(shown), f"{shown!r} is not how money is shown"
    value = await figure.get_attribute("value")
    assert value is not None
    return Decimal(value)


async def sign_in_sandbox(page: Page) -> None:
    """The sandbox first run: a new web account with $0.50, signed in on the tools page."""
    await page.goto("/")
    await page.click("#try-sandbox")
    await expect(page).to_have_url(re.compile(r"/app$"))
    await expect(page.locator(".balance")).to_have_text("$0.50")


async def new_account(api: httpx.AsyncClient, *, platform: str = "web", usd_credit: str | None = None) -> str:
    """A new account with one identity on ``platform`` (and some credit): its masterAccountId."""
    r = await api.post(
        f"{INTERNAL}/users/find-or-create", json={"platform": platform, "platformId": uuid.uuid4().hex[:16]}
    )
    assert r.status_code == 201, r.text
    account_id: str = r.json()["masterAccountId"]
    if usd_credit is not None:
        credit = await api.post(f"{INTERNAL}/users/{account_id}/economy/credit", json={"amountUsd": usd_credit})
        assert credit.status_code == 201, credit.text
    return account_id


async def sign_in_link(api: httpx.AsyncClient, account_id: str) -> str:
    """A one-time web sign-in URL for the account (what /link gives in a chat)."""
    r = await api.post(f"{INTERNAL}/users/{account_id}/link-codes", json={"purpose": "sign_in"})
    assert r.status_code == 201, r.text
    url: str = r.json()["signInUrl"]
    return url


async def generation(api: httpx.AsyncClient, generation_id: str) -> dict[str, Any]:
    """A generation as the internal API reports it."""
    r = await api.get(f"{INTERNAL}/generations/{generation_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def start_tool(page: Page, tool: str, prompt: str | None = None) -> str:
    """Open the tool's form, fill the prompt, press Run: the id of the generation the page went to."""
    await page.goto(f"/app?tool={tool}")
    await expect(page.locator("#tool-form input[name=tool]")).to_have_value(tool)
    if prompt is not None:
        await page.fill("#in-input_text", prompt)
    await page.click("#run")
    await page.wait_for_url(re.compile(r"/app/generations/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


async def wait_for_result_image(page: Page) -> str:
    """Wait until the card has been replaced by the result and its image has loaded: the image URL."""
    card = page.locator("#generation-card")
    await expect(card).to_have_attribute("data-status", "succeeded", timeout=20_000)
    await expect(card).to_have_attribute("data-terminal", "true")
    await page.wait_for_function(
        "() => { const i = document.querySelector('#generation-card img.result');"
        " return !!i && i.complete && i.naturalWidth > 0; }",
        timeout=15_000,
    )
    src = await page.locator("#generation-card img.result").first.get_attribute("src")
    assert src
    return src


async def card_cost(page: Page) -> Decimal:
    """The exact cost printed on a finished generation card."""
    return await usd(page.locator("#generation-card"))


async def run_to_result(page: Page, tool: str, prompt: str) -> tuple[str, Decimal]:
    """Run a tool to its result image: (generation id, cost shown on the card)."""
    gid = await start_tool(page, tool, prompt)
    await wait_for_result_image(page)
    return gid, await card_cost(page)


def noema_bin() -> str:
    """The ``noema`` script of this virtualenv."""
    beside = Path(sys.executable).parent / "noema"
    return str(beside) if beside.exists() else "noema"


async def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run the ``noema`` command with the server's environment: its stdout (exit 0 asserted)."""
    done = await asyncio.to_thread(run_noema, *args, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout
