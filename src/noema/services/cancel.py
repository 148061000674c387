"""Cancelling a live generation: stop it at the backend, charge what was used, release the rest."""

from __future__ import annotations

import structlog

from noema.domain.errors import ExternalServiceError, GenerationNotFound, InvalidTransition
from noema.domain.generation import Generation, GenerationStatus
from noema.ports import Backend, Clock, Metrics, UnitOfWorkFactory
from noema.services import run_updates

log = structlog.get_logger(__name__)


async def cancel(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    backend: Backend,
    generation_id: str,
    *,
    account_id: str | None,
    metrics: Metrics,
    reason: str = "Cancelled by you.",
) -> Generation:
    """Cancel the generation (``account_id`` None: an operator may cancel anyone's)."""
    async with uow_factory() as tx:
        generation = await tx.generations.get(generation_id, for_update=True)
        if generation is None or (account_id is not None and generation.account_id != account_id):
            raise GenerationNotFound()
        if generation.is_terminal:
            raise InvalidTransition(f"This generation has already {generation.status.value.replace('_', ' ')}.")
        generation.cancel_requested = True
        await tx.commit()
    if generation.run_id:
        try:
            await backend.cancel_run(generation.run_id)
        except ExternalServiceError as exc:
            # The user asked to stop paying: settle now; a late success from the backend is absorbed.
            metrics.backend_error("cancel")
            log.warning("backend_cancel_failed", generation_id=generation.id, error=str(exc)[:200])
    return await run_updates.finish(
        uow_factory(), clock, generation.id, GenerationStatus.CANCELLED, reason=reason, metrics=metrics
    )
