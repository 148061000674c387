"""Background workers: small loops that each call one service function, and survive its failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from noema.adapters.db.outbox_signal import OutboxSignal
from noema.bootstrap import Container
from noema.services import delivery, platform_updates, reconcile, sessions

log = structlog.get_logger(__name__)
#: The delivery worker wakes when an outbox row is committed; this poll is only the backstop.
DELIVERY_BACKSTOP_SECONDS = 1.0
#: Rows being sent (or queued behind their chat's earlier ones) at once, across all chats; never more
#: than half the connection pool, so deliveries cannot take the connections requests need.
DELIVERY_IN_FLIGHT = 64


def delivery_in_flight(pool_size: int) -> int:
    """How many rows the delivery worker may have in flight with a pool of ``pool_size`` connections."""
    return max(2, min(DELIVERY_IN_FLIGHT, pool_size // 2))


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


async def _expire_sessions(c: Container) -> None:
    await every("session_expiry", 30, lambda: sessions.expire_inactive(c.uow(), c.clock, timeout=c.session_timeout))


async def _deliver(c: Container) -> None:
    """Send due outbox rows whenever one is committed, and at least every backstop poll."""
    signal = c.uow.signal or OutboxSignal()  # one nobody notifies is a plain poll
    dispatcher = delivery.Dispatcher(
        c.uow,
        c.clock,
        c.notifiers,
        metrics=c.metrics,
        max_in_flight=delivery_in_flight(c.settings.db_pool_size),
        on_free=signal.notify,
    )
    try:
        while True:
            try:
                claimed = await dispatcher.pump()
            except Exception:
                log.exception("worker_step_failed", worker="delivery")
                claimed = 0
            if claimed == 0 or dispatcher.room <= 0:  # else more may be due at once: claim again
                await signal.wait(DELIVERY_BACKSTOP_SECONDS)
    finally:
        await dispatcher.close()


async def _apply_deferred_webhooks(c: Container) -> None:
    await every("deferred_webhooks", 1.0, c.backend_updates.apply_deferred)


async def _listen_for_outbox(c: Container) -> None:
    if c.uow.signal is not None:
        await c.uow.signal.listen(c.engine.url)


async def _reconcile_runs(c: Container) -> None:
    poll_every, quiet = c.limits.poll_every, c.limits.quiet_for
    await every(
        "reconcile",
        min(poll_every.total_seconds(), 5.0),
        lambda: reconcile.reconcile_due(
            c.uow, c.clock, c.backend, metrics=c.metrics, poll_every=poll_every, quiet_for=quiet
        ),
    )


async def _forget_answered_updates(c: Container) -> None:
    await every("forget_answered_updates", 3600, lambda: platform_updates.forget_answered(c.uow, c.clock))


async def _refresh_catalog(c: Container) -> None:
    async def step() -> None:
        if c.catalog.is_stale():
            await c.catalog.refresh()

    await every("catalog_refresh", min(30.0, c.settings.catalog_ttl_seconds), step)


def worker_loops(c: Container) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
    """Every worker loop of this process, by name."""
    loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "session_expiry": lambda: _expire_sessions(c),
        "delivery": lambda: _deliver(c),
        "reconcile": lambda: _reconcile_runs(c),
        "catalog_refresh": lambda: _refresh_catalog(c),
        "deferred_webhooks": lambda: _apply_deferred_webhooks(c),
        "forget_answered_updates": lambda: _forget_answered_updates(c),
    }
    if c.engine.dialect.name == "postgresql":  # other replicas' commits wake this one's delivery worker
        loops["outbox_listen"] = lambda: _listen_for_outbox(c)
    return loops


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
