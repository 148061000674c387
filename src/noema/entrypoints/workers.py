"""Background workers: small loops that call one service function each, and survive its failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from noema.bootstrap import Container
from noema.services import sessions

log = structlog.get_logger(__name__)


async def every(name: str, seconds: float, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` every ``seconds`` until cancelled; an error is logged, never fatal to the loop."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker_step_failed", worker=name)
        await asyncio.sleep(seconds)


def worker_loops(c: Container) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
    """Every worker loop of this process, by name."""

    async def expire_sessions() -> None:
        await every(
            "session_expiry",
            30,
            lambda: sessions.expire_inactive(c.uow(), c.clock, timeout=c.session_timeout),
        )

    return {"session_expiry": expire_sessions}


class Workers:
    """Starts the loops as tasks and stops them."""

    def __init__(self, c: Container) -> None:
        self._c = c
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start every loop."""
        for name, loop in worker_loops(self._c).items():
            self._tasks.append(asyncio.create_task(loop(), name=f"noema-{name}"))

    async def stop(self) -> None:
        """Cancel every loop and wait for it."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
