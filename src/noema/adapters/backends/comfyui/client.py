"""A typed async client of one ComfyUI server (0.3.64's HTTP API) over an injected ``httpx.AsyncClient``.

Every failure becomes one of the error tree's: ``BackendUnavailable`` (no connection, 5xx, timeout),
``BackendRejected`` (another refusal), ``BackendPromptInvalid`` (the workflow fails validation) and
``BackendProtocolError`` (an answer that does not parse). Reads, deletes from the queue, interrupts
and uploads (each under a fresh unique name) are retried with stamina; ``POST /prompt`` only when it
cannot have reached the server (a connect error): a prompt sent twice runs twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import PurePosixPath
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import stamina

from noema.adapters.backends.comfyui.models import NodeInfo, PromptResult, QueueState, SystemStats
from noema.adapters.backends.comfyui.parse import (
    parse_history,
    parse_object_info,
    parse_queue,
    parse_system_stats,
    validation_sentence,
)
from noema.adapters.backends.http_calls import NEVER_SENT, Call, Transient, guarded, outcome_unknown, send
from noema.domain.errors import (
    BackendPromptInvalid,
    BackendProtocolError,
    BackendRejected,
)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_VIEW_LIMIT = 200 * 1024 * 1024  #: bytes; a bigger output is refused, not buffered
_SAFE_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class ComfyUIClient:
    """The HTTP API of one ComfyUI server."""

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient,
        client_id: str,
        timeout_seconds: float = 30.0,
        retry_attempts: int = 3,
        retry_max_wait_seconds: float = 5.0,
        view_limit_bytes: int = DEFAULT_VIEW_LIMIT,
    ) -> None:
        if timeout_seconds <= 0 or retry_attempts < 1 or view_limit_bytes <= 0:
            raise ValueError("timeout, attempts and the view limit must be positive")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.label = f"ComfyUI at {self.base_url}"
        self._http = http
        self._timeout = httpx.Timeout(timeout_seconds)
        self._view_limit = view_limit_bytes
        self._retrying = stamina.AsyncRetryingCaller(
            attempts=retry_attempts, timeout=None, wait_initial=0.2, wait_max=retry_max_wait_seconds, wait_jitter=0.5
        ).on(Transient)

    # --- the server ------------------------------------------------------------------------

    async def system_stats(self) -> SystemStats:
        """Version and devices; also the health check."""
        return parse_system_stats(await self._json(Call("GET", "/system_stats")))

    async def object_info(self) -> dict[str, NodeInfo]:
        """Every node class the server has, with its inputs (bounds, defaults, COMBO options)."""
        return parse_object_info(await self._json(Call("GET", "/object_info")))

    async def object_info_raw(self) -> Any:
        """``/object_info`` as the server sent it (for ``summary_from_object_info``)."""
        return await self._json(Call("GET", "/object_info"))

    async def queue(self) -> QueueState:
        """The prompt ids running and waiting on the server (everyone's, not only ours)."""
        return parse_queue(await self._json(Call("GET", "/queue")))

    # --- prompts ---------------------------------------------------------------------------

    async def upload_image(self, name: str, content: bytes, content_type: str) -> str:
        """Store an input image under a fresh unique name; returns the name for ``LoadImage``."""
        # ComfyUI keeps an existing file of the same name when the bytes are equal and renames
        # otherwise: a unique name of our own makes the stored name predictable and retries harmless.
        unique = f"noema-{uuid.uuid4().hex[:16]}-{_safe_filename(name)}"
        call = Call(
            "POST",
            "/upload/image",
            files={"image": (unique, content, content_type)},
            data={"type": "input", "overwrite": "true"},
        )
        data = await self._json(call)
        stored = data.get("name") if isinstance(data, Mapping) else None
        if not isinstance(stored, str) or not stored:
            raise BackendProtocolError(f"{self.label} stored the upload but returned no name.")
        subfolder = data.get("subfolder") or ""
        return f"{subfolder}/{stored}" if isinstance(subfolder, str) and subfolder else stored

    async def queue_prompt(
        self, graph: Mapping[str, Any], prompt_id: str | None = None, *, strict: bool = False
    ) -> str:
        """Queue a workflow (API format) under our client id; returns its prompt id.

        Raises ``BackendPromptInvalid`` with the server's ``node_errors`` in words when it fails
        validation. Never repeated once sent: a second POST would run (and cost) a second time.
        ``strict``: a 200 that still names ``node_errors`` (some outputs dropped) is a refusal too:
        the prompt is taken off the server's queue (interrupted if it already began) and refused.
        """
        body: dict[str, Any] = {"prompt": dict(graph), "client_id": self.client_id}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        call = Call("POST", "/prompt", idempotent=False, json=body)
        response = await self._request(call, accept=(400,))
        data = _json_of(response, self.label, call)
        if response.status_code == 400:
            node_errors = data.get("node_errors") if isinstance(data, Mapping) else None
            raise BackendPromptInvalid(
                validation_sentence(data),
                status=400,
                body=response.text,
                node_errors=dict(node_errors) if isinstance(node_errors, Mapping) else {},
            )
        queued = data.get("prompt_id") if isinstance(data, Mapping) else None
        if not isinstance(queued, str) or not queued:
            raise BackendProtocolError(f"{self.label} accepted the prompt but returned no prompt_id.")
        if strict and isinstance(data, Mapping) and data.get("node_errors"):
            await self.delete_queued(queued)
            await self.interrupt(queued)
            node_errors = data.get("node_errors")
            raise BackendPromptInvalid(
                validation_sentence(data),
                status=200,
                body=response.text,
                node_errors=dict(node_errors) if isinstance(node_errors, Mapping) else {},
            )
        if isinstance(data, Mapping) and data.get("node_errors"):
            # Some outputs passed validation, so it runs, without the outputs that failed.
            logger.warning(
                "%s queued %s without the outputs that failed: %s", self.label, queued, validation_sentence(data)
            )
        return queued

    async def history(self, prompt_id: str) -> PromptResult | None:
        """The finished prompt, or None while it is not finished (or the server does not know it)."""
        return parse_history(prompt_id, await self._json(Call("GET", f"/history/{_segment(prompt_id)}")))

    async def delete_queued(self, prompt_id: str) -> None:
        """Remove a waiting prompt from the server's queue (a running one is not affected)."""
        await self._request(Call("POST", "/queue", json={"delete": [prompt_id]}))

    async def interrupt(self, prompt_id: str) -> None:
        """Stop this prompt if it is the one running; no effect on any other."""
        await self._request(Call("POST", "/interrupt", json={"prompt_id": prompt_id}))

    async def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """The bytes of one output file, streamed and refused past the size limit."""
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        return await self._guard(Call("GET", "/view", params=params), self._download)

    # --- transport -------------------------------------------------------------------------

    async def _json(self, call: Call) -> Any:
        return _json_of(await self._request(call), self.label, call)

    async def _request(self, call: Call, *, accept: tuple[int, ...] = ()) -> httpx.Response:
        response = await self._guard(call, self._send_once)
        if response.is_success or response.status_code in accept:
            return response
        raise self._rejection(call, response)

    async def _guard(self, call: Call, attempt: Callable[[Call], Awaitable[_T]]) -> _T:
        """Run ``attempt(call)`` with retries; translate every transport failure into the error tree."""
        return await guarded(self.label, self._retrying, attempt, call)

    async def _send_once(self, call: Call) -> httpx.Response:
        response = await send(self._http, call, base_url=self.base_url, label=self.label, timeout=self._timeout)
        if response.status_code >= 500:
            if call.idempotent:
                raise Transient(f"HTTP {response.status_code}")
            raise outcome_unknown(self.label, call, f"HTTP {response.status_code}")
        return response

    async def _download(self, call: Call) -> bytes:
        try:
            async with self._http.stream(
                "GET", self.base_url + call.path, params=call.params, timeout=self._timeout
            ) as response:
                if response.status_code >= 500:
                    raise Transient(f"HTTP {response.status_code}")
                if not response.is_success:
                    await response.aread()
                    raise self._rejection(call, response)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self._view_limit:
                    raise self._too_big(call)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._view_limit:
                        raise self._too_big(call)
                    chunks.append(chunk)
                return b"".join(chunks)
        except NEVER_SENT as exc:
            raise Transient(f"could not connect: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise Transient(f"no answer: {type(exc).__name__}") from exc

    def _too_big(self, call: Call) -> BackendProtocolError:
        return BackendProtocolError(f"{self.label} answered {call} with more than {self._view_limit} bytes.")

    def _rejection(self, call: Call, response: httpx.Response) -> BackendRejected:
        status = response.status_code
        logger.warning("%s refused %s with HTTP %s", self.label, call, status)
        return BackendRejected(f"{self.label} refused {call} (HTTP {status}).", status=status, body=response.text)


def _json_of(response: httpx.Response, label: str, call: Call) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise BackendProtocolError(f"{label} answered {call} with something that is not JSON.") from exc


def _segment(value: str) -> str:
    """One path segment: an id can never reach another endpoint."""
    if not value:
        raise ValueError("a prompt id must not be empty")
    return quote(value, safe="")


def _safe_filename(name: str) -> str:
    """The base name with anything but letters, digits, dot, dash and underscore replaced."""
    base = PurePosixPath(name.replace("\\", "/")).name or "upload"
    cleaned = "".join(c if c in _SAFE_NAME else "_" for c in base).lstrip(".")
    return cleaned[-80:] or "upload"
