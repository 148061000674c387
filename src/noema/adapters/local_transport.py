"""An httpx transport that sends requests for Noema's own URL to the app in-process, others to the network.

The embedded sandbox posts its webhooks to ``NOEMA_PUBLIC_URL/api/webhook/...`` like the cloud
does; routing those in-process keeps them working when the public URL is not reachable from here.
"""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp


class LocalFirstTransport(httpx.AsyncBaseTransport):
    """Requests under ``base_url`` go to ``app`` (set once the app exists); the rest go out."""

    def __init__(self, base_url: str) -> None:
        self.base = httpx.URL(base_url)
        self.app: ASGIApp | None = None
        self._network = httpx.AsyncHTTPTransport(retries=0)

    def _is_local(self, url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == (self.base.scheme, self.base.host, self.base.port)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route by URL."""
        if self.app is not None and self._is_local(request.url):
            # An error inside the app is a 500 answer, as it would be over the network: the sender
            # (the sandbox's webhook poster) retries it, instead of its task dying with the exception.
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            return await transport.handle_async_request(request)
        return await self._network.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the network pool."""
        await self._network.aclose()
