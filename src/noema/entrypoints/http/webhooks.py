"""Webhook receivers: the GPU backend's run updates, Telegram's updates and Discord's interactions."""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from noema.adapters.backends.comfydeploy_parse import parse_run
from noema.adapters.platforms import discord
from noema.adapters.platforms.telegram import WEBHOOK_PATH
from noema.domain.errors import BackendProtocolError, Forbidden, InvalidInput, NotFound, Unauthenticated
from noema.domain.ids import parse_id
from noema.entrypoints.http.deps import BackendUpdatesDep, DiscordDep, MetricsDep, TelegramDep

router = APIRouter(tags=["webhooks"])


@router.post("/api/webhook/comfydeploy")
async def comfydeploy_webhook(
    request: Request,
    updates: BackendUpdatesDep,
    metrics: MetricsDep,
    generation_id: Annotated[str, Query(max_length=64)],
    token: Annotated[str, Query(min_length=16, max_length=128)],
) -> dict[str, str]:
    """A run.updated or run.output event; needs the generation's own token, else 403 and nothing changes."""
    started = time.perf_counter()
    gid = parse_id(generation_id, what="generation_id")
    try:
        payload = json.loads(await request.body())
        update = parse_run(payload)
    except (ValueError, BackendProtocolError) as exc:
        raise InvalidInput(f"The webhook body is not a run update: {str(exc)[:200]}") from None
    await updates.webhook(gid, update, token=token)  # kept for later and 503 when Noema is busy
    metrics.webhook_applied(time.perf_counter() - started)
    return {"status": "ok"}


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def telegram_webhook(request: Request, telegram: TelegramDep) -> Response:
    """A Telegram update; without our secret token header it is refused (403) and ignored."""
    if telegram is None:
        raise NotFound("Telegram is not enabled on this Noema.")
    if not telegram.secret_matches(request.headers.get("x-telegram-bot-api-secret-token")):
        raise Forbidden("The Telegram secret token is missing or wrong.")
    try:
        data = json.loads(await request.body())
    except ValueError:
        raise InvalidInput("The Telegram update is not JSON.") from None
    await telegram.process(data)
    return Response(status_code=200)


@router.post(discord.WEBHOOK_PATH, include_in_schema=False)
async def discord_interactions(request: Request, platform: DiscordDep) -> Response:
    """A Discord interaction; without a valid, fresh Ed25519 signature it is refused (401) and ignored."""
    if platform is None:
        raise NotFound("Discord is not enabled on this Noema.")
    body = await request.body()
    headers = request.headers
    if not platform.verify(body, headers.get("x-signature-ed25519"), headers.get("x-signature-timestamp")):
        raise Unauthenticated("The Discord request signature is missing, wrong or stale.")
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidInput("The Discord interaction is not JSON.") from None
    return JSONResponse(await platform.interact(payload))
