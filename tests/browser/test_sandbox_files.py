"""A stored page on Noema's origin must not run in a signed-in user's browser (attacker review 1(a)).

The attack: store ``evil.html`` (or an SVG) through the sandbox mounted at ``/sandbox``, send a signed-in
user to it; its script reads ``/app/account`` for the CSRF token and mints itself an API key.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Download, Page, expect
from playwright.async_api import Error as PlaywrightError

from tests.browser.conftest import NoemaServer
from tests.browser.helpers import shot, sign_in_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

#: What the attacker's file runs: take the CSRF token from the account page and create a key with it.
STEAL = """
(async () => {
  const account = await (await fetch('/app/account')).text();
  const csrf = account.match(/name="csrf" value="([^"]+)"/)[1];
  const made = await fetch('/app/keys', {method: 'POST', body: new URLSearchParams({csrf, name: 'stolen'})});
  const key = (await made.text()).match(/nk_[A-Za-z0-9_-]+/);
  document.title = 'stolen ' + (key ? key[0] : 'nothing');
})();
"""
PAGES = {
    "evil.html": f"<!doctype html><title>hello</title><script>{STEAL}</script>",
    "evil.svg": f'<svg xmlns="http://www.w3.org/2000/svg"><script><![CDATA[{STEAL}]]></script></svg>',
}


def _plant(server: NoemaServer, name: str, text: str) -> str:
    """A file as the sandbox would have stored it from an upload: its URL on Noema's origin."""
    folder = f"uploads/{uuid.uuid4()}"
    path = Path(server.cwd) / "sandbox" / "files" / folder / name
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return f"/sandbox/files/{folder}/{name}"


async def test_a_signed_in_user_sent_to_an_uploaded_page_or_svg_runs_nothing_and_keeps_no_new_key(
    page: Page, noema_server: NoemaServer
) -> None:
    await sign_in_sandbox(page)
    downloads: list[Download] = []
    page.on("download", lambda download: downloads.append(download))

    # The attacker cannot store the page at all: the sandbox API wants its own key.
    async with httpx.AsyncClient(base_url=noema_server.url, timeout=30) as attacker:
        for token in ("sandbox", "anything"):
            stored = await attacker.post(
                "/sandbox/api/file/upload",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("evil.html", PAGES["evil.html"].encode(), "application/octet-stream")},
            )
            assert stored.status_code == 401, stored.text

        # And a file stored under such a name anyway is a download that the browser never renders.
        for name, text in PAGES.items():
            url = _plant(noema_server, name, text)
            served = await attacker.get(url)
            assert served.headers["content-disposition"].startswith("attachment"), name
            assert served.headers["x-content-type-options"] == "nosniff"
            with contextlib.suppress(PlaywrightError):  # "Download is starting": no page was rendered
                await page.goto(url)
            await page.wait_for_timeout(1500)  # time for a script, had one run, to mint its key
            assert not (await page.title()).startswith("stolen"), name

    await page.goto("/app/account")
    await expect(page.locator("table.keys tbody")).to_contain_text("No keys yet.")
    assert "stolen" not in await page.content()
    assert sorted(d.suggested_filename for d in downloads) == ["evil.html", "evil.svg"]
    await shot(page, "sandbox-files-no-key-minted")
