"""Wakes the delivery worker the moment an outbox row is committed, instead of at its next poll.

In this process the unit of work calls ``notify()`` after a commit that wrote a pending delivery.
Other replicas hear it through PostgreSQL: the same transaction runs ``pg_notify`` (delivered only
if it commits), and each process ``LISTEN``s on its own connection. The worker's poll stays as the
backstop for rows that fall due later (retries, throttled progress edits) and a lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import URL

log = structlog.get_logger(__name__)

CHANNEL = "noema_outbox"
NOTIFY_SQL = f"SELECT pg_notify('{CHANNEL}', '')"


class OutboxSignal:
    """An in-process wake-up for the delivery worker."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """A pending delivery was committed: wake the worker now."""
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Until notified or ``timeout`` seconds pass; True if notified."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True

    async def listen(self, url: URL, *, retry_seconds: float = 5.0) -> None:
        """Relay PostgreSQL notifications on ``CHANNEL`` to ``notify()`` until cancelled; reconnects."""
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                await self._relay(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("outbox_listen_failed", error=type(exc).__name__)
            await asyncio.sleep(retry_seconds)

    async def _relay(self, dsn: str) -> None:
        """Listen on one connection until it is lost."""
        connection = await asyncpg.connect(dsn)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _c: lost.set())
            await connection.add_listener(CHANNEL, self._on_notification)
            self.notify()  # rows committed while nobody listened
            await lost.wait()
            log.warning("outbox_listen_lost")
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)

    def _on_notification(self, *_args: Any) -> None:
        self.notify()
