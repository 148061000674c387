"""The web page over HTTP: sign-in rules, cookie flags, CSRF, and errors as pages (the browser suite drives the rest)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from noema.bootstrap import build_container
from noema.entrypoints.http.app import create_app
from tests.conftest import make_settings, running_app


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
