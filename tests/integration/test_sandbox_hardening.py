"""The sandbox's API is closed to strangers.

A key, no webhook in run reads, no fetching of foreign hosts, capped uploads, and files that a browser
can never run as a page.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from noema.adapters.backends.sandbox import DEPLOYMENT_IDS, SandboxConfig, SandboxServer
from tests.integration.test_sandbox_server import (
    AUTH,
    BASE_URL,
    RUN_SECONDS,
    TERMINAL,
    Recorder,
    Sandbox,
    open_sandbox,
    png_bytes,
    upload,
)

MIB = 1024 * 1024


@dataclass
class Listener:
    """A TCP server on 127.0.0.1 that counts connections and answers each with a small PNG."""

    port: int = 0
    connections: list[bytes] = field(default_factory=list)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read(4096)
        self.connections.append(request)
        body = png_bytes((8, 8), (0, 0, 0))
        head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()


@asynccontextmanager
async def listening() -> AsyncIterator[Listener]:
    listener = Listener()
    server = await asyncio.start_server(listener._serve, "127.0.0.1", 0)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with open_sandbox(tmp_path, Recorder()) as opened:
        yield opened


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def networked_sandbox(data_dir: Path) -> AsyncIterator[tuple[SandboxServer, httpx.AsyncClient]]:
    """A sandbox whose outgoing client reaches the real network (as ``noema sandbox`` does)."""
    config = SandboxConfig(public_base_url=BASE_URL, data_dir=data_dir, run_seconds=RUN_SECONDS, api_key="k-123")
    async with httpx.AsyncClient(timeout=5) as outgoing:
        server = SandboxServer(config, http_client=outgoing)
        await server.start()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=server.app),
                base_url=BASE_URL,
                headers={"Authorization": "Bearer k-123"},
            ) as client:
                yield server, client
        finally:
            await server.stop()


async def _finish(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            run: dict[str, Any] = (await client.get(f"/api/run/{run_id}")).json()
            if run["status"] in TERMINAL:
                return run
            await asyncio.sleep(0.02)


# --- (1) the key -------------------------------------------------------------------------------


async def test_without_a_configured_key_any_token_is_refused_and_a_random_key_is_made(tmp_path: Path) -> None:
    first = SandboxConfig(public_base_url=BASE_URL, data_dir=tmp_path)
    second = SandboxConfig(public_base_url=BASE_URL, data_dir=tmp_path)
    assert first.api_key and second.api_key and first.api_key != second.api_key
    assert len(first.api_key) >= 32
    async with httpx.AsyncClient() as outgoing:
        server = SandboxServer(first, http_client=outgoing)
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            for token in ("anything", "sandbox", second.api_key):
                refused = await client.get("/api/machines", headers={"Authorization": f"Bearer {token}"})
                assert refused.status_code == 401, token
                files = {"file": ("evil.png", b"\x89PNG", "image/png")}
                upload_refused = await client.post(
                    "/api/file/upload", files=files, headers={"Authorization": f"Bearer {token}"}
                )
                assert upload_refused.status_code == 401
            allowed = await client.get("/api/machines", headers={"Authorization": f"Bearer {first.api_key}"})
    assert allowed.status_code == 200


async def test_the_home_page_no_longer_promises_that_any_token_works(sandbox: Sandbox) -> None:
    page = (await sandbox.client.get("/")).text
    assert "any bearer token" not in page
    assert "NOEMA_SANDBOX_API_KEY" in page


# --- (b) run reads never carry the webhook ------------------------------------------------------


async def test_a_run_read_has_no_webhook_field_and_never_shows_the_webhook_token(sandbox: Sandbox) -> None:
    secret = "per-generation-token-0123456789"
    hook = f"http://hooks/webhook?token={secret}"
    run_id = await sandbox.queue("txt2img", {"input_text": "a fox", "input_seed": 1}, webhook=hook)
    reads = [await sandbox.client.get(f"/api/run/{run_id}", headers=AUTH)]
    run = await sandbox.finish(run_id)
    reads.append(await sandbox.client.get(f"/api/run/{run_id}", headers=AUTH))
    assert run["status"] == "success"
    for read in reads:
        assert read.status_code == 200
        assert "webhook" not in read.json()
        assert secret not in read.text
    # The webhook itself still goes where it was asked to.
    assert sandbox.recorder.statuses(run_id)[-1] == "success"


# --- (c) no requests to foreign hosts ----------------------------------------------------------


async def test_an_input_image_on_a_local_port_fails_the_run_without_any_request_and_the_same_text(
    tmp_path: Path,
) -> None:
    async with listening() as listener, networked_sandbox(tmp_path) as (_server, client):
        references = [
            f"http://127.0.0.1:{listener.port}/x.png",
            f"http://127.0.0.1:{closed_port()}/x.png",
            "https://example.com/cat.png",
        ]
        runs = []
        for reference in references:
            body = {"deployment_id": DEPLOYMENT_IDS["img2img"], "inputs": {"input_image": reference}}
            queued = await client.post("/api/run/deployment/queue", json=body)
            assert queued.status_code == 200, queued.text
            runs.append(await _finish(client, queued.json()["run_id"]))
        await asyncio.sleep(0.1)
    assert listener.connections == []
    assert [run["status"] for run in runs] == ["failed"] * 3
    texts = {run["live_status"] for run in runs}
    assert len(texts) == 1, texts
    (text,) = texts
    assert "upload" in text and "data:" in text
    assert all(str(listener.port) not in run["live_status"] for run in runs)


async def test_a_webhook_to_a_foreign_host_is_refused_and_never_sent(tmp_path: Path) -> None:
    async with listening() as listener, networked_sandbox(tmp_path) as (_server, client):
        body = {
            "deployment_id": DEPLOYMENT_IDS["txt2img"],
            "inputs": {"input_text": "x"},
            "webhook": f"http://127.0.0.1:{listener.port}/hook",
        }
        queued = await client.post("/api/run/deployment/queue", json=body)
        await asyncio.sleep(RUN_SECONDS + 0.3)
    assert listener.connections == []
    assert queued.status_code == 400, queued.text
    assert "webhook" in queued.json()["detail"]


async def test_a_webhook_under_the_allowed_base_is_delivered_and_others_are_refused(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), webhook_base="http://hooks/webhook") as sandbox:
        good = await sandbox.queue("txt2img", {"input_text": "x"}, webhook="http://hooks/webhook?t=1")
        for foreign in (
            "http://hooks:81/webhook",
            "https://hooks/webhook",
            "http://hooks.evil/webhook",
            "http://user@hooks/webhook",
            "http://hooks/other",
            "http://hooks/webhook/../admin",
            "http://hooks/webhookx",
            "not a url",
        ):
            body = {"deployment_id": DEPLOYMENT_IDS["txt2img"], "inputs": {"input_text": "x"}, "webhook": foreign}
            refused = await sandbox.client.post("/api/run/deployment/queue", json=body, headers=AUTH)
            assert refused.status_code == 400, foreign
        await sandbox.finish(good)
    assert sandbox.recorder.statuses(good)[-1] == "success"


# --- (d) upload size --------------------------------------------------------------------------


async def test_uploads_are_capped_at_20_mib_by_default(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder()) as sandbox:
        too_big = await upload(sandbox, b"\0" * (20 * MIB + 1), "image/png", name="big.png")
        just_fits = await upload(sandbox, b"\0" * (20 * MIB), "image/png", name="fits.png")
    assert too_big.status_code == 413
    assert "20 MB" in too_big.json()["detail"]
    assert just_fits.status_code == 200


# --- (a) files a browser will not run -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "body"),
    [
        ("evil.html", "application/octet-stream", b"<script>alert(1)</script>"),
        ("evil.htm", "application/octet-stream", b"<script>alert(1)</script>"),
        ("evil.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
        ("evil.xhtml", "application/xhtml+xml", b"<html xmlns='http://www.w3.org/1999/xhtml'></html>"),
        ("evil", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ("evil.js", "application/javascript", b"alert(1)"),
        ("evil.pdf", "application/pdf", b"%PDF-1.4"),
    ],
)
async def test_uploaded_files_outside_the_allow_list_are_served_as_attachments(
    sandbox: Sandbox, name: str, content_type: str, body: bytes
) -> None:
    stored = await upload(sandbox, body, content_type, name=name)
    assert stored.status_code == 200, stored.text
    served = await sandbox.client.get(stored.json()["file_url"])
    assert served.status_code == 200
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == body


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.gif", "image/gif"),
        ("a.mp4", "video/mp4"),
        ("a.webm", "video/webm"),
        ("A.PNG", "image/png"),
    ],
)
async def test_allowed_media_are_served_inline_with_nosniff(sandbox: Sandbox, name: str, media_type: str) -> None:
    stored = await upload(sandbox, png_bytes((4, 4), (1, 2, 3)), media_type, name=name)
    served = await sandbox.client.get(stored.json()["file_url"])
    assert served.headers["content-type"] == media_type
    assert "attachment" not in served.headers.get("content-disposition", "")
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_a_text_output_is_plain_text_with_nosniff(sandbox: Sandbox) -> None:
    path = sandbox.server.files.root / "outputs" / "r1" / "caption.txt"
    path.parent.mkdir(parents=True)
    path.write_text("<script>alert(1)</script>")
    served = await sandbox.client.get(f"{BASE_URL}/files/outputs/r1/caption.txt")
    assert served.headers["content-type"].startswith("text/plain")
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_a_data_uri_svg_input_is_never_republished_as_svg(sandbox: Sandbox) -> None:
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    data_uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    run = await sandbox.finish(await sandbox.queue("img2img", {"input_image": data_uri}, webhook=None))
    assert run["status"] == "failed"
    for path in sandbox.server.files.root.rglob("*"):
        if path.is_file():
            served = await sandbox.client.get(f"{BASE_URL}/files/{path.relative_to(sandbox.server.files.root)}")
            assert "svg" not in served.headers["content-type"]
