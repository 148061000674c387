"""Webhook receivers: the GPU backend's run updates, Telegram's updates and Discord's interactions."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import Route

from noema.adapters.backends.comfydeploy_parse import parse_run
from noema.adapters.platforms import discord
from noema.adapters.platforms.telegram import WEBHOOK_PATH
from noema.domain.errors import BackendProtocolError, Forbidden, InvalidInput, NotFound, Unauthenticated
from noema.domain.ids import parse_id
from noema.entrypoints.http.deps import DiscordDep, TelegramDep
from noema.ports import Metrics
from noema.services.backend_updates import BackendUpdates

COMFYDEPLOY_PATH = "/api/webhook/comfydeploy"
_OK = b'{"status":"ok"}'
router = APIRouter(tags=["webhooks"])


def comfydeploy_route(updates: BackendUpdates, metrics: Metrics) -> Route:
    """The backend's run updates, as a plain Starlette route bound to its two dependencies.

    It is the most frequent request by far (every run of every user sends several), so it skips
    FastAPI's per-request dependency solving, query validation and response serialisation, which
    cost more CPU than applying the update does; it checks its two query parameters itself.
    """

    async def comfydeploy_webhook(request: Request) -> Response:
        """A run.updated or run.output event; needs the generation's own token, else 403 and nothing changes."""
        started = time.perf_counter()
        gid = parse_id(_query(request, "generation_id", 1, 64), what="generation_id")
        token = _query(request, "token", 16, 128)
        try:
            payload = json.loads(await request.body())
            update = parse_run(payload)
        except (ValueError, BackendProtocolError) as exc:
            raise InvalidInput(f"The webhook body is not a run update: {str(exc)[:200]}") from None
        await updates.webhook(gid, update, token=token)  # kept for later and 503 when Noema is busy
        metrics.webhook_applied(time.perf_counter() - started)
        return Response(_OK, media_type="application/json")

    return Route(COMFYDEPLOY_PATH, comfydeploy_webhook, methods=["POST"], include_in_schema=False)


def _query(request: Request, name: str, shortest: int, longest: int) -> str:
    """One query parameter, present once and of a sane length, or a 400 that says which."""
    values = request.query_params.getlist(name)
    if len(values) != 1:
        raise InvalidInput(f"The webhook URL needs exactly one {name} query parameter.")
    if not shortest <= len(values[0]) <= longest:
        raise InvalidInput(f"The webhook's {name} must be {shortest} to {longest} characters long.")
    return values[0]


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
