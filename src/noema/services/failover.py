"""Trying the next deployment when one cannot take a run: which failures qualify, and moving the row.

A generation is moved only while it is still ``pending`` (no backend has its run), and before the
next backend is called, so the rate it is charged at is always that of the deployment that ran.
"""

from __future__ import annotations

from datetime import datetime

from noema.domain.errors import (
    BackendOutcomeUnknown,
    BackendRejected,
    BackendUnavailable,
    ExternalServiceError,
    InvalidInput,
    InvalidTransition,
)
from noema.domain.generation import Generation
from noema.domain.tools import Tool
from noema.ports import UnitOfWork


def worth_another(exc: ExternalServiceError | InvalidInput) -> bool:
    """Whether another deployment may succeed: this one is down, overloaded, failing or gone.

    Never after an unknown outcome: the first backend may have started the run, and a second
    deployment would start (and bill) another one. The generation fails instead; should the first
    run exist after all, its webhook finds the generation ended and is ignored.
    """
    if isinstance(exc, BackendOutcomeUnknown):
        return False
    if isinstance(exc, BackendUnavailable):
        return True
    return isinstance(exc, BackendRejected) and (exc.status >= 500 or exc.status in (404, 429))


async def move_to(uow: UnitOfWork, generation_id: str, tool: Tool, now: datetime) -> Generation | None:
    """Point a pending generation at another tool's deployment and price (committed before the submit).

    None when it is no longer pending: the failing backend made the run after all (its webhook came
    first), so that run is followed and no other is started.
    """
    async with uow:
        g = await uow.generations.get(generation_id, for_update=True)
        if g is None:
            return None
        try:
            g.retarget(tool, now)
        except InvalidTransition:
            return None
        await uow.commit()
        return g
