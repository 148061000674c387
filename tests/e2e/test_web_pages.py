"""The web page over HTTP: sign-in rules, cookie flags, CSRF, and errors as pages (the browser suite drives the rest)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from noema.bootstrap import Container, build_container
from noema.entrypoints.http.app import create_app
from tests.conftest import make_settings, running_app
from tests.fakes.clock import FakeClock


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def _first_run(client: httpx.AsyncClient) -> httpx.Response:
    page = await client.get("/")
    return await client.post("/signin/sandbox", data={"csrf": _csrf(page.text)})


async def test_the_sandbox_first_run_signs_in_with_a_secure_cookie(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_, client):
        r = await _first_run(client)
        assert (r.status_code, r.headers["location"]) == (303, "/app")
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("noema_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # http://noema.test
        tools = await client.get("/app")
        assert tools.status_code == 200 and "Estimated cost" in tools.text and "$0.50" in tools.text
        assert "Sandbox backend" in tools.text


async def test_pages_need_a_session_and_forms_need_their_csrf_token(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_, client):
        assert (await client.get("/app")).headers["location"] == "/"
        assert (await client.post("/signin/sandbox", data={"csrf": "forged"})).status_code == 403
        await _first_run(client)
        r = await client.post("/app/run", data={"tool": "txt2img", "input_text": "no token"})
        assert r.status_code == 403 and "text/html" in r.headers["content-type"] and "expired" in r.text
        history = await client.get("/app/history")
        assert "Nothing yet" in history.text
        missing = await client.get("/app/nowhere")
        assert missing.status_code == 404 and "<html" in missing.text


async def test_a_wrong_api_key_is_refused_on_the_sign_in_page(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_, client):
        page = await client.get("/")
        r = await client.post("/signin", data={"api_key": "nk_wrong", "csrf": _csrf(page.text)})
        assert r.status_code == 401 and "not valid" in r.text and "noema_session" not in r.headers.get("set-cookie", "")


async def test_there_is_no_free_credit_with_a_real_backend(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        db_url,
        backend="comfydeploy",
        comfydeploy_api_key="k" * 20,
        comfydeploy_base_url="http://127.0.0.1:9/api",
        public_url="https://noema.example",
    )
    app = create_app(build_container(settings))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://noema.example") as client:
            page = await client.get("/")
            assert "try-sandbox" not in page.text and "Sandbox backend" not in page.text
            assert "Secure" in page.headers["set-cookie"]  # https: every cookie is Secure
            r = await client.post("/signin/sandbox", data={"csrf": _csrf(page.text)})
            assert r.status_code == 403 and "noema_session" not in r.headers.get("set-cookie", "")


def _assert_security_headers(r: httpx.Response) -> str:
    """The headers every response carries; returns its Content-Security-Policy."""
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    assert r.headers.get("x-content-type-options") == "nosniff", where
    assert r.headers.get("referrer-policy") == "no-referrer", where
    assert r.headers.get("x-frame-options") == "DENY", where
    policy: str = r.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, where
    assert "unsafe-inline" not in policy.split("style-src")[0], where  # never for scripts
    return policy


async def test_run_again_fills_the_form_with_the_earlier_runs_prompt_and_seed(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_, client):
        await _first_run(client)
        page = await client.get("/app?tool=txt2img")
        form = {"csrf": _csrf(page.text), "tool": "txt2img", "input_text": "a red fox at dawn", "input_seed": "4242"}
        ran = await client.post("/app/run", data=form)
        gid = ran.headers["location"].rsplit("/", 1)[-1]
        again = await client.get(f"/app?tool=txt2img&rerun={gid}")
        assert again.status_code == 200
        assert ">a red fox at dawn</textarea>" in again.text and 'name="input_seed" type="number"' in again.text
        assert re.search(r'name="input_seed"[^>]*value="4242"', again.text)
        fresh = await client.get("/app?tool=txt2img")
        assert "a red fox at dawn" not in fresh.text and not re.search(
            r'name="input_seed"[^>]*value="4242"', fresh.text
        )


async def test_every_response_carries_the_security_headers(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_, client):
        signed_out = await client.get("/")
        await _first_run(client)
        responses = [
            signed_out,
            await client.get("/app"),
            await client.get("/app/history"),
            await client.get("/app/account"),
            await client.get("/app/nowhere"),
            await client.get("/static/app.js"),
            await client.get("/healthz"),
            await client.get("/api/v1/me/status"),
            await client.post("/internal/v1/data/users/find-or-create", content=b"x" * 2_000_000),
            await client.get("/sandbox/"),
            await client.get("/sandbox/files/nothing.png"),
            await client.get("/api/webhook/comfydeploy"),
        ]
        for r in responses:
            policy = _assert_security_headers(r)
            assert policy.startswith("default-src 'self'") and "script-src" not in policy
        assert {r.status_code for r in responses} >= {200, 401, 404, 405, 413}
        assert "strict-transport-security" not in signed_out.headers  # http://noema.test


async def test_the_api_docs_allow_only_their_cdn_and_their_own_inline_script(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_, client):
        for url in ("/api/v1/docs", "/sandbox/docs"):
            r = await client.get(url)
            assert r.status_code == 200 and "swagger-ui" in r.text
            policy = _assert_security_headers(r)
            script_src = next(p for p in policy.split("; ") if p.startswith("script-src"))
            inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
            assert inline, "the docs page starts Swagger UI inline"
            hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in inline]
            assert script_src.split()[1:] == ["https://cdn.jsdelivr.net", *hashes]
            assert "default-src 'none'" in policy


async def test_https_adds_strict_transport_security_and_secure_cookies(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, public_url="https://noema.example") as (_, client):
        page = await client.get("/")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        cookies = page.headers.get_list("set-cookie")
        assert cookies and all("; secure" in c.lower() for c in cookies)


async def _sandbox_sign_in_from(app: FastAPI, host: str) -> httpx.Response:
    """A fresh browser at ``host`` presses "Try the sandbox"."""
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://noema.test") as browser:
        return await _first_run(browser)


async def _account_count(app: FastAPI) -> int:
    c: Container = app.state.container
    async with c.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one())


async def test_the_sandbox_first_run_is_throttled_per_client_address(app: FastAPI, clock: FakeClock) -> None:
    for _ in range(3):
        assert (await _sandbox_sign_in_from(app, "198.51.100.4")).status_code == 303
    accounts = await _account_count(app)
    refused = await _sandbox_sign_in_from(app, "198.51.100.4")
    assert refused.status_code == 429 and "text/html" in refused.headers["content-type"]
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert "Too many sandbox accounts" in refused.text and "noema_session" not in refused.headers.get("set-cookie", "")
    assert await _account_count(app) == accounts  # nothing was created
    # Another address is not held back, and the first one may come back after the hour.
    assert (await _sandbox_sign_in_from(app, "198.51.100.5")).status_code == 303
    clock.advance(hours=1, seconds=1)
    assert (await _sandbox_sign_in_from(app, "198.51.100.4")).status_code == 303
