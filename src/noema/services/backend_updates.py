"""Where a backend's run updates come in.

Its webhooks, what its own sockets observe, and the webhooks deferred while the database was too busy.

Built once in bootstrap with everything recording an update needs, so an entrypoint hands over only
the update (and, for a webhook, the generation's token).
"""

from __future__ import annotations

from datetime import timedelta

from noema.domain.errors import Busy
from noema.domain.generation import Generation
from noema.domain.runs import RunUpdate
from noema.ports import Backend, Clock, GenerationFilter, Metrics, UnitOfWorkFactory
from noema.services.deferred_webhooks import DeferredWebhooks
from noema.services.progress_batches import ProgressBatches
from noema.services.run_updates import record_run_update, record_webhook


class BackendUpdates:
    """Records the updates a backend reports about its runs."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        backend: Backend,
        *,
        metrics: Metrics,
        quiet_for: timedelta,
        batches: ProgressBatches | None = None,
        deferred: DeferredWebhooks | None = None,
    ) -> None:
        self.uow_factory, self.clock, self.backend = uow_factory, clock, backend
        self.metrics, self.quiet_for, self.batches = metrics, quiet_for, batches
        self.deferred = deferred or DeferredWebhooks()

    async def webhook(self, generation_id: str, update: RunUpdate, *, token: str) -> None:
        """Apply a webhook's update (it must carry the generation's token); kept for later when Noema is busy."""
        try:
            await record_webhook(
                self.uow_factory,
                self.clock,
                self.backend,
                generation_id,
                update,
                token=token,
                metrics=self.metrics,
                quiet_for=self.quiet_for,
                batches=self.batches,
            )
        except Busy:
            self.deferred.defer(generation_id, update, token)  # applied when there is room; 503 tells the sender
            raise

    async def close(self) -> None:
        """Wait for the progress batches already taken to be written (before the connections go away)."""
        if self.batches is not None:
            await self.batches.close()

    async def apply_deferred(self) -> int:
        """Apply the webhooks kept while Noema was busy; how many were applied."""
        if not len(self.deferred):
            return 0
        return await self.deferred.apply(
            self.uow_factory, self.clock, self.backend, metrics=self.metrics, quiet_for=self.quiet_for
        )

    async def observed(self, generation_id: str | None, update: RunUpdate) -> Generation | None:
        """Apply what a backend's own background work observed about a run (the ComfyUI sockets).

        Without a generation id the run is found by its run id; None when no generation has it.
        """
        if generation_id is None:
            async with self.uow_factory() as uow:
                found = await uow.generations.search(GenerationFilter(run_id=update.run_id), limit=1, cursor=None)
            if not found.items:
                return None
            generation_id = found.items[0].id
        return await record_run_update(
            self.uow_factory(),
            self.clock,
            generation_id,
            update,
            token=None,
            metrics=self.metrics,
            quiet_for=self.quiet_for,
        )
