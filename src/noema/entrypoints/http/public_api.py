"""The public API at /api/v1, for integrators and the web page (personal API keys)."""

from __future__ import annotations

from fastapi import APIRouter

from noema.entrypoints.http import public_generations, public_payments, public_preferences, public_presets
from noema.entrypoints.http.deps import ClockDep, CurrentAccount, UowDep
from noema.entrypoints.http.schemas import StatusReportOut, status_out
from noema.services import status

PREFIX = "/api/v1"


def public_router() -> APIRouter:
    """Every public route."""
    router = APIRouter(prefix=PREFIX, tags=["public"])
    router.add_api_route("/me/status", me_status, methods=["GET"], response_model=StatusReportOut)
    router.include_router(public_generations.router)
    router.include_router(public_preferences.router)
    router.include_router(public_presets.router)
    router.include_router(public_payments.router)
    return router


async def me_status(account_id: CurrentAccount, uow: UowDep, clock: ClockDep) -> StatusReportOut:
    """Your account id, points, balance, level and live tasks."""
    return status_out(await status.report(uow, account_id, clock.now()))
