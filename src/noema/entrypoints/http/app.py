"""The ASGI application: every router, the error handlers, middleware and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from noema import __version__
from noema.bootstrap import SANDBOX_MOUNT, Container
from noema.domain.inputs import MAX_DATA_URI_LENGTH
from noema.entrypoints.http import ops
from noema.entrypoints.http.errors import install_error_handlers
from noema.entrypoints.http.internal import internal_router
from noema.entrypoints.http.media import router as media_router
from noema.entrypoints.http.middleware import RequestContextMiddleware
from noema.entrypoints.http.openapi_docs import docs_router
from noema.entrypoints.http.public_api import public_router
from noema.entrypoints.http.security_headers import SecurityHeadersMiddleware
from noema.entrypoints.http.stripe_webhook import router as stripe_webhook_router
from noema.entrypoints.http.web import install_web
from noema.entrypoints.http.webhooks import comfydeploy_route
from noema.entrypoints.http.webhooks import router as webhooks_router
from noema.entrypoints.workers import Workers


def create_app(container: Container) -> FastAPI:
    """The Noema app over a container; the lifespan migrates, starts workers and closes cleanly."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        workers = Workers(container)
        if container.settings.workers_enabled:
            workers.start()
        try:
            yield
        finally:
            await workers.stop()
            await container.close()

    app = FastAPI(
        title="Noema",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,  # two documents instead: the public one and the internal one (openapi_docs)
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    install_error_handlers(app)
    # The backends' and platforms' webhooks first: they are the most frequent requests (a busy backend
    # sends hundreds a second), and a request is matched against the routes in order.
    app.router.routes.append(comfydeploy_route(container.backend_updates, container.metrics))
    app.include_router(webhooks_router)
    app.include_router(stripe_webhook_router)
    app.include_router(ops.router)
    app.include_router(docs_router())
    app.include_router(internal_router())
    app.include_router(public_router())
    app.include_router(media_router)
    install_web(app)
    if container.sandbox is not None:
        app.mount(SANDBOX_MOUNT, container.sandbox.app)
    container.bind_app(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=container.settings.max_body_bytes,
        # A route that takes files takes one of the largest (as a data: URI, the longest form) besides the rest.
        max_upload_bytes=MAX_DATA_URI_LENGTH + container.settings.max_body_bytes,
        registry=container.registry,
    )
    # Outermost, so the 413s of the request-context middleware carry the headers too.
    app.add_middleware(
        SecurityHeadersMiddleware,
        https=container.settings.base_url.startswith("https://"),
        form_targets=(container.settings.stripe_checkout_origin,) if container.stripe is not None else (),
    )
    return app
