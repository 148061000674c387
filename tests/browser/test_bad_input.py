"""Bad input on the web page: refused in the browser where it can be, always by the server, nothing created."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Request, expect

from tests.browser.conftest import NoemaServer
from tests.browser.helpers import INTERNAL, new_account, shot, sign_in_link, sign_in_sandbox, usd

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]
MAX_UPLOAD = 20 * 1024 * 1024


def _runs(page: Page) -> list[Request]:
    """Every POST to /app/run this page makes from now on."""
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/app/run") else None)
    return posts


async def _session(context: BrowserContext, page: Page) -> tuple[dict[str, str], str]:
    """The browser's session cookie and the session's CSRF token, for requests made outside the browser."""
    cookies = {c["name"]: c["value"] for c in await context.cookies() if c["name"] == "noema_session"}
    assert cookies, "not signed in"
    token = await page.locator("#tool-form input[name=csrf]").input_value()
    return cookies, token


async def _generations(api: httpx.AsyncClient, account_id: str) -> list[dict[str, object]]:
    r = await api.get(f"{INTERNAL}/users/{account_id}/generations")
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


async def test_a_missing_required_prompt_is_refused_by_the_server_with_an_error_naming_the_input(
    page: Page, api: httpx.AsyncClient
) -> None:
    account_id = await new_account(api, usd_credit="0.50")
    await page.goto(await sign_in_link(api, account_id))
    await page.goto("/app?tool=txt2img")
    prompt = page.locator("#in-input_text")
    await expect(prompt).to_have_attribute("required", "")
    # The browser would stop an empty required field itself; take that away so the server is what refuses.
    await prompt.evaluate("el => { el.removeAttribute('required'); el.value = ''; }")
    async with page.expect_response(lambda r: r.url.endswith("/app/run")) as posted:
        await page.click("#run")
    assert (await posted.value).status == 400
    await expect(page).to_have_url(re.compile(r"/app/run$"))
    error = page.locator("#err-input_text[role=alert]")
    await expect(error).to_be_visible()
    await expect(error).to_have_text("Prompt is required.")
    await expect(page.locator("#tool-form input[name=tool]")).to_have_value("txt2img")  # the form is back
    await shot(page, "10-missing-prompt")
    assert await _generations(api, account_id) == []
    await expect(page.locator(".balance")).to_have_text("$0.50")


async def test_a_text_file_named_png_is_refused_with_an_error_and_nothing_runs(
    page: Page, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    account_id = await new_account(api, usd_credit="0.50")
    await page.goto(await sign_in_link(api, account_id))
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture\n" * 20)
    await page.goto("/app?tool=img2img")
    await page.locator("#in-input_image").set_input_files(fake)
    async with page.expect_response(lambda r: r.url.endswith("/app/run")) as posted:
        await page.click("#run")
    assert (await posted.value).status == 400
    error = page.locator("#err-input_image[role=alert]")
    await expect(error).to_contain_text("not an image")
    await expect(error).to_contain_text("Image")  # names the input
    await shot(page, "10-not-an-image")
    assert await _generations(api, account_id) == []


async def test_an_oversize_upload_is_stopped_in_the_browser_and_refused_by_the_server(
    page: Page, context: BrowserContext, api: httpx.AsyncClient, noema_server: NoemaServer, tmp_path: Path
) -> None:
    account_id = await new_account(api, usd_credit="0.50")
    await page.goto(await sign_in_link(api, account_id))
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD + 1024))
    await page.goto("/app?tool=img2img")
    posts = _runs(page)
    file_input = page.locator("#in-input_image")
    await file_input.set_input_files(big)
    assert await file_input.evaluate("el => el.validationMessage") == "This file is larger than 20 MB."
    assert not await file_input.evaluate("el => el.validity.valid")
    await expect(page.locator("#preview-input_image")).to_be_hidden()
    await page.click("#run")
    await page.wait_for_timeout(500)
    assert posts == [] and page.url.endswith("/app?tool=img2img")  # the browser never sent it
    await shot(page, "10-oversize-upload")

    # Sent anyway (as a script would), the server refuses it: over 20 MB for the input (400), and a body
    # over the upload limit outright (413). Neither creates a generation.
    cookies, token = await _session(context, page)
    async with httpx.AsyncClient(base_url=noema_server.url, cookies=cookies, timeout=60) as client:
        form = {"csrf": token, "tool": "img2img", "input_text": "x"}
        r = await client.post("/app/run", data=form, files={"input_image": ("huge.png", big.read_bytes(), "image/png")})
        assert r.status_code == 400, r.text[:500]
        assert "larger than 20 MB" in r.text
        r = await client.post(
            "/app/run", data=form, files={"input_image": ("huger.png", bytes(31_000_000), "image/png")}
        )
        assert r.status_code == 413, r.text[:500]
        r = await client.post(
            "/app/run", data=form, files={"input_image": ("notes.png", b"not an image at all", "image/png")}
        )
        assert r.status_code == 400 and "not an image" in r.text
    assert await _generations(api, account_id) == []


async def test_forms_without_the_csrf_token_are_refused_with_403_and_create_nothing(
    page: Page, context: BrowserContext, api: httpx.AsyncClient, noema_server: NoemaServer
) -> None:
    account_id = await new_account(api, usd_credit="0.50")
    await page.goto(await sign_in_link(api, account_id))
    await page.goto("/app?tool=txt2img")
    cookies, token = await _session(context, page)
    async with httpx.AsyncClient(base_url=noema_server.url, cookies=cookies, timeout=30) as client:
        # The session is good: the same cookie reads the page.
        assert (await client.get("/app")).status_code == 200
        run = {"tool": "txt2img", "input_text": "a forged request"}
        for bad in ({}, {"csrf": ""}, {"csrf": token[:-2] + "xx"}):
            r = await client.post("/app/run", data={**run, **bad}, files={"unused": ("a.txt", b"a", "text/plain")})
            assert r.status_code == 403, (bad, r.status_code, r.text[:300])
        r = await client.post("/app/keys", data={"name": "forged"})
        assert r.status_code == 403, r.text[:300]
        r = await client.post("/app/link/code", data={})
        assert r.status_code == 403, r.text[:300]
        r = await client.post("/signout", data={})
        assert r.status_code == 403, r.text[:300]
        # Nothing was created: no generation, no key, no link code; the session still works.
        assert await _generations(api, account_id) == []
        await page.goto("/app/account")
        await expect(page.locator("tr[data-prefix]")).to_have_count(0)
        await expect(page.locator(".balance")).to_have_text("$0.50")
        events = (await api.get(f"{INTERNAL}/users/{account_id}/events")).json()["items"]
        assert {e["eventType"] for e in events} <= {"account_created", "credits_added"}, events
        # With the token the very same request goes through: the token is all that was missing.
        r = await client.post("/app/run", data={**run, "csrf": token}, files={"unused": ("a.txt", b"a", "text/plain")})
        assert r.status_code == 303 and "/app/generations/" in r.headers["location"], r.text[:300]
    generations = await _generations(api, account_id)
    assert [g["id"] for g in generations] == [r.headers["location"].rsplit("/", 1)[1]], generations

    # Before signing in, the sign-in forms check the double-submit cookie.
    async with httpx.AsyncClient(base_url=noema_server.url, timeout=30) as stranger:
        r = await stranger.post("/signin/sandbox", data={"csrf": "made-up"})
        assert r.status_code == 403 and "noema_session" not in r.cookies
        r = await stranger.post("/signin", data={"api_key": "nk_whatever", "csrf": "made-up"})
        assert r.status_code == 403 and "noema_session" not in r.cookies


async def test_a_sandbox_sign_in_without_the_csrf_token_creates_no_account(page: Page, context: BrowserContext) -> None:
    await page.goto("/")
    await page.locator("form[action='/signin/sandbox'] input[name=csrf]").evaluate("el => el.remove()")
    async with page.expect_response(lambda r: r.url.endswith("/signin/sandbox")) as posted:
        await page.click("#try-sandbox")
    assert (await posted.value).status == 403
    await expect(page.locator("p.error[role=alert]")).to_be_visible()
    assert not any(c["name"] == "noema_session" for c in await context.cookies())
    await shot(page, "10-signin-csrf-missing")
    # Reloaded, the page works again.
    await sign_in_sandbox(page)
    assert await usd(page.locator(".estimate")) > Decimal(0)
