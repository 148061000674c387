"""The internal API at /internal/v1/data, for the operator's other services."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from noema.entrypoints.http.deps import internal_client
from noema.entrypoints.http.internal import (
    economy,
    events,
    generations,
    loras,
    payments,
    presets,
    sessions,
    status,
    users,
)

PREFIX = "/internal/v1/data"


def internal_router() -> APIRouter:
    """Every internal route, behind X-Internal-Client-Key."""
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(internal_client)])
    for module in (users, sessions, events, economy, generations, loras, presets, status, payments):
        router.include_router(module.router)
    return router
