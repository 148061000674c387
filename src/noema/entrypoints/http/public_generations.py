"""Public API: tools and generations, with live progress over Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from noema.domain.errors import InvalidInput
from noema.domain.generation import GenerationStatus
from noema.domain.ids import parse_id
from noema.domain.pricing import estimate_nanos
from noema.domain.reruns import plan_rerun
from noema.domain.tools import Tool
from noema.entrypoints.http.deps import (
    CatalogDep,
    CurrentAccount,
    GenerationsDep,
    LiveDep,
    PagingDep,
    UowDep,
)
from noema.entrypoints.http.generation_schemas import GenerationIn, GenerationOut, ToolOut, generation_out, tool_out
from noema.entrypoints.http.schemas import PageOut, page_out
from noema.ports import GenerationFilter, UnitOfWork
from noema.services import history
from noema.services.generations import GenerationRequest
from noema.services.live_updates import LiveUpdates

router = APIRouter(tags=["generations"])
#: How often a stream re-reads the generation from the database (the hub makes most updates instant).
POLL_SECONDS = 1.0


def public_tool(t: Tool) -> ToolOut:
    """A tool as integrators see it, with its current estimate."""
    estimate = estimate_nanos(t) if t.enabled and t.rate_nanos_per_second is not None else None
    return tool_out(t, estimate)


@router.get("/tools", response_model=list[ToolOut])
async def list_tools(_: CurrentAccount, catalog: CatalogDep) -> list[ToolOut]:
    """Every public tool; disabled ones say why."""
    return [public_tool(t) for t in await catalog.listed()]


@router.get("/tools/{tool_id}", response_model=ToolOut)
async def get_tool(tool_id: str, _: CurrentAccount, catalog: CatalogDep) -> ToolOut:
    """One tool, by id or command name (hidden and admin-only ones are as unknown as missing ones)."""
    return public_tool(await catalog.find(tool_id[:100]))


@router.post("/generations", response_model=GenerationOut, status_code=202)
async def create_generation(
    body: GenerationIn,
    account_id: CurrentAccount,
    generations: GenerationsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> GenerationOut:
    """Run a tool. The same Idempotency-Key returns the first generation instead of starting another."""
    generation = await generations.request(
        GenerationRequest(
            account_id=account_id,
            tool_ref=body.tool_id,
            inputs=body.inputs,
            platform="api",
            idempotency_key=idempotency_key or None,
        )
    )
    return generation_out(generation)


@router.post("/generations/{generation_id}/rerun", response_model=GenerationOut, status_code=202)
async def rerun_generation(
    generation_id: str,
    account_id: CurrentAccount,
    uow: UowDep,
    catalog: CatalogDep,
    generations: GenerationsDep,
    new_seed: Annotated[bool, Query(alias="newSeed", description="Draw fresh random seeds")] = False,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> GenerationOut:
    """Run one of your generations again: its recorded seed gives the same result, ``newSeed=true`` a new one."""
    earlier = await history.get(uow, parse_id(generation_id, what="generationId"), account_id=account_id)
    plan = plan_rerun(await catalog.find(earlier.tool_id), earlier, new_seed=new_seed)
    missing = plan.missing_file(given=())
    if missing is not None:
        raise InvalidInput(
            f"That run's {missing.name} was an uploaded file; start a new generation with the file again.",
            details={"field": missing.name},
        )
    generation = await generations.request(
        GenerationRequest(
            account_id=account_id,
            tool_ref=plan.tool.id,
            inputs=plan.inputs,
            platform="api",
            idempotency_key=idempotency_key,
        )
    )
    return generation_out(generation)


@router.get("/generations", response_model=PageOut[GenerationOut])
async def list_generations(account_id: CurrentAccount, uow: UowDep, page: PagingDep) -> PageOut[GenerationOut]:
    """Your generations, newest first."""
    result = await history.search(uow, GenerationFilter(account_id=account_id), limit=page.limit, cursor=page.cursor)
    return page_out(result, generation_out)


@router.get("/generations/{generation_id}", response_model=GenerationOut)
async def get_generation(generation_id: str, account_id: CurrentAccount, uow: UowDep) -> GenerationOut:
    """One of your generations."""
    gid = parse_id(generation_id, what="generationId")
    return generation_out(await history.get(uow, gid, account_id=account_id))


@router.post("/generations/{generation_id}/cancel", response_model=GenerationOut)
async def cancel_generation(
    generation_id: str, account_id: CurrentAccount, generations: GenerationsDep
) -> GenerationOut:
    """Stop a running generation: the GPU seconds used are charged, the rest of the hold released."""
    gid = parse_id(generation_id, what="generationId")
    return generation_out(await generations.cancel(gid, account_id=account_id))


@router.get(
    "/generations/{generation_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def generation_events(
    generation_id: str, account_id: CurrentAccount, uow: UowDep, live: LiveDep, request: Request
) -> Response:
    """Server-Sent Events: ``progress`` while it runs, then one ``result`` (or ``failure``) and the end."""
    gid = parse_id(generation_id, what="generationId")
    await history.get(uow, gid, account_id=account_id)  # 404 before the stream starts
    return stream_response(uow, live, gid, request)


def stream_response(uow: UnitOfWork, live: LiveUpdates, gid: str, request: Request) -> StreamingResponse:
    """The SSE response for one generation (shared with the web page)."""
    return StreamingResponse(
        _stream(uow, live, gid, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _frame(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def _stream(uow: UnitOfWork, live: LiveUpdates, gid: str, request: Request) -> AsyncIterator[str]:
    queue = live.subscribe(gid)
    last: str | None = None
    try:
        while not await request.is_disconnected():
            generation = await history.get(uow, gid)
            body = generation_out(generation).model_dump(mode="json", by_alias=True)
            if generation.is_terminal:
                kind = "result" if generation.status is GenerationStatus.SUCCEEDED else "failure"
                yield _frame(kind, body)
                return
            if json.dumps(body, sort_keys=True) != last:
                last = json.dumps(body, sort_keys=True)
                yield _frame("progress", body)
            try:
                await asyncio.wait_for(queue.get(), timeout=POLL_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
    finally:
        live.unsubscribe(gid, queue)
