"""Backend webhooks that came while Noema was too busy to apply them, applied a moment later.

A webhook that finds every database connection in use is answered 503 (a backend that retries
sends it again) and also kept here, one per generation, to be applied by a worker when there is
room. Nothing here is trusted: the token is checked when it is applied. If this process stops
first, or the line is full, the reconciler's poll still finds the run; the log says which.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from noema.domain.errors import Busy, NoemaError
from noema.domain.runs import RunUpdate
from noema.ports import Backend, Clock, Metrics, UnitOfWorkFactory
from noema.services.run_updates import record_webhook

log = structlog.get_logger(__name__)


class DeferredWebhooks:
    """At most ``limit`` webhooks waiting, the latest one per generation (an end is never replaced by progress)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._waiting: dict[str, tuple[RunUpdate, str]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def defer(self, generation_id: str, update: RunUpdate, token: str) -> bool:
        """Keep it for later; False (and a log line) when the line is full and only the poll will find the run."""
        kept = self._waiting.get(generation_id)
        if kept is not None and _ends(kept[0]) and not _ends(update):
            return True  # the end already waiting says more than this progress
        if kept is None and len(self._waiting) >= self.limit:
            log.warning("webhook_left_to_poll", generation_id=generation_id, reason="the deferred line is full")
            return False
        self._waiting[generation_id] = (update, token)
        log.info("webhook_deferred", generation_id=generation_id)
        return True

    async def apply(
        self, uow_factory: UnitOfWorkFactory, clock: Clock, backend: Backend, *, metrics: Metrics, quiet_for: timedelta
    ) -> int:
        """Apply what waits, oldest first, until Noema is busy again; returns how many were applied."""
        applied = 0
        for generation_id in list(self._waiting):
            update, token = self._waiting[generation_id]
            try:
                await record_webhook(
                    uow_factory,
                    clock,
                    backend,
                    generation_id,
                    update,
                    token=token,
                    metrics=metrics,
                    quiet_for=quiet_for,
                )
            except Busy:
                return applied  # still no room: the rest wait for the next round
            except NoemaError as exc:  # a wrong token, a generation gone: dropped, as it would have been then
                log.warning("webhook_dropped_late", generation_id=generation_id, code=exc.code)
            else:
                applied += 1
                log.info("webhook_applied_late", generation_id=generation_id)
            if self._waiting.get(generation_id) == (update, token):  # unless a newer one came meanwhile
                del self._waiting[generation_id]
        return applied


def _ends(update: RunUpdate) -> bool:
    return update.status is not None and update.status.is_terminal
