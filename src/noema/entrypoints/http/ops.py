"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from noema.domain.errors import Forbidden, Unauthenticated
from noema.entrypoints.http.deps import MetricsDep, SchemaCheckDep, SettingsDep, UowDep

router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(schema: SchemaCheckDep, response: Response) -> dict[str, str]:
    """The database answers and its schema is at the newest migration."""
    problem, current = await schema.problem()
    if problem is not None:
        response.status_code = 503
        return {"status": "unavailable", "reason": problem}
    return {"status": "ready", "migration": current or ""}


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics_allowed(request: Request, settings: SettingsDep) -> None:
    """/metrics shows money totals: a Bearer NOEMA_METRICS_TOKEN when one is set, else loopback clients only."""
    secret = settings.metrics_token
    if secret is not None and secret.get_secret_value():
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            raise Unauthenticated("/metrics needs Authorization: Bearer <NOEMA_METRICS_TOKEN>.")
        return
    # Behind a proxy uvicorn puts the forwarded client address here (proxy_headers), not the proxy's.
    if not _is_loopback(request.client.host if request.client else None):
        raise Forbidden("/metrics is served only to this machine; set NOEMA_METRICS_TOKEN to scrape it from elsewhere.")


@router.get("/metrics", dependencies=[Depends(metrics_allowed)])
async def metrics(uow: UowDep, prometheus: MetricsDep) -> Response:
    """Prometheus text format; database totals are read at scrape time, so every replica reports the truth."""
    async with uow:
        by_status = await uow.generations.count_by_status()
        wallets = await uow.accounts.wallets()
        written_off, _count = await uow.generations.written_off()
    prometheus.snapshot(
        generations_by_status=by_status,
        balance_nanos=sum(b for b, _ in wallets.values()),
        held_nanos=sum(h for _, h in wallets.values()),
        written_off_nanos=written_off,
    )
    return Response(generate_latest(prometheus.registry), media_type=CONTENT_TYPE_LATEST)
