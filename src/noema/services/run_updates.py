"""Applying what the backend says about a run: webhooks and polls go through the same door."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from noema.domain.errors import ExternalServiceError, Forbidden, GenerationNotFound, InvalidTransition
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.runs import RunUpdate
from noema.ports import Backend, Clock, Metrics, UnitOfWork, UnitOfWorkFactory
from noema.services import change_handlers
from noema.services.change_handlers import Changed

if TYPE_CHECKING:
    from noema.services.progress_batches import ProgressBatches

log = structlog.get_logger(__name__)


BAD_WEBHOOK = "That webhook token is not valid for this generation."


def hash_token(token: str) -> str:
    """How a webhook token is stored (the plain token only ever lives in the webhook URL)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(generation: Generation, token: str) -> bool:
    """Constant-time check of a webhook's token."""
    return hmac.compare_digest(hash_token(token), generation.webhook_token_hash)


async def record_webhook(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    backend: Backend,
    generation_id: str,
    update: RunUpdate,
    *,
    token: str,
    metrics: Metrics,
    quiet_for: timedelta,
    batches: ProgressBatches | None = None,
) -> Generation:
    """Apply a backend webhook: checked against the generation's token, and an end confirmed with the backend.

    An update that does not end the run goes into the next shared transaction of ``batches`` when given.

    A webhook body is only a hint (anyone holding the URL can post one); the update that ends a run
    decides the money, so it is replaced by the backend's own answer for that run, with the
    backend's timestamps. When the backend cannot be asked, the webhook is applied as it came.
    """
    if update.status is not None and update.status.is_terminal:
        # Checked before asking the backend, so a stranger cannot make Noema call it; progress
        # updates skip this read (record_run_update checks the token under the row lock anyway).
        async with uow_factory() as tx:
            known = await tx.generations.get(generation_id)
        if known is None or not token_matches(known, token):
            # One answer for "no such generation" and "wrong token": a webhook caller learns no ids.
            raise Forbidden(BAD_WEBHOOK)
        if not known.is_terminal and known.run_id in (None, update.run_id):
            update = await _confirm(backend, known, update, metrics)
    elif batches is not None:
        return await batches.apply(generation_id, update, token=token)
    return await record_run_update(
        uow_factory(), clock, generation_id, update, token=token, metrics=metrics, quiet_for=quiet_for
    )


async def _confirm(backend: Backend, generation: Generation, update: RunUpdate, metrics: Metrics) -> RunUpdate:
    try:
        confirmed = await backend.get_run(update.run_id)
    except ExternalServiceError as exc:
        metrics.backend_error("confirm")
        log.warning("webhook_unconfirmed", generation_id=generation.id, run_id=update.run_id[:64], error=str(exc)[:200])
        return update
    if confirmed.run_id != update.run_id:
        return update
    if confirmed.status != update.status:
        log.warning(
            "webhook_contradicted",
            generation_id=generation.id,
            run_id=update.run_id[:64],
            webhook_status=update.status.value if update.status else None,
            backend_status=confirmed.status.value if confirmed.status else None,
        )
    return confirmed


async def record_run_update(
    uow: UnitOfWork,
    clock: Clock,
    generation_id: str,
    update: RunUpdate,
    *,
    token: str | None,
    metrics: Metrics,
    quiet_for: timedelta,
) -> Generation:
    """Apply one update under the generation's row lock; settle and queue delivery if it ended.

    ``token`` is the webhook's per-generation token (None for our own polls). ``quiet_for`` is how
    long the run may stay silent before the reconciler polls it.
    """
    async with uow:
        generation = await uow.generations.get(generation_id, for_update=True)
        if token is not None and (generation is None or not token_matches(generation, token)):
            # One answer for "no such generation" and "wrong token": a webhook caller learns no ids.
            raise Forbidden(BAD_WEBHOOK)
        if generation is None:
            raise GenerationNotFound()
        await apply_update(uow, generation, update, clock.now(), metrics=metrics, quiet_for=quiet_for)
        await uow.commit()
        return generation


async def apply_update(
    uow: UnitOfWork, generation: Generation, update: RunUpdate, now: datetime, *, metrics: Metrics, quiet_for: timedelta
) -> None:
    """Apply one update to a generation locked in ``uow`` (not committed): state, poll time, money, outbox."""
    try:
        changes = generation.apply(update, now)
    except InvalidTransition:
        # A second run for the same generation (e.g. a retried submit): never let it touch this one.
        log.warning("foreign_run_ignored", generation_id=generation.id, run_id=update.run_id[:64])
        return
    if not generation.is_terminal:
        # Polled when it goes quiet, and at its time limit or when its cost reaches the hold, whichever is first.
        generation.next_poll_at = min(now + quiet_for, generation.check_at())
    await change_handlers.handle(changes, Changed(uow, generation, now, metrics))


async def finish(
    uow: UnitOfWork,
    clock: Clock,
    generation_id: str,
    status: GenerationStatus,
    *,
    reason: str,
    metrics: Metrics,
    at_hold: bool = False,
) -> Generation:
    """End a generation from our side (submit failed, user cancel, time limit, hold used up) and settle it."""
    async with uow:
        generation = await uow.generations.get(generation_id, for_update=True)
        if generation is None:
            raise GenerationNotFound()
        now = clock.now()
        if at_hold:
            changes = generation.stop_at_hold(now, reason=reason)
        else:
            changes = generation.finish(status, now, reason=reason)
        await change_handlers.handle(changes, Changed(uow, generation, now, metrics))
        await uow.commit()
        return generation
