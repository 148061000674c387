"""The tools page, running a tool, the live generation card, and the history gallery."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from noema.adapters.platforms.media import download_name, settings_used
from noema.adapters.platforms.web import templates
from noema.domain.errors import GenerationNotFound, InvalidTransition, NoemaError
from noema.domain.generation import Generation
from noema.domain.ids import parse_id, short_id
from noema.domain.inputs import MAX_UPLOAD_BYTES, at_field, stands_for_a_file
from noema.domain.preferences import settable
from noema.domain.reruns import plan_rerun
from noema.domain.tools import Tool
from noema.entrypoints.http.deps import (
    CatalogDep,
    ClockDep,
    GenerationsDep,
    LiveDep,
    MediaFetcherDep,
    UowDep,
)
from noema.entrypoints.http.errors import status_of
from noema.entrypoints.http.public_generations import stream_response
from noema.entrypoints.http.web.context import Pages, PagesDep, UserDep, WebUser
from noema.entrypoints.http.web.forms import parse_tool_form
from noema.ports import GenerationFilter, UnitOfWork
from noema.services import economy, history, preferences
from noema.services.catalog import Catalog
from noema.services.generations import GenerationRequest, GenerationService

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class ToolsPage:
    """The tools page: the catalog, a tool's form, its estimate and what is running."""

    request: Request
    user: WebUser
    pages: Pages
    catalog: Catalog
    generations: GenerationService

    async def show(
        self,
        tool_ref: str | None,
        *,
        values: dict[str, Any] | None = None,
        error: NoemaError | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """The form of ``tool_ref`` (else the account's most used tool) with these values, or its defaults."""
        return await _tools_page(self, tool_ref, values=values, error=error, status=status)


async def tools_page_of(
    request: Request, user: UserDep, pages: PagesDep, catalog: CatalogDep, generations: GenerationsDep
) -> ToolsPage:
    """The tools page of this request."""
    return ToolsPage(request, user, pages, catalog, generations)


ToolsPageDep = Annotated[ToolsPage, Depends(tools_page_of)]


async def _tools_page(
    page: ToolsPage,
    tool_ref: str | None,
    *,
    values: dict[str, Any] | None,
    error: NoemaError | None,
    status: int,
) -> HTMLResponse:
    user, uow = page.user, page.pages.uow
    tools = await page.catalog.listed()
    tool: Tool | None = next((t for t in tools if t.command == tool_ref and t.enabled), None)
    tool = tool or await _most_used(uow, user, [t for t in tools if t.enabled])
    if values is None:  # a fresh form starts from the account's saved defaults
        values = await preferences.get(uow, user.account_id, tool) if tool is not None else {}
    context: dict[str, Any] = {
        "page": "app",
        "tools": tools,
        "tool": tool,
        "values": values,
        **_error_context(tool, error),
        "live": await page.pages.live_rows(user),
        "max_upload": MAX_UPLOAD_BYTES,
    }
    if tool is not None:
        context["estimate_nanos"], context["expected_seconds"] = await page.generations.estimate(tool)
    return await page.pages.render(page.request, "app.html", context, user=user, status=status)


def _error_context(tool: Tool | None, error: NoemaError | None) -> dict[str, Any]:
    """An error about one input goes next to that input (``field_errors``); any other above the form."""
    if error is None:
        return {"error": None, "field_errors": {}}
    field = error.details.get("field") if isinstance(error.details, dict) else None
    spec = tool.input(field) if tool is not None and isinstance(field, str) else None
    if spec is None:
        return {"error": error.message, "field_errors": {}}
    return {"error": None, "field_errors": {spec.name: at_field(spec, error.message)}}


#: What a fresh account starts on, when it is there.
FIRST_TOOL = "txt2img"


async def _most_used(uow: UnitOfWork, user: WebUser, enabled: list[Tool]) -> Tool | None:
    """The tool this account ran most in its last 50 runs; on a tie txt2img, then the catalog's order."""
    recent = await history.search(uow, GenerationFilter(account_id=user.account_id), limit=50, cursor=None)
    counts = Counter(g.tool_command for g in recent.items)
    ranked = sorted(enabled, key=lambda t: (-counts[t.command], t.command != FIRST_TOOL))
    return ranked[0] if ranked else None


@router.get("/app", response_class=HTMLResponse)
async def tools_page(
    page: ToolsPageDep,
    tool: Annotated[str | None, Query(max_length=64)] = None,
    rerun: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """Pick a tool and fill in its form: your saved defaults, or an earlier generation's inputs (``rerun``)."""
    values: dict[str, Any] | None = None
    if rerun:
        try:
            earlier = await history.get(page.pages.uow, parse_id(rerun), account_id=page.user.account_id)
            values = plan_rerun(await page.catalog.find(earlier.tool_id), earlier).inputs
        except NoemaError:
            values = {}
    return await page.show(tool, values=values)


@router.post("/app/run")
async def run_tool(request: Request, page: ToolsPageDep, uow: UowDep, clock: ClockDep) -> Response:
    """Run the tool in the form; go to its live card, or show the form again with what was wrong."""
    form = await request.form(max_files=10, max_fields=200)
    tool_ref = str(form.get("tool") or "")[:64]
    user = page.user
    user.check_csrf(form.get("csrf"))
    submitted = {k: v for k, v in form.items() if isinstance(v, str) and k not in ("csrf", "tool")}
    try:
        tool = await page.catalog.find(tool_ref)
        values, files = await parse_tool_form(tool, form)
        if form.get("save_defaults") == "yes":
            keep = {k: v for k, v in values.items() if k in settable(tool) and v not in (None, "")}
            await preferences.replace(uow, clock, user.account_id, tool, keep)
        generation = await page.generations.request(
            GenerationRequest(account_id=user.account_id, tool_ref=tool.id, inputs=values, files=files, platform="web")
        )
    except NoemaError as exc:
        return await page.show(tool_ref, values=submitted, error=exc, status=status_of(exc))
    return RedirectResponse(f"/app/generations/{generation.id}", status_code=303)


async def _own(uow: UnitOfWork, user: WebUser, generation_id: str) -> Generation:
    return await history.get(uow, parse_id(generation_id, what="generationId"), account_id=user.account_id)


def _card_context(user: WebUser, g: Generation) -> dict[str, Any]:
    duration = (g.finished_at - g.started_at).total_seconds() if g.started_at and g.finished_at else None
    short = short_id(g.id)
    names = [download_name(g.tool_command, short, n, _original(o)) for n, o in enumerate(g.outputs, start=1)]
    return {
        "g": g,
        "short": short,
        "duration": duration,
        "csrf": user.session.csrf_token,
        "settings_used": settings_used(g.inputs),
        "download_names": names,
    }


def _original(output: dict[str, Any]) -> str:
    return str(output.get("filename") or str(output.get("url") or "").split("?")[0].rsplit("/", 1)[-1])


@router.get("/app/generations/{generation_id}/download/{n}")
async def download_result(generation_id: str, n: int, user: UserDep, uow: UowDep, fetcher: MediaFetcherDep) -> Response:
    """Result file ``n`` (from 1) of your generation, saved as ``<tool>-<short id>-<n>.<ext>``."""
    g = await _own(uow, user, generation_id)
    if not 1 <= n <= len(g.outputs) or not g.outputs[n - 1].get("url") or fetcher is None:
        raise GenerationNotFound("That generation has no such file.")
    output = g.outputs[n - 1]
    media = await fetcher.fetch(output)
    name = download_name(g.tool_command, short_id(g.id), n, _original(output))
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"}
    return Response(media.content, media_type=media.mime_type, headers=headers)


@router.get("/app/generations/{generation_id}", response_class=HTMLResponse)
async def generation_page(request: Request, generation_id: str, user: UserDep, pages: PagesDep) -> HTMLResponse:
    """The live card of one generation."""
    g = await _own(pages.uow, user, generation_id)
    return await pages.render(request, "generation.html", {"page": "app", **_card_context(user, g)}, user=user)


@router.get("/app/generations/{generation_id}/card", response_class=HTMLResponse)
async def generation_card(request: Request, generation_id: str, user: UserDep, uow: UowDep) -> HTMLResponse:
    """Just the card, for the page to swap in when the result arrives."""
    g = await _own(uow, user, generation_id)
    wallet = await economy.wallet(uow, user.account_id)
    context = {**_card_context(user, g), "balance_nanos": wallet.free_nanos, "held_nanos": wallet.held_nanos}
    return templates.TemplateResponse(request, "_card.html", context)


@router.get("/app/generations/{generation_id}/events")
async def generation_events(
    request: Request, generation_id: str, user: UserDep, uow: UowDep, live: LiveDep
) -> Response:
    """Progress and the result over Server-Sent Events (the same stream as the public API)."""
    g = await _own(uow, user, generation_id)
    return stream_response(uow, live, g.id, request)


@router.post("/app/generations/{generation_id}/cancel")
async def cancel_generation(
    request: Request, generation_id: str, user: UserDep, uow: UowDep, generations: GenerationsDep
) -> Response:
    """Stop a running generation."""
    form = await request.form()
    user.check_csrf(form.get("csrf"))
    g = await _own(uow, user, generation_id)
    with contextlib.suppress(InvalidTransition, GenerationNotFound):  # it finished meanwhile: the card shows how
        await generations.cancel(g.id, account_id=user.account_id)
    return RedirectResponse(f"/app/generations/{g.id}", status_code=303)


def _prompt_of(g: Generation) -> str:
    texts = [
        str(v) for k, v in g.inputs.items() if isinstance(v, str) and "negative" not in k and not stands_for_a_file(v)
    ]
    return texts[0][:200] if texts else ""


@router.get("/app/history", response_class=HTMLResponse)
async def history_page(
    request: Request, user: UserDep, pages: PagesDep, cursor: Annotated[str | None, Query(max_length=200)] = None
) -> HTMLResponse:
    """The account's generations, newest first, twelve a page."""
    page = await history.search(pages.uow, GenerationFilter(account_id=user.account_id), limit=12, cursor=cursor)
    items = []
    for g in page.items:
        thumb = next((o.get("url") for o in g.outputs if o.get("kind") in ("image", "animation")), None)
        duration = (g.finished_at - g.started_at).total_seconds() if g.started_at and g.finished_at else None
        items.append({"g": g, "thumb": thumb, "prompt": _prompt_of(g), "duration": duration})
    return await pages.render(
        request, "history.html", {"page": "history", "items": items, "next_cursor": page.next_cursor}, user=user
    )
