"""Requests for Noema's own URL go to the app in-process, and behave as they would over the network."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from noema.adapters.local_transport import LocalFirstTransport


async def test_an_error_inside_the_app_is_a_500_answer_not_an_exception_in_the_sender() -> None:
    calls = 0

    async def hook(request: Request) -> JSONResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TimeoutError("QueuePool limit reached")  # what a busy database used to raise here
        return JSONResponse({"ok": True})

    transport = LocalFirstTransport("http://noema.local")
    transport.app = Starlette(routes=[Route("/api/webhook/comfydeploy", hook, methods=["POST"])])
    async with httpx.AsyncClient(transport=transport) as client:
        first = await client.post("http://noema.local/api/webhook/comfydeploy", json={})
        second = await client.post("http://noema.local/api/webhook/comfydeploy", json={})
    assert first.status_code == 500
    assert second.status_code == 200 and second.json() == {"ok": True}
