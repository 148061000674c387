"""A small client for Discord's REST API over httpx, within its rate limits.

Requests wait for an empty bucket to refill; a 429 is waited out (``retry_after`` from the body)
and retried when the wait is short, else it goes back to the caller as a NotifierError carrying
``retry_after`` (the delivery worker then schedules the row for later instead of holding a worker).
Network errors and 5xx are retried with backoff; other 4xx are final. Interaction tokens sit in
webhook paths, so no path or URL is ever logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from noema.adapters.platforms.discord.ratelimit import Buckets
from noema.domain.errors import NotifierError

UNKNOWN_WEBHOOK, UNKNOWN_MESSAGE, INVALID_WEBHOOK_TOKEN = 10015, 10008, 50027
ATTEMPTS = 4
Sleep = Callable[[float], Awaitable[None]]


class DiscordApiError(NotifierError):
    """Discord refused the request."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"Discord refused ({status}, code {code}): {message[:500]}", retryable=False)
        self.status, self.discord_code = status, code

    @property
    def token_gone(self) -> bool:
        """The interaction token expired or its message is gone: post in the channel instead."""
        return self.discord_code in (UNKNOWN_WEBHOOK, UNKNOWN_MESSAGE, INVALID_WEBHOOK_TOKEN) or self.status == 401


@dataclass(frozen=True)
class OutMessage:
    """A message body and the files uploaded with it (name, bytes, MIME type)."""

    payload: dict[str, Any]
    files: list[tuple[str, bytes, str]] = field(default_factory=list)


class DiscordRest:
    """Discord's REST API for one application."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        bot_token: str,
        application_id: str,
        max_wait: float = 2.0,
        buckets: Buckets | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http, self.base_url, self.application_id = http, base_url.rstrip("/"), application_id
        self._auth = {"Authorization": f"Bot {bot_token}"}
        self.max_wait, self.buckets, self._sleep = max_wait, buckets or Buckets(), sleep

    async def overwrite_commands(self, commands: list[dict[str, Any]], guild_id: str | None = None) -> Any:
        """Replace the application's slash commands, globally or in one guild."""
        scope = f"/guilds/{guild_id}" if guild_id else ""
        path = f"/applications/{self.application_id}{scope}/commands"
        return await self.request("PUT", path, route="commands", major=guild_id or "", json_body=commands, max_wait=30)

    async def edit_original(self, token: str, message: OutMessage) -> Any:
        """Edit the interaction's original response."""
        path = f"/webhooks/{self.application_id}/{token}/messages/@original"
        return await self.request("PATCH", path, route="original", major=_hash(token), message=message, auth=False)

    async def delete_original(self, token: str) -> None:
        """Delete the interaction's original response."""
        path = f"/webhooks/{self.application_id}/{token}/messages/@original"
        await self.request("DELETE", path, route="original-delete", major=_hash(token), auth=False)

    async def followup(self, token: str, message: OutMessage) -> Any:
        """A further message answering the interaction."""
        path = f"/webhooks/{self.application_id}/{token}"
        return await self.request("POST", path, route="followup", major=_hash(token), message=message, auth=False)

    async def channel_message(self, channel_id: str, message: OutMessage) -> Any:
        """A message in a channel, as the bot (when the interaction token has expired)."""
        path = f"/channels/{channel_id}/messages"
        return await self.request("POST", path, route="channel-message", major=channel_id, message=message)

    async def request(
        self,
        method: str,
        path: str,
        *,
        route: str,
        major: str,
        json_body: Any = None,
        message: OutMessage | None = None,
        auth: bool = True,
        max_wait: float | None = None,
    ) -> Any:
        """One API call, within the rate limits; returns the decoded JSON (None for 204)."""
        limit = self.max_wait if max_wait is None else max_wait
        headers = self._auth if auth else None
        for attempt in range(1, ATTEMPTS + 1):
            await self._wait_for_room(route, major, limit)
            self.buckets.spend(route, major)
            backoff = 0.5 * 2 ** (attempt - 1)
            try:
                response = await self.http.request(
                    method, self.base_url + path, headers=headers, **_body(json_body, message)
                )
            except httpx.HTTPError as exc:
                if attempt == ATTEMPTS:
                    raise NotifierError(f"Discord did not answer ({type(exc).__name__}).") from exc
                await self._sleep(backoff)
                continue
            self.buckets.update(route, major, response.headers)
            wait = self._retry_in(response, route, major, limit, backoff)
            if wait is None:
                return response.json() if response.status_code != 204 and response.content else None
            if attempt == ATTEMPTS:
                raise NotifierError(f"Discord failed ({response.status_code}).", retry_after=wait)
            await self._sleep(wait)
        raise AssertionError("unreachable")

    def _retry_in(self, response: httpx.Response, route: str, major: str, limit: float, backoff: float) -> float | None:
        """Seconds to wait before trying again, None for a success; raises when trying again is pointless."""
        status = response.status_code
        if status == 429:
            wait, is_global = _retry_after(response)
            self.buckets.hold(route, major, wait, is_global=is_global)
            if wait > limit:
                raise NotifierError(f"Discord asked to wait {wait:g} s.", retry_after=wait)
            return wait
        if status >= 500:
            return backoff
        if status >= 400:
            raise _refusal(response)
        return None

    async def _wait_for_room(self, route: str, major: str, limit: float) -> None:
        wait = self.buckets.delay(route, major)
        if wait > limit:
            raise NotifierError(f"Discord's rate limit needs a pause of {wait:.1f} s.", retry_after=wait)
        if wait > 0:
            await self._sleep(wait)


def _hash(token: str) -> str:
    """A short stand-in for a token in rate-limit keys (tokens are secrets; keys may be inspected)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _body(json_body: Any, message: OutMessage | None) -> dict[str, Any]:
    if message is None:
        return {} if json_body is None else {"json": json_body}
    if not message.files:
        return {"json": message.payload}
    files = [(f"files[{n}]", (name, content, mime)) for n, (name, content, mime) in enumerate(message.files)]
    return {"data": {"payload_json": json.dumps(message.payload)}, "files": files}


def _retry_after(response: httpx.Response) -> tuple[float, bool]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    raw = body.get("retry_after", response.headers.get("retry-after", 1))
    try:
        wait = min(max(float(raw), 0.0), 3600.0)
    except (TypeError, ValueError):
        wait = 1.0
    return wait, bool(body.get("global")) or response.headers.get("x-ratelimit-global") == "true"


def _refusal(response: httpx.Response) -> DiscordApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    raw = body.get("code")
    code = raw if isinstance(raw, int) else 0
    message = str(body.get("message") or response.reason_phrase)
    if body.get("errors"):
        message += " " + json.dumps(body["errors"], separators=(",", ":"))[:300]
    return DiscordApiError(response.status_code, code, message)
