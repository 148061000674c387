"""The HTTP side of the fake Discord API: routes, request pipeline, 429s on demand, the CDN, the server.

Every request is recorded. The pipeline runs, in order: per-route rate-limit accounting (headers on
every response), bot authentication for bot endpoints, 429s queued by ``fail_next`` (or a bucket
really exhausted), body decoding errors, then the handler under the state lock.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.discord_api_commands import CommandRegistry
from tests.fakes.discord_api_messages import SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, MessageStore
from tests.fakes.discord_api_webhooks import InteractionWebhooks
from tests.fakes.discord_api_wire import (
    API_PREFIX,
    ApiRequest,
    DiscordError,
    RateInfo,
    RateLimiter,
    RecordedCall,
    missing_access,
    not_found,
    rate_limited,
    read_body,
    unauthorized,
)

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
Handler = Callable[[ApiRequest], tuple[int, Any]]


@dataclass
class _Failure:
    method: str
    path_contains: str
    times: int
    retry_after: float
    global_: bool


@dataclass
class _Endpoint:
    handlers: dict[str, Handler]
    bucket: str
    major: tuple[str, ...]
    auth: bool


class DiscordHttp:
    """Routes and server of :class:`~tests.fakes.discord_api.FakeDiscord` (which sets the state below)."""

    app: Starlette
    application_id: str
    bot_token: str
    root: str
    calls: list[RecordedCall]
    store: MessageStore
    webhooks: InteractionWebhooks
    _registry: CommandRegistry
    _limiter: RateLimiter
    _lock: threading.RLock
    _failures: list[_Failure]
    _server: uvicorn.Server | None
    _thread: threading.Thread | None

    def fail_next(
        self, method: str, path_contains: str, *, times: int = 1, retry_after: float = 0.5, global_: bool = False
    ) -> None:
        """Answer the next ``times`` requests of ``method`` whose path contains ``path_contains`` with a 429."""
        with self._lock:
            self._failures.append(_Failure(method.upper(), path_contains, times, retry_after, global_))

    def _routes(self) -> list[Route]:
        hooks, app = self.webhooks, f"{API_PREFIX}/applications/{{app_id}}"
        commands: dict[str, Handler] = {"GET": self._get_commands, "PUT": self._put_commands}
        messages: dict[str, Handler] = {
            "GET": hooks.get_message,
            "PATCH": hooks.edit_message,
            "DELETE": hooks.delete_message,
        }
        table = [
            (f"{app}/commands", _Endpoint(commands, "commands", ("app_id",), True)),
            (
                f"{app}/guilds/{{guild_id}}/commands",
                _Endpoint(commands, "guild-commands", ("app_id", "guild_id"), True),
            ),
            (
                f"{API_PREFIX}/interactions/{{interaction_id}}/{{token}}/callback",
                _Endpoint({"POST": hooks.callback}, "callback", ("interaction_id", "token"), False),
            ),
            (
                f"{API_PREFIX}/channels/{{channel_id}}/messages",
                _Endpoint({"POST": self._channel_message}, "channel-messages", ("channel_id",), True),
            ),
            (
                f"{API_PREFIX}/webhooks/{{app_id}}/{{token}}",
                _Endpoint({"POST": hooks.followup}, "webhook", ("app_id", "token"), False),
            ),
            (
                f"{API_PREFIX}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}",
                _Endpoint(messages, "webhook-message", ("app_id", "token"), False),
            ),
        ]
        routes = [Route(path, self._endpoint(spec), methods=list(spec.handlers)) for path, spec in table]
        for prefix in ("", API_PREFIX):
            routes.append(Route(f"{prefix}/attachments/{{att_id}}/{{filename}}", self._attachment, methods=["GET"]))
        fallback = _Endpoint(dict.fromkeys(ALL_METHODS, self._not_found), "unknown", (), False)
        routes.append(Route("/{path:path}", self._endpoint(fallback), methods=ALL_METHODS))
        return routes

    def _endpoint(self, spec: _Endpoint) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await self._dispatch(request, spec)

        return endpoint

    async def _dispatch(self, request: Request, spec: _Endpoint) -> Response:
        started = time.time()
        error: DiscordError | None = None
        try:
            body, files = await read_body(request)
        except DiscordError as exc:
            body, files, error = None, {}, exc
        query = dict(request.query_params)
        call = RecordedCall(request.method, request.url.path, query, body, files, dict(request.headers), started)
        info = self._limiter.hit(spec.bucket, ":".join(request.path_params.get(k, "") for k in spec.major))
        headers = info.headers()
        try:
            if spec.auth and request.headers.get("authorization") != f"Bot {self.bot_token}":
                raise unauthorized()
            limited = self._limited(request.method, request.url.path, info)
            if limited is not None:
                status, payload, headers = limited
            else:
                if error is not None:
                    raise error
                root = f"{request.url.scheme}://{request.url.netloc}"
                req = ApiRequest(request.method, dict(request.path_params), query, body, files, root)
                with self._lock:
                    status, payload = spec.handlers[request.method](req)
        except DiscordError as exc:
            status, payload = exc.status, exc.body()
        except Exception as exc:  # a bug in the fake (or a payload it cannot read): visible, not hidden
            status, payload = 500, {"message": "500: Internal Server Error", "code": 0, "fake_error": repr(exc)}
        call.status, call.response = status, payload
        with self._lock:
            self.calls.append(call)
        if status == 204:
            return Response(status_code=204, headers=headers)
        return JSONResponse(payload, status_code=status, headers=headers)

    def _limited(self, method: str, path: str, info: RateInfo) -> tuple[int, Any, dict[str, str]] | None:
        """A 429 for this request: one queued by ``fail_next``, or the bucket being exhausted."""
        with self._lock:
            failure = next(
                (f for f in self._failures if f.times > 0 and f.method == method and f.path_contains in path), None
            )
            if failure is not None:
                failure.times -= 1
        if failure is not None:
            return (429, *rate_limited(info, failure.retry_after, global_=failure.global_))
        if info.exceeded:
            return (429, *rate_limited(info, round(info.reset_after, 3), global_=False))
        return None

    def _put_commands(self, req: ApiRequest) -> tuple[int, Any]:
        self._check_application(req)
        return 200, self._registry.overwrite(req.params.get("guild_id"), req.json)

    def _get_commands(self, req: ApiRequest) -> tuple[int, Any]:
        self._check_application(req)
        return 200, self._registry.listing(req.params.get("guild_id"))

    def _channel_message(self, req: ApiRequest) -> tuple[int, Any]:
        """``POST /channels/{id}/messages`` as the bot (what an app falls back to once a token expired)."""
        payload = req.json if isinstance(req.json, dict) else {}
        raw_flags = payload.get("flags")
        flags = raw_flags if isinstance(raw_flags, int) else 0
        message = self.store.create(
            req.root,
            channel_id=req.params["channel_id"],
            payload=payload,
            files=req.files,
            flags=flags & (SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS),
            extra={"type": 0, "webhook_id": None},
        )
        return 200, message

    def _check_application(self, req: ApiRequest) -> None:
        if req.params["app_id"] != self.application_id:
            raise missing_access()

    def _not_found(self, req: ApiRequest) -> tuple[int, Any]:
        raise not_found()

    async def _attachment(self, request: Request) -> Response:
        """The CDN: the stored bytes, or its plain-text 404."""
        headers = {"Access-Control-Allow-Origin": "*", **self._limiter.hit("attachments", "").headers()}
        query = dict(request.query_params)
        call = RecordedCall(request.method, request.url.path, query, None, {}, dict(request.headers), time.time())
        with self._lock:
            stored = self.store.files.get(request.path_params["att_id"])
            if stored is not None and stored.filename != request.path_params["filename"]:
                stored = None
            call.status = 404 if stored is None else 200
            self.calls.append(call)
        if stored is None:
            return Response("This content is no longer available.", 404, headers=headers, media_type="text/plain")
        return Response(stored.content, media_type=stored.content_type, headers=headers)

    async def serve(self) -> str:
        """Run on a real uvicorn server at 127.0.0.1:<free port> in a thread; returns the root URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = self._server = uvicorn.Server(config)
        thread = self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-discord", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Discord server did not start")
            await asyncio.sleep(0.01)
        self.root = f"http://127.0.0.1:{port}"
        return self.root

    async def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            await asyncio.to_thread(self._thread.join, 10)
        self._server = self._thread = None

    async def __aenter__(self) -> Self:
        await self.serve()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
