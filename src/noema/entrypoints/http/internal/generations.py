"""Internal API: generations on behalf of a platform, and reading them with filters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from noema.domain.accounts import parse_platform
from noema.domain.delivery import DeliveryStatus
from noema.domain.errors import InvalidInput
from noema.domain.generation import GenerationStatus
from noema.domain.ids import parse_id
from noema.domain.tools import ACCOUNT, ADMIN_CLIENT
from noema.entrypoints.http.deps import ClientDep, GenerationsDep, PagingDep, UowDep
from noema.entrypoints.http.generation_schemas import GenerationOut, InternalGenerationIn, generation_out
from noema.entrypoints.http.schemas import ApiModel, PageOut, page_out
from noema.ports import GenerationFilter
from noema.services import history, sessions
from noema.services.generations import GenerationRequest

router = APIRouter(tags=["generations"])


class GenerationUpdateIn(ApiModel):
    """What may change from outside: cancelling, and free-form metadata. Progress comes from the backend."""

    status: str | None = None
    metadata: dict[str, Any] | None = None


@router.post("/generations", response_model=GenerationOut, status_code=201)
async def create_generation(
    body: InternalGenerationIn, client: ClientDep, uow: UowDep, generations: GenerationsDep
) -> GenerationOut:
    """Run a tool for an account (hold, create, submit), delivering to the given platform context.

    Only the admin client may run hidden and admin-only tools; a platform client acts as the account.
    """
    account_id = parse_id(body.master_account_id, what="masterAccountId")
    platform = parse_platform(body.platform).value
    if body.session_id:
        await sessions.get(uow, parse_id(body.session_id, what="sessionId"))
    generation = await generations.request(
        GenerationRequest(
            account_id=account_id,
            tool_ref=body.tool_id,
            inputs=body.inputs,
            platform=platform,
            delivery=body.delivery_context,
            session_id=body.session_id,
            caller=ADMIN_CLIENT if client.is_admin else ACCOUNT,
        )
    )
    return generation_out(generation)


@router.get("/generations/{generation_id}", response_model=GenerationOut)
async def get_generation(generation_id: str, uow: UowDep) -> GenerationOut:
    """One generation."""
    return generation_out(await history.get(uow, parse_id(generation_id, what="generationId")))


@router.put("/generations/{generation_id}", response_model=GenerationOut)
async def update_generation(
    generation_id: str, body: GenerationUpdateIn, uow: UowDep, generations: GenerationsDep
) -> GenerationOut:
    """Cancel (status "cancelled"); other status changes only ever come from the backend."""
    gid = parse_id(generation_id, what="generationId")
    if body.status is not None and body.status != GenerationStatus.CANCELLED.value:
        raise InvalidInput(
            "Only status 'cancelled' may be set; the rest of the lifecycle comes from the backend.",
            details={"field": "status"},
        )
    if body.metadata is not None:
        raise InvalidInput("metadata is kept by the lifecycle and cannot be replaced.", details={"field": "metadata"})
    if body.status is not None:
        return generation_out(await generations.cancel(gid, account_id=None, reason="Cancelled by an operator."))
    return generation_out(await history.get(uow, gid))


def _statuses(raw: str | None) -> tuple[GenerationStatus, ...]:
    if not raw:
        return ()
    try:
        return tuple(GenerationStatus(s.strip()) for s in raw.split(",") if s.strip())
    except ValueError:
        raise InvalidInput(f"Statuses are: {', '.join(s.value for s in GenerationStatus)}.") from None


@router.get("/generations", response_model=PageOut[GenerationOut])
async def list_generations(
    uow: UowDep,
    page: PagingDep,
    status_in: Annotated[str | None, Query(description="Comma-separated statuses.", max_length=300)] = None,
    status_ne: Annotated[
        str | None, Query(description="Comma-separated statuses to leave out.", max_length=300)
    ] = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="deliveryStatus")] = None,
    run_id: Annotated[str | None, Query(alias="metadata.run_id", max_length=100)] = None,
    master_account_id: Annotated[str | None, Query(alias="masterAccountId", max_length=64)] = None,
) -> PageOut[GenerationOut]:
    """Generations by status, delivery status, run id or account; newest first."""
    where = GenerationFilter(
        account_id=parse_id(master_account_id, what="masterAccountId") if master_account_id else None,
        status_in=_statuses(status_in),
        status_not_in=_statuses(status_ne),
        run_id=run_id,
        delivery_status=delivery_status,
    )
    result = await history.search(uow, where, limit=page.limit, cursor=page.cursor)
    return page_out(result, generation_out)


@router.get("/users/{account_id}/generations", response_model=PageOut[GenerationOut])
async def user_generations(account_id: str, uow: UowDep, page: PagingDep) -> PageOut[GenerationOut]:
    """An account's generations, newest first."""
    where = GenerationFilter(account_id=parse_id(account_id, what="masterAccountId"))
    result = await history.search(uow, where, limit=page.limit, cursor=page.cursor)
    return page_out(result, generation_out)


@router.get("/sessions/{session_id}/generations", response_model=PageOut[GenerationOut])
async def session_generations(session_id: str, uow: UowDep, page: PagingDep) -> PageOut[GenerationOut]:
    """A session's generations, newest first."""
    sid = parse_id(session_id, what="sessionId")
    await sessions.get(uow, sid)
    result = await history.search(uow, GenerationFilter(session_id=sid), limit=page.limit, cursor=page.cursor)
    return page_out(result, generation_out)
