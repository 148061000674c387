"""Internal API: a user's status report, and the service's own status."""

from __future__ import annotations

from fastapi import APIRouter

from noema import __version__
from noema.domain.ids import parse_id
from noema.entrypoints.http.deps import ClockDep, StartedAtDep, UowDep
from noema.entrypoints.http.schemas import ApiModel, StatusReportOut, status_out
from noema.services import status

router = APIRouter(tags=["status"])


class ServiceStatusOut(ApiModel):
    status: str
    uptime: float
    start_time: str
    version: str


@router.get("/users/{account_id}/status-report", response_model=StatusReportOut)
async def status_report(account_id: str, uow: UowDep, clock: ClockDep) -> StatusReportOut:
    """Points, balance, level and live tasks."""
    return status_out(await status.report(uow, parse_id(account_id, what="masterAccountId"), clock.now()))


@router.get("/internal/status", response_model=ServiceStatusOut)
async def service_status(clock: ClockDep, started_at: StartedAtDep) -> ServiceStatusOut:
    """Up, since when, which version."""
    now = clock.now()
    return ServiceStatusOut(
        status="ok",
        uptime=round((now - started_at).total_seconds(), 3),
        start_time=started_at.isoformat(),
        version=__version__,
    )
