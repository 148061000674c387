"""ComfyUI's websocket (``/ws?clientId=``): typed events, and a listener that reconnects.

The listener yields ``Connected`` and ``Disconnected`` markers as well as the server's events, so a
consumer knows when it may have missed some (and should poll ``/history`` and ``/queue`` instead).
Binary frames (previews) are skipped, and so are event types nobody here needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection

from noema.adapters.backends.comfyui.parse import error_text, ms_to_datetime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connected:
    """The socket is (again) open: events from now on arrive."""


@dataclass(frozen=True)
class Disconnected:
    """The socket closed; events may be missed until the next ``Connected``."""

    reason: str


@dataclass(frozen=True)
class QueueStatus:
    """``status``: how many prompts the server has queued or running."""

    queue_remaining: int


@dataclass(frozen=True)
class ExecutionStart:
    """``execution_start``: the prompt left the queue and began."""

    prompt_id: str
    at: datetime | None


@dataclass(frozen=True)
class ExecutionCached:
    """``execution_cached``: nodes reused from an earlier prompt, which will not run."""

    prompt_id: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Executing:
    """``executing``: a node began; ``node`` None means the prompt is done (always last)."""

    prompt_id: str
    node: str | None


@dataclass(frozen=True)
class Progress:
    """``progress``: a sampler-like node's steps (``value`` of ``max``)."""

    prompt_id: str
    node: str | None
    value: float
    max: float


@dataclass(frozen=True)
class Executed:
    """``executed``: an output node finished, with its output object."""

    prompt_id: str
    node: str
    output: Mapping[str, Any]


@dataclass(frozen=True)
class ExecutionSuccess:
    """``execution_success``: every output ran."""

    prompt_id: str
    at: datetime | None


@dataclass(frozen=True)
class ExecutionError:
    """``execution_error``: a node raised; ``error`` is ``node_type: message``, never the traceback."""

    prompt_id: str
    node: str | None
    error: str
    at: datetime | None


@dataclass(frozen=True)
class ExecutionInterrupted:
    """``execution_interrupted``: stopped by ``/interrupt`` (sent to every socket)."""

    prompt_id: str
    node: str | None
    at: datetime | None


ServerEvent = (
    QueueStatus
    | ExecutionStart
    | ExecutionCached
    | Executing
    | Progress
    | Executed
    | ExecutionSuccess
    | ExecutionError
    | ExecutionInterrupted
)
Event = ServerEvent | Connected | Disconnected


def parse_event(message: str | bytes) -> ServerEvent | None:
    """One websocket frame as an event; None for binary frames, unknown types and odd payloads."""
    if isinstance(message, bytes):
        return None
    try:
        frame = json.loads(message)
    except ValueError:
        return None
    if not isinstance(frame, Mapping) or not isinstance(frame.get("data"), Mapping):
        return None
    kind, data = frame.get("type"), frame["data"]
    if kind == "status":
        status = data.get("status")
        info = status.get("exec_info") if isinstance(status, Mapping) else None
        remaining = info.get("queue_remaining") if isinstance(info, Mapping) else None
        return QueueStatus(queue_remaining=remaining) if isinstance(remaining, int) else None
    prompt_id = data.get("prompt_id")
    if not isinstance(prompt_id, str):
        return None
    return _prompt_event(str(kind), prompt_id, data)


def _prompt_event(kind: str, prompt_id: str, data: Mapping[str, Any]) -> ServerEvent | None:
    at = ms_to_datetime(data.get("timestamp"))
    node = _node(data.get("node", data.get("node_id")))
    if kind == "execution_start":
        return ExecutionStart(prompt_id, at)
    if kind == "execution_cached":
        nodes = data.get("nodes")
        return ExecutionCached(prompt_id, tuple(str(n) for n in nodes) if isinstance(nodes, list) else ())
    if kind == "executing":
        return Executing(prompt_id, node)
    if kind == "progress":
        value, top = data.get("value"), data.get("max")
        if isinstance(value, int | float) and isinstance(top, int | float) and top > 0:
            return Progress(prompt_id, node, float(value), float(top))
        return None
    if kind == "executed":
        output = data.get("output")
        return Executed(prompt_id, node or "", output if isinstance(output, Mapping) else {})
    if kind == "execution_success":
        return ExecutionSuccess(prompt_id, at)
    if kind == "execution_error":
        return ExecutionError(prompt_id, node, error_text(data), at)
    if kind == "execution_interrupted":
        return ExecutionInterrupted(prompt_id, node, at)
    return None


def _node(value: Any) -> str | None:
    return None if value is None else str(value)


def ws_url(base_url: str, client_id: str) -> str:
    """``http(s)://host/prefix`` → ``ws(s)://host/prefix/ws?clientId=<id>``."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path + "/ws", f"clientId={quote(client_id, safe='')}", ""))


Connect = Callable[[str], Any]


class EventListener:
    """One websocket to one server, reopened with bounded exponential backoff until cancelled."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        initial_backoff: float = 0.5,
        max_backoff: float = 15.0,
        open_timeout: float = 10.0,
        max_failures: int | None = None,
        rng: random.Random | None = None,
        connect: Connect | None = None,
    ) -> None:
        if initial_backoff <= 0 or max_backoff < initial_backoff:
            raise ValueError("backoff must be positive and its maximum at least its start")
        self.url = ws_url(base_url, client_id)
        self._initial = initial_backoff
        self._max = max_backoff
        self._open_timeout = open_timeout
        self._max_failures = max_failures
        self._rng = rng or random.Random()
        self._connect: Connect = connect or self._default_connect

    def _default_connect(self, url: str) -> Any:
        # Outputs never come over the socket (only previews, which are skipped): no need for big frames.
        return websockets.connect(url, open_timeout=self._open_timeout, max_size=2**24, ping_interval=20)

    async def events(self) -> AsyncIterator[Event]:
        """Events until the consumer stops (or ``max_failures`` opens in a row fail)."""
        failures = 0
        delay = self._initial
        while True:
            try:
                async with self._connect(self.url) as socket:
                    failures, delay = 0, self._initial
                    yield Connected()
                    async for event in _read(socket):
                        yield event
                reason = "closed by the server"
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                reason = type(exc).__name__
                failures += 1
            yield Disconnected(reason)
            if self._max_failures is not None and failures >= self._max_failures:
                logger.warning("giving up on %s after %d failed connects", self.url, failures)
                return
            await asyncio.sleep(delay * (0.5 + self._rng.random() / 2))
            delay = min(self._max, delay * 2)


async def _read(socket: ClientConnection) -> AsyncIterator[ServerEvent]:
    async for message in socket:
        event = parse_event(message)
        if event is not None:
            yield event
