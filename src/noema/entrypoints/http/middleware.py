"""ASGI middleware: request ids, a body size limit, request metrics and access logs."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("noema.http")
#: The only routes that take files; every other route gets NOEMA_MAX_BODY_BYTES, whatever its content type.
UPLOAD_PATHS = frozenset(
    {"/api/v1/generations", "/internal/v1/data/generations", "/app/run", "/sandbox/api/file/upload"}
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")


class BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Gives each request an id, refuses oversized bodies with 413, and counts requests."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, registry: CollectorRegistry
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.requests = Counter(
            "noema_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram("noema_http_request_seconds", "HTTP request latency", ["route"], registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        # Uploads (forms with files, generation requests carrying images) may be larger than other bodies;
        # the content type is the client's say, so it never raises the limit of a route that takes no files.
        limit = self.max_upload_bytes if scope["path"] in UPLOAD_PATHS else self.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, rid, limit)
            return
        status = {"code": 500, "started": 0}
        started = time.perf_counter()
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], 1
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            await self._too_large(send, rid, limit)
            status["code"] = 413
        except Exception:
            if status["started"]:
                raise
            # Answered here, inside the security headers, and logged once with the request id; letting
            # it escape would have Starlette answer without those headers and uvicorn log it a second time.
            log.exception("unhandled_error", path=scope["path"], method=scope["method"])
            await _send_error(send, rid, 500, "INTERNAL_ERROR", "Something went wrong on our side; it was logged.")
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            route = _route_of(scope)
            self.requests.labels(scope["method"], route, str(status["code"])).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)

    async def _too_large(self, send: Send, rid: str, limit: int) -> None:
        await _send_error(send, rid, 413, "PAYLOAD_TOO_LARGE", f"The body may be at most {limit} bytes.")


async def _send_error(send: Send, rid: str, status: int, code: str, message: str) -> None:
    """The error body of errors.py, sent from outside the app."""
    body = json.dumps({"error": {"code": code, "requestId": rid, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
