"""The sandbox server: a local stand-in for ComfyDeploy's V2 API that renders real images with Pillow."""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from noema.adapters.backends.sandbox import api_catalog, api_runs
from noema.adapters.backends.sandbox.catalog import Catalog
from noema.adapters.backends.sandbox.catalog_data import CATALOG
from noema.adapters.backends.sandbox.config import Dice, SandboxConfig
from noema.adapters.backends.sandbox.engine import RunEngine
from noema.adapters.backends.sandbox.fetch import ImageFetcher
from noema.adapters.backends.sandbox.files import FileStore
from noema.adapters.backends.sandbox.runs import RunStore
from noema.adapters.backends.sandbox.state import SandboxState, State, require_bearer
from noema.adapters.backends.sandbox.webhooks import WebhookSender

logger = logging.getLogger(__name__)

TITLE = "Noema sandbox backend — not a real GPU"


def _home_page(catalog: Catalog, base_url: str) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(d.name)}</td><td><code>{d.id}</code></td><td>{html.escape(d.machine.gpu)}</td>"
        f"<td>{html.escape(d.note)}</td></tr>"
        for d in catalog.deployments
    )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{TITLE}</title></head><body>"
        f"<h1>{TITLE}</h1>"
        "<p>This server imitates the ComfyDeploy V2 API so Noema runs without any account. "
        "Its pictures are drawn with Pillow and labelled SANDBOX; no model runs here.</p>"
        f"<p>API base URL: <code>{html.escape(base_url)}/api</code>. Every API request needs "
        "<code>Authorization: Bearer &lt;key&gt;</code> with this sandbox's key: "
        "<code>NOEMA_SANDBOX_API_KEY</code> (or <code>noema sandbox --api-key</code>), else a random key "
        "made at each start (<code>noema sandbox</code> prints it). "
        f"<a href='{html.escape(base_url)}/docs'>OpenAPI docs</a>.</p>"
        "<table border=1 cellpadding=4><tr><th>deployment</th><th>id</th><th>GPU</th><th>about</th></tr>"
        f"{rows}</table></body></html>"
    )


pages = APIRouter()


@pages.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(state: State) -> HTMLResponse:
    """What this server is, in plain words."""
    return HTMLResponse(_home_page(state.catalog, state.config.public_base_url))


@pages.get("/files/{path:path}", tags=["files"])
@pages.head("/files/{path:path}", include_in_schema=False)
async def serve_file(path: str, state: State) -> FileResponse:
    """An uploaded file or a run output: pictures, videos and text inline, anything else as a download.

    The files live on Noema's own origin when the sandbox is mounted there, so a stored page or SVG
    must never run in a visitor's browser: only allow-listed types are inline, never sniffed.
    """
    found = state.files.resolve(path)
    if found is None:
        raise HTTPException(404, "File not found")
    media_type = state.files.media_type(found)
    headers = {"X-Content-Type-Options": "nosniff"}
    if media_type is not None and not media_type.startswith("text/"):
        return FileResponse(found, media_type=media_type, headers=headers)
    headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    if media_type is not None:
        return FileResponse(found, media_type=media_type, headers=headers)
    return FileResponse(
        found,
        media_type="application/octet-stream",
        headers=headers,
        filename=found.name,
        content_disposition_type="attachment",
    )


class SandboxServer:
    """The sandbox app and its background work; call ``start``/``stop`` around its use."""

    def __init__(self, config: SandboxConfig, *, http_client: httpx.AsyncClient) -> None:
        self.config = config
        self.catalog = CATALOG
        self.dice = Dice(config.faults, config.seed)
        self.files = FileStore(config.data_dir / "files", config.public_base_url)
        self.store = RunStore(config.data_dir / "runs")
        self.webhooks = WebhookSender(http_client, self.dice, allowed_base=config.webhook_base)
        self.engine = RunEngine(
            catalog=self.catalog,
            store=self.store,
            files=self.files,
            fetcher=ImageFetcher(self.files),
            webhooks=self.webhooks,
            dice=self.dice,
            run_seconds=config.run_seconds,
        )
        self.app = self._build_app()

    async def start(self) -> None:
        """Resume the unfinished runs found in ``data_dir``: their timelines and webhooks carry on."""
        resumed = self.engine.resume()
        if resumed:
            logger.info("sandbox resumed %d unfinished run(s)", resumed)

    async def stop(self) -> None:
        """Cancel the run tasks and pending webhooks; run records stay on disk for the next start."""
        await self.engine.stop()
        await self.webhooks.close()

    def _build_app(self) -> FastAPI:
        app = FastAPI(
            title=TITLE,
            description="A local double of ComfyDeploy's V2 API for Noema. Images are drawn by Pillow.",
            version="2",
        )
        app.state.sandbox = SandboxState(
            config=self.config,
            catalog=self.catalog,
            store=self.store,
            engine=self.engine,
            files=self.files,
            dice=self.dice,
        )
        api = APIRouter(prefix="/api", dependencies=[Depends(require_bearer)])
        api.include_router(api_runs.router)
        api.include_router(api_catalog.router)
        app.include_router(api)
        app.include_router(pages)
        return app


def create_standalone_app(config: SandboxConfig) -> FastAPI:
    """The sandbox as its own app (``noema sandbox --port N``): its lifespan starts and stops it."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
    server = SandboxServer(config, http_client=client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()
            await client.aclose()

    server.app.router.lifespan_context = lifespan
    return server.app
