"""Wire level of the fake Discord API: errors, recorded calls, request bodies, snowflakes, rate limits.

Discord answers errors as ``{"message", "code"}`` and form validation failures as code 50035 with a
nested ``errors`` object whose leaves are ``{"_errors": [{"code", "message"}]}``; :class:`FieldErrors`
builds that shape. Bodies arrive as JSON or as ``multipart/form-data`` with ``payload_json`` and
``files[n]`` parts; :func:`read_body` turns both into the same (json, files) pair.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from starlette.datastructures import UploadFile
from starlette.requests import Request

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
MAX_MULTIPART_FIELD = 8 * 1024 * 1024


class UploadedFile(NamedTuple):
    """One file part of a multipart request."""

    filename: str
    content: bytes
    content_type: str


class DiscordError(Exception):
    """A refusal, answered as ``{"message", "code"[, "errors"]}`` with ``status``."""

    def __init__(self, status: int, message: str, code: int = 0, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body Discord answers with."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def unauthorized() -> DiscordError:
    return DiscordError(401, "401: Unauthorized", 0)


def not_found() -> DiscordError:
    return DiscordError(404, "404: Not Found", 0)


def missing_access() -> DiscordError:
    return DiscordError(403, "Missing Access", 50001)


def unknown_interaction() -> DiscordError:
    return DiscordError(404, "Unknown interaction", 10062)


def already_acknowledged() -> DiscordError:
    return DiscordError(400, "Interaction has already been acknowledged.", 40060)


def unknown_message() -> DiscordError:
    return DiscordError(404, "Unknown Message", 10008)


def unknown_webhook() -> DiscordError:
    return DiscordError(404, "Unknown Webhook", 10015)


def invalid_webhook_token() -> DiscordError:
    return DiscordError(401, "Invalid Webhook Token", 50027)


def entity_too_large() -> DiscordError:
    return DiscordError(413, "Request entity too large", 40005)


def empty_message() -> DiscordError:
    return DiscordError(400, "Cannot send an empty message", 50006)


def invalid_json() -> DiscordError:
    return DiscordError(400, "The request body contains invalid JSON.", 50109)


class FieldErrors:
    """Collects per-field errors into Discord's nested ``errors`` object."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def length(self, path: tuple[str | int, ...], value: Any, low: int, high: int, *, required: bool = False) -> None:
        """Check a string field's length the way Discord words it."""
        if value is None:
            if required:
                self.add(path, "BASE_TYPE_REQUIRED", "This field is required")
            return
        if not isinstance(value, str):
            self.add(path, "BASE_TYPE_STRING", "Must be a string.")
        elif not low <= len(value) <= high:
            if low > 0:
                self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")
            else:
                self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")

    def max_items(self, path: tuple[str | int, ...], value: Any, high: int) -> list[Any]:
        """Check an array field's size; returns the array (empty when absent or not an array)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
            return []
        if len(value) > high:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
        return value

    def raise_if_any(self) -> None:
        if self.tree:
            raise DiscordError(400, "Invalid Form Body", 50035, self.tree)


@dataclass
class RecordedCall:
    """One request to the fake, as it understood it, and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: dict[str, UploadedFile]
    headers: dict[str, str]
    time: float
    status: int = 0
    response: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ApiRequest:
    """What a handler gets: path parameters, query, decoded body and files, and the public root URL."""

    method: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: dict[str, UploadedFile] = field(default_factory=dict)
    root: str = ""


async def read_body(request: Request) -> tuple[Any, dict[str, UploadedFile]]:
    """The JSON body (``payload_json`` for multipart) and the uploaded files of a request."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _read_multipart(request)
    raw = await request.body()
    if not raw.strip():
        return None, {}
    try:
        return json.loads(raw), {}
    except ValueError as exc:
        raise invalid_json() from exc


async def _read_multipart(request: Request) -> tuple[Any, dict[str, UploadedFile]]:
    files: dict[str, UploadedFile] = {}
    fields: dict[str, Any] = {}
    payload: Any = None
    async with request.form(max_part_size=MAX_MULTIPART_FIELD) as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                files[name] = UploadedFile(value.filename or name, content, value.content_type or "")
            elif name == "payload_json":
                try:
                    payload = json.loads(value)
                except ValueError as exc:
                    raise invalid_json() from exc
            else:
                fields[name] = value
    if payload is None:
        payload = fields or None
    return payload, files


class Snowflakes:
    """Unique, increasing Discord snowflakes (timestamp << 22 | worker | process | increment)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            value = max(stamp | (1 << 17) | (1 << 12), self._last + 1)
            self._last = value
            return str(value)


@dataclass
class RateInfo:
    """The per-route rate-limit state reported on one response."""

    limit: int
    remaining: int
    reset_after: float
    bucket: str
    exceeded: bool = False

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": f"{time.time() + self.reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{self.reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket,
        }


def bucket_hash(route: str) -> str:
    """An opaque bucket id like Discord's, shared by every top-level resource of one route."""
    return hashlib.md5(route.encode(), usedforsecurity=False).hexdigest()


class RateLimiter:
    """Fixed-window per-route buckets keyed by route and top-level resource (a real limit, if generous)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._windows: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Every bucket full again."""
        with self._lock:
            self._windows.clear()

    def hit(self, route: str, major: str) -> RateInfo:
        now = time.monotonic()
        with self._lock:
            state = self._windows.setdefault((route, major), [now, 0.0])
            if now - state[0] >= self.window:
                state[0], state[1] = now, 0.0
            state[1] += 1
            used, started = int(state[1]), state[0]
        reset_after = max(self.window - (now - started), 0.001)
        return RateInfo(self.limit, max(self.limit - used, 0), reset_after, bucket_hash(route), used > self.limit)


def rate_limited(info: RateInfo, retry_after: float, *, global_: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Discord's 429 body and headers."""
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}
    headers = RateInfo(info.limit, 0, retry_after, info.bucket).headers()
    headers["Retry-After"] = str(math.ceil(retry_after))
    headers["X-RateLimit-Scope"] = "global" if global_ else "user"
    if global_:
        headers["X-RateLimit-Global"] = "true"
    return body, headers
