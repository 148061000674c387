"""The sandbox mounted at ``/sandbox`` on Noema's own origin: closed to visitors, harmless to browsers.

A visitor must not be able to use it to store a page that runs on Noema's origin, to read a run's
webhook token, or to make Noema's process talk to other hosts (attacker review, issue 12).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from fastapi import FastAPI
from PIL import Image

from noema.bootstrap import Container
from tests.conftest import funded_key, running_app, wait_terminal


def _key(app: FastAPI) -> str:
    c: Container = app.state.container
    assert c.sandbox is not None
    return c.sandbox.config.api_key


def _png_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 10)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def test_a_visitor_with_any_token_is_refused_by_the_mounted_sandbox_api(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        key = _key(app)
        assert key and key != "sandbox"
        page = b"<script>fetch('/app/account')</script>"
        for token in ("sandbox", "anything", "nk_not-the-key"):
            headers = {"Authorization": f"Bearer {token}"}
            stored = await client.post(
                "/sandbox/api/file/upload",
                files={"file": ("evil.html", page, "application/octet-stream")},
                headers=headers,
            )
            assert stored.status_code == 401, stored.text
            assert (await client.get("/sandbox/api/deployments", headers=headers)).status_code == 401
        # Noema itself still talks to it: the catalog comes from the sandbox.
        _, auth = await funded_key(app, "1")
        tools = (await client.get("/api/v1/tools", headers=auth)).json()
        assert any(t["command"] == "txt2img" and t["enabled"] for t in tools)


async def test_a_run_read_with_the_key_shows_no_webhook_and_the_webhook_still_finishes_the_run(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        r = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "a fox"}}
        )
        assert r.status_code == 202, r.text
        # No reconciler runs here and polling is a minute away: only the webhook can end it this soon.
        body = await wait_terminal(client, r.json()["id"], auth, seconds=15)
        assert body["status"] == "succeeded", body
        run = await client.get(f"/sandbox/api/run/{body['runId']}", headers={"Authorization": f"Bearer {_key(app)}"})
        assert run.status_code == 200
        assert "webhook" not in run.json()
        assert "/api/webhook/" not in run.text and "token" not in run.text.lower()


async def test_an_svg_given_as_a_data_uri_is_stored_but_only_ever_served_as_a_download(
    db_url: str, tmp_path: Path
) -> None:
    svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'><script>alert(2)</script></svg>"
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        r = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "upscale", "inputs": {"input_image": uri}}
        )
        assert r.status_code == 202, r.text
        body = await wait_terminal(client, r.json()["id"], auth, application=app)
        stored_url = body["inputs"]["input_image"]
        assert stored_url.startswith("http://noema.test/sandbox/files/"), stored_url
        served = await client.get(stored_url.removeprefix("http://noema.test"))
        assert served.status_code == 200 and served.content == svg
        assert "svg" not in served.headers["content-type"] and "html" not in served.headers["content-type"]
        assert served.headers["content-disposition"].startswith("attachment")
        assert served.headers["x-content-type-options"] == "nosniff"


async def test_an_input_image_url_of_another_host_fails_the_run_uncharged_and_uploads_still_work(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        r = await client.post(
            "/api/v1/generations",
            headers=auth,
            json={"toolId": "upscale", "inputs": {"input_image": "https://example.com/cat.png"}},
        )
        assert r.status_code == 202, r.text
        body = await wait_terminal(client, r.json()["id"], auth, application=app)
        assert body["status"] == "failed", body
        assert "upload" in str(body["failureReason"]), body
        assert body["costUsd"] in (None, "0", "0.000000000"), body
        # The same tool with the image itself (Noema uploads it to the sandbox) works.
        r = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "upscale", "inputs": {"input_image": _png_uri()}}
        )
        assert (await wait_terminal(client, r.json()["id"], auth, application=app))["status"] == "succeeded"
