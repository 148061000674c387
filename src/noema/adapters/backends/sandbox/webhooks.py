"""Webhook delivery as ComfyDeploy does it, plus the duplicate / reorder / drop faults.

Posts for one run are delivered one after another in the order they were made (unless a fault
says otherwise), each with up to three attempts; posts for different runs go out concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from noema.adapters.backends.sandbox.config import Dice
from noema.adapters.backends.sandbox.runs import RunRecord
from noema.config.sandbox_faults import Fault

logger = logging.getLogger(__name__)

#: The real sender's backoff between its three attempts (it adds a little jitter too).
RETRY_BACKOFF_SECONDS = (0.5, 1.0)
ATTEMPT_TIMEOUT_SECONDS = 10.0


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_and_path(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an absolute http(s) URL without credentials; None for anything else."""
    if any(c.isspace() or c == "\\" or ord(c) < 32 for c in url):
        return None
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parsed.host or parsed.userinfo:
        return None
    return scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS[scheme], parsed.path


def webhook_allowed(url: str, base: str | None) -> bool:
    """Whether a run may post its webhook to ``url``: under ``base`` (same origin, path prefix), never elsewhere."""
    return _under(url, None if base is None else _origin_and_path(base))


def _under(url: str, allowed: tuple[str, str, int, str] | None) -> bool:
    target = _origin_and_path(url)
    if target is None or allowed is None or target[:3] != allowed[:3]:
        return False
    prefix = allowed[3].rstrip("/")
    path = target[3]
    if any(segment in (".", "..") for segment in path.split("/")):
        return False
    return not prefix or path == prefix or path.startswith(prefix + "/")


def webhook_payload(
    record: RunRecord, *, event_type: str = "run.updated", outputs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The body ComfyDeploy posts to a run's webhook (reference §A.7)."""
    return {
        "event_type": event_type,
        "status": record.status.value,
        "live_status": record.live_status,
        "progress": record.progress,
        "run_id": record.id,
        "outputs": list(record.outputs if outputs is None else outputs),
    }


@dataclass
class _Channel:
    """The delivery state of one run's webhook, kept only while a post is pending or held back."""

    last: asyncio.Task[None] | None = None
    #: a status post held back by the reorder fault, with how many copies to send
    held: tuple[dict[str, Any], int] | None = None


class WebhookSender:
    """Sends run webhooks in the background; ``close`` cancels what is still pending."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        dice: Dice,
        *,
        allowed_base: str | None = None,
        backoff: Sequence[float] = RETRY_BACKOFF_SECONDS,
        timeout: float = ATTEMPT_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._dice = dice
        self._allowed = None if allowed_base is None else _origin_and_path(allowed_base)
        self._backoff = tuple(backoff)
        self._timeout = timeout
        self._channels: dict[str, _Channel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # Jitter is not a fault: keep it off the fault dice so seeded tests stay reproducible.
        self._jitter = random.Random()

    def send(self, url: str, payload: dict[str, Any], *, status_change: bool, final: bool) -> None:
        """Queue one post for a run, applying the webhook faults (nothing once closed: its client is gone)."""
        if self._closed:
            return
        run_id = str(payload["run_id"])
        channel = self._channels.setdefault(run_id, _Channel())
        copies = self._copies()
        if status_change and not final and channel.held is None and self._dice.hit(Fault.WEBHOOK_REORDER):
            channel.held = (payload, copies)
        else:
            self._enqueue(run_id, channel, url, payload, copies)
            if status_change and channel.held is not None:
                held, held_copies = channel.held
                channel.held = None
                self._enqueue(run_id, channel, url, held, held_copies)
        if final or (channel.last is None and channel.held is None):
            # Nothing follows a terminal post, and an idle channel has nothing to order: forget the run.
            self._channels.pop(run_id, None)

    def _copies(self) -> int:
        if self._dice.hit(Fault.WEBHOOK_DROP):
            return 0
        return 2 if self._dice.hit(Fault.WEBHOOK_DUPLICATE) else 1

    def _enqueue(self, run_id: str, channel: _Channel, url: str, payload: dict[str, Any], copies: int) -> None:
        for _ in range(copies):
            task = asyncio.create_task(self._after(channel.last, url, payload))
            channel.last = task
            self._tasks.add(task)
            task.add_done_callback(lambda done: self._done(run_id, channel, done))

    def _done(self, run_id: str, channel: _Channel, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if channel.last is task:
            channel.last = None
            if channel.held is None and self._channels.get(run_id) is channel:
                # The run's posts are all out: hold nothing for it until it sends again.
                del self._channels[run_id]

    def pending_runs(self) -> int:
        """How many runs have a post pending or held back."""
        return len(self._channels)

    async def _after(self, previous: asyncio.Task[None] | None, url: str, payload: dict[str, Any]) -> None:
        if previous is not None:
            # asyncio.wait never raises for the awaited task, so one failed post cannot block the next.
            await asyncio.wait([previous])
        await self.deliver(url, payload)

    async def deliver(self, url: str, payload: dict[str, Any]) -> bool:
        """Post once with retries; True when the receiver answered 2xx. URLs outside the allowed base get nothing."""
        if not _under(url, self._allowed):
            # A run stored before the rule existed may name any URL: it is never contacted.
            logger.warning("sandbox webhook for run %s not sent: its URL is not allowed", payload.get("run_id"))
            return False
        attempts = len(self._backoff) + 1
        for attempt in range(attempts):
            try:
                response = await self._client.post(url, json=payload, timeout=self._timeout, follow_redirects=False)
                if response.is_success:
                    return True
                reason = f"HTTP {response.status_code}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                reason = type(exc).__name__
            if attempt < attempts - 1:
                await asyncio.sleep(self._backoff[attempt] + self._jitter.uniform(0, 0.1))
        logger.warning(
            "sandbox webhook for run %s (%s) gave up after %d attempts: %s",
            payload.get("run_id"),
            payload.get("status"),
            attempts,
            reason,
        )
        return False

    async def wait_idle(self) -> None:
        """Wait until every queued post has been delivered or given up."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        """Cancel every pending post; later posts are dropped (a run that ends now is found by polling)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._channels.clear()
