"""Account linking through the real HTTP app: who may issue codes, wrong-code throttling, and proof from both sides."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.services import accounts, economy
from tests.conftest import ADMIN, PLATFORM
from tests.fakes.clock import FakeClock

INTERNAL = "/internal/v1/data"
WRONG = ["AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "EEEE-EEEE", "FFFF-FFFF"]


async def _account(client: httpx.AsyncClient, platform: str, usd: str | None = None) -> str:
    found = await client.post(
        f"{INTERNAL}/users/find-or-create", headers=ADMIN, json={"platform": platform, "platformId": uuid.uuid4().hex}
    )
    assert found.status_code == 201, found.text
    aid: str = found.json()["masterAccountId"]
    if usd is not None:
        r = await client.post(f"{INTERNAL}/users/{aid}/economy/credit", headers=ADMIN, json={"amountUsd": usd})
        assert r.status_code == 201, r.text
    return aid


async def _code(client: httpx.AsyncClient, aid: str, headers: dict[str, str], **body: str) -> httpx.Response:
    return await client.post(f"{INTERNAL}/users/{aid}/link-codes", headers=headers, json=body)


@asynccontextmanager
async def _signed_in(app: FastAPI, client: httpx.AsyncClient, aid: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser signed in to ``aid`` (through an admin sign-in link) and its CSRF token."""
    link = await _code(client, aid, ADMIN, purpose="sign_in")
    assert link.status_code == 201, link.text
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://noema.test") as browser:
        r = await browser.get(link.json()["signInUrl"].removeprefix("http://noema.test"))
        assert r.status_code == 303, r.text
        page = await browser.get("/app/account")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        yield browser, csrf.group(1)


async def _usd(app: FastAPI, aid: str) -> Decimal:
    c: Container = app.state.container
    return Decimal((await economy.wallet(c.uow(), aid)).balance_nanos) / 10**9


async def test_a_platform_client_may_not_issue_codes_or_sign_in_links_for_an_account_off_its_platform(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    web = await _account(client, "web", usd="3")
    discord = await _account(client, "discord")
    telegram = await _account(client, "telegram")
    for aid in (web, discord):
        for purpose in ("link", "sign_in"):
            r = await _code(client, aid, PLATFORM, purpose=purpose)
            assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", r.text
    sign_in = await _code(client, telegram, PLATFORM, purpose="sign_in")  # a sign-in link is the whole account
    assert sign_in.status_code == 403, sign_in.text
    other_platform = await _code(client, telegram, PLATFORM, purpose="link", platform="discord")
    assert other_platform.status_code == 403, other_platform.text
    assert (await _code(client, telegram, PLATFORM, purpose="link")).status_code == 201
    assert (await _code(client, web, ADMIN, purpose="sign_in")).status_code == 201


async def test_the_sixth_wrong_code_gets_429_and_even_the_right_code_waits_for_the_window(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    chat = await _account(client, "telegram", usd="2")
    web = await _account(client, "web", usd="1")
    code = (await _code(client, chat, ADMIN, purpose="link")).json()["code"]
    async with _signed_in(app, client, web) as (browser, csrf):
        for wrong in WRONG[:5]:
            r = await browser.post("/app/link", data={"csrf": csrf, "code": wrong})
            assert r.status_code == 400 and "not valid" in r.text, r.status_code
        sixth = await browser.post("/app/link", data={"csrf": csrf, "code": WRONG[5]})
        assert sixth.status_code == 429 and int(sixth.headers["Retry-After"]) > 0, sixth.status_code
        right = await browser.post("/app/link", data={"csrf": csrf, "code": code})
        assert right.status_code == 429 and "Too many wrong" in right.text, right.status_code
        assert (await _usd(app, web), await _usd(app, chat)) == (Decimal(1), Decimal(2))
        clock.advance(minutes=9, seconds=59)  # the code still lives; the guesses still count
        assert (await browser.post("/app/link", data={"csrf": csrf, "code": code})).status_code == 429
        clock.advance(seconds=2)  # the window has passed, and with it the code's ten minutes: a fresh one links
        fresh = (await _code(client, chat, ADMIN, purpose="link")).json()["code"]
        linked = await browser.post("/app/link", data={"csrf": csrf, "code": fresh})
        assert linked.status_code == 200 and "Linked" in linked.text, linked.text[:300]
    assert await _usd(app, chat) == 3


async def test_thirty_wrong_codes_sent_at_once_are_counted_one_after_another_and_only_five_are_tried(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    web = await _account(client, "web", usd="1")
    async with _signed_in(app, client, web) as (browser, csrf):
        letters = "ABCDEFGH"
        guesses = [f"ABCD-AA{letters[i // 8]}{letters[i % 8]}" for i in range(30)]  # well formed, all wrong
        answers = await asyncio.gather(
            *(browser.post("/app/link", data={"csrf": csrf, "code": code}) for code in guesses)
        )
    codes = sorted(r.status_code for r in answers)
    # Concurrent guesses must not all read "no failures yet": exactly five are tried, the rest wait.
    assert codes == [400] * 5 + [429] * 25, codes
    c: Container = app.state.container
    async with c.uow() as uow:
        recent = await uow.link_codes.failures_since(c.clock.now() - timedelta(minutes=10), account_id=web)
    assert len(recent) == 5


async def test_a_merge_without_the_issuers_own_proof_is_refused_and_moves_no_money(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    victim = await _account(client, "telegram", usd="5")
    attacker = await _account(client, "web", usd="1")
    code = await _code(client, victim, PLATFORM, purpose="link")  # the platform client, not the victim, asked
    assert code.status_code == 201, code.text
    async with _signed_in(app, client, attacker) as (browser, csrf):
        r = await browser.post("/app/link", data={"csrf": csrf, "code": code.json()["code"]})
        assert r.status_code == 403 and "/link in that chat" in r.text, r.status_code
    assert (await _usd(app, victim), await _usd(app, attacker)) == (Decimal(5), Decimal(1))
    c: Container = app.state.container
    assert len((await accounts.get(c.uow(), victim)).identities) == 1
    assert len((await accounts.get(c.uow(), attacker)).identities) == 1


async def test_a_platform_clients_code_for_a_new_chat_user_still_brings_the_web_account_in(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    newcomer = await _account(client, "telegram")
    web = await _account(client, "web", usd="1")
    code = await _code(client, newcomer, PLATFORM, purpose="link")
    async with _signed_in(app, client, web) as (browser, csrf):
        r = await browser.post("/app/link", data={"csrf": csrf, "code": code.json()["code"]})
        assert r.status_code == 200 and "Linked" in r.text, r.text[:300]
    assert await _usd(app, newcomer) == 1
