"""Security headers on every response: a Content-Security-Policy, no framing, no sniffing, no referrer.

The pages need nothing inline: one script and one stylesheet from ``/static``. Result images may come
from the backend's file host (any https host with ComfyDeploy), so images and videos may be loaded
from https too; scripts, styles, frames and form targets stay on this origin.

The Swagger UI pages (``/api/v1/docs`` and the embedded sandbox's ``/sandbox/docs``) load Swagger
from a CDN and start it with one inline script; they get their own policy that allows that CDN and
exactly the inline scripts FastAPI generated (by their sha256, read off the page itself), nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob: https:",
        "media-src 'self' blob: https:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_CDN = "https://cdn.jsdelivr.net"
DOCS_PATHS = frozenset({"/api/v1/docs", "/sandbox/docs"})
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def docs_policy(html: bytes) -> str:
    """The policy of a Swagger UI page: its CDN, its own inline scripts by hash, API calls to this origin."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_CDN} {hashes}".rstrip(),
            f"style-src {_CDN} 'unsafe-inline'",  # Swagger UI styles its widgets inline; styles run no code
            "img-src 'self' data: https://fastapi.tiangolo.com",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, https: bool, form_targets: tuple[str, ...] = ()) -> None:
        self.app = app
        # A top-up form is answered with a redirect to the payment provider's checkout: allowed by name.
        self.page_policy = PAGE_POLICY.replace("form-action 'self'", " ".join(("form-action 'self'", *form_targets)))
        self.common: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            # Sign-in links carry a token in their URL: never send a URL of ours to anyone else.
            (b"referrer-policy", b"no-referrer"),
        ]
        if https:
            self.common.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in DOCS_PATHS:
            await self._docs(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._merge(message.get("headers") or [], self.page_policy)
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the (small, generated) docs page until its inline scripts are hashed into its policy."""
        start: Message = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = b"".join(chunks)
                start["headers"] = self._merge(start.get("headers") or [], docs_policy(body))
                await send(start)
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, hold)

    def _merge(self, headers: list[tuple[bytes, bytes]], policy: str) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        extra = [(name, value) for name, value in self.common if name not in present]
        if b"content-security-policy" not in present:
            extra.append((b"content-security-policy", policy.encode()))
        return [*headers, *extra]
