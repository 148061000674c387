"""Browser tests: the real ``noema serve`` in a subprocess over SQLite, driven by Debian's Chromium.

One server and one browser per test process (per xdist worker); every test gets a fresh browser
context (no cookies) and, through the internal API, accounts of its own, so tests do not depend on
each other's order. Screenshots go to ``test-output/screenshots/`` (git-ignored); a failing test
also leaves ``FAILED-<test>.png`` there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.browser.helpers import SCREENSHOTS, noema_bin
from tests.conftest import ADMIN_KEY, run_sync
from tests.fakes.stripe_api import SECRET_KEY as STRIPE_SECRET_KEY
from tests.fakes.stripe_api import WEBHOOK_SECRET as STRIPE_WEBHOOK_SECRET
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.telegram_api import FakeTelegram

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: How long a sandbox run takes: long enough to see progress and to cancel a run, short enough to be quick.
RUN_SECONDS = 3


@dataclass(frozen=True)
class NoemaServer:
    """A running ``noema serve``: where it listens and the environment to run the CLI against it."""

    url: str
    env: dict[str, str]
    log: Path
    cwd: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegram]:
    """The fake Bot API server (its own thread) that the served Noema polls, so chats can hand out link codes."""
    fake = FakeTelegram()
    run_sync(fake.serve())
    try:
        yield fake
    finally:
        run_sync(fake.stop())


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[FakeStripe]:
    """The fake Stripe API (its own thread): Checkout pages and the webhooks it sends to the served Noema."""
    fake = FakeStripe()
    run_sync(fake.start())
    try:
        yield fake
    finally:
        run_sync(fake.stop())


@pytest.fixture(scope="session")
def noema_server(
    tmp_path_factory: pytest.TempPathFactory, fake_telegram: FakeTelegram, fake_stripe: FakeStripe
) -> Iterator[NoemaServer]:
    """``noema serve`` with the embedded sandbox over a SQLite file and Telegram polling the fake, ready."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    root = tmp_path_factory.mktemp("noema-browser")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOEMA_")}
    env.update(
        {
            "NOEMA_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'noema.db'}",
            "NOEMA_PUBLIC_URL": url,
            "NOEMA_SANDBOX_DATA_DIR": str(root / "sandbox"),
            "NOEMA_SANDBOX_RUN_SECONDS": str(RUN_SECONDS),
            "NOEMA_INTERNAL_API_KEYS": f"admin:{ADMIN_KEY}",
            "NOEMA_MAX_RUNS_PER_MINUTE": "1000",
            # Every test signs in to the sandbox from 127.0.0.1; the per-address limit is tested in e2e.
            "NOEMA_SANDBOX_SIGNUPS_PER_HOUR": "1000",
            "NOEMA_TELEGRAM_BOT_TOKEN": fake_telegram.token,
            "NOEMA_TELEGRAM_API_BASE_URL": fake_telegram.url,
            "NOEMA_TELEGRAM_MODE": "polling",
            "NOEMA_STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
            "NOEMA_STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "NOEMA_STRIPE_API_BASE": fake_stripe.url,
            "COLUMNS": "200",
        }
    )
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [noema_bin(), "serve", "--port", str(port)], env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"noema serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"noema serve was not ready within 60 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        fake_stripe.webhook_url = f"{url}/api/webhook/stripe"
        yield NoemaServer(url=url, env=env, log=log, cwd=root)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    # Whatever the browser did, the server must not have crashed on it.
    crashes = [line for line in log.read_text().splitlines() if "Traceback" in line or "[error" in line]
    if crashes:
        pytest.fail(f"noema serve logged errors (see {log}):\n" + "\n".join(crashes[:20]))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(noema_server: NoemaServer) -> AsyncIterator[Browser]:
    """Debian's headless Chromium (Playwright never downloads a browser here)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser, noema_server: NoemaServer) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) pointed at the server."""
    ctx = await browser.new_context(base_url=noema_server.url, viewport={"width": 1100, "height": 900})
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A tab in the fresh context; a screenshot of it is kept when the test fails.

    A script error on the page (an uncaught exception or a console error other than the browser's own
    note about an HTTP error status, which the bad-input tests cause on purpose) fails the test.
    """
    tab = await context.new_page()
    script_errors: list[str] = []
    tab.on("pageerror", lambda exc: script_errors.append(f"uncaught: {exc}"))
    tab.on(
        "console",
        lambda m: (
            script_errors.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and not tab.is_closed():
        await tab.screenshot(path=SCREENSHOTS / f"FAILED-{request.node.name}.png", full_page=True)
    elif report is not None and report.passed and script_errors:
        pytest.fail(f"script errors on the page: {script_errors}")


@pytest_asyncio.fixture(loop_scope="session")
async def api(noema_server: NoemaServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the server with the admin internal key (the operator's side of the tests)."""
    async with httpx.AsyncClient(
        base_url=noema_server.url, headers={"X-Internal-Client-Key": ADMIN_KEY}, timeout=30
    ) as client:
        yield client
