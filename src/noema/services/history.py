"""Reading generations: one, a page of them, an account's live tasks."""

from __future__ import annotations

from datetime import datetime

from noema.domain.errors import GenerationNotFound
from noema.domain.generation import Generation
from noema.ports import GenerationFilter, Page, UnitOfWork


async def get(uow: UnitOfWork, generation_id: str, *, account_id: str | None = None) -> Generation:
    """One generation; with ``account_id``, only if it is that account's."""
    async with uow:
        generation = await uow.generations.get(generation_id)
    if generation is None or (account_id is not None and generation.account_id != account_id):
        raise GenerationNotFound()
    return generation


async def search(uow: UnitOfWork, where: GenerationFilter, *, limit: int, cursor: str | None) -> Page[Generation]:
    """Generations matching the filter, newest first."""
    async with uow:
        return await uow.generations.search(where, limit=limit, cursor=cursor)


def cost_so_far(generation: Generation, now: datetime) -> int:
    """What the run has cost up to now (its final cost once settled)."""
    if generation.settled_at is not None or generation.started_at is None:
        return generation.cost_nanos
    ms = max(0, int((now - generation.started_at).total_seconds() * 1000))
    return generation.price.used(ms)
