"""The public API's key auth, and the health, readiness and metrics endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from noema.bootstrap import Container, build_container
from noema.entrypoints.http.app import create_app
from noema.services import api_keys
from tests.conftest import ADMIN, ADMIN_KEY, PLATFORM, funded_key, make_settings, running_app
from tests.fakes.clock import FakeClock

D = "/internal/v1/data"


async def _account_with_key(client: httpx.AsyncClient, app: FastAPI) -> tuple[str, str, str]:
    aid = (
        await client.post(
            f"{D}/users/find-or-create", headers=PLATFORM, json={"platform": "api", "platformId": "int-1"}
        )
    ).json()["masterAccountId"]
    c: Container = app.state.container
    new = await api_keys.create(c.uow(), c.clock, aid, secrets=c.secrets, name="ci")
    return aid, new.plain, new.key.id


async def test_me_status_needs_a_bearer_key(client: httpx.AsyncClient, app: FastAPI) -> None:
    aid, key, _ = await _account_with_key(client, app)
    await client.post(f"{D}/users/{aid}/economy/credit", headers=ADMIN, json={"amountUsd": "2"})
    r = await client.get("/api/v1/me/status", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.json()["usdCredit"] == "2.000000000" and r.json()["points"] == 5934
    assert key.startswith("nk_")
    for headers in (
        {},
        {"Authorization": "Bearer nk_unknown"},
        {"Authorization": key},
        {"Authorization": "Basic x"},
    ):
        denied = await client.get("/api/v1/me/status", headers=headers)
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_key_stops_working(client: httpx.AsyncClient, app: FastAPI) -> None:
    aid, key, key_id = await _account_with_key(client, app)
    c: Container = app.state.container
    await api_keys.revoke(c.uow(), c.clock, aid, key_id)
    r = await client.get("/api/v1/me/status", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401
    assert key not in r.text


async def test_a_key_in_use_stops_working_the_moment_it_is_revoked_here(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    aid, key, key_id = await _account_with_key(client, app)
    auth = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/me/status", headers=auth)).status_code == 200  # now believed from memory
    c: Container = app.state.container
    await api_keys.revoke(c.uow(), c.clock, aid, key_id)
    assert (await client.get("/api/v1/me/status", headers=auth)).status_code == 401


async def test_a_key_revoked_by_another_process_stops_working_within_the_recheck_time(
    client: httpx.AsyncClient, app: FastAPI, clock: FakeClock
) -> None:
    _, key, key_id = await _account_with_key(client, app)
    auth = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/me/status", headers=auth)).status_code == 200
    c: Container = app.state.container
    async with c.uow() as uow:  # another replica (or `noema apikey revoke`): only the database is told
        stored = await uow.api_keys.get(key_id)
        assert stored is not None
        stored.revoked_at = clock.now()
        await uow.commit()
    clock.advance(seconds=api_keys.RECHECK_SECONDS - 1)
    assert (await client.get("/api/v1/me/status", headers=auth)).status_code == 200  # believed a little longer
    clock.advance(seconds=1)
    assert (await client.get("/api/v1/me/status", headers=auth)).status_code == 401


async def test_keys_are_stored_only_as_hashes(client: httpx.AsyncClient, app: FastAPI) -> None:
    aid, key, _ = await _account_with_key(client, app)
    c: Container = app.state.container
    stored = await api_keys.list_keys(c.uow(), aid)
    assert len(stored) == 1 and stored[0].key_hash != key and key.startswith(stored[0].prefix)
    assert key not in repr(stored[0].__dict__)


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "noema_http_requests_total" in metrics.text
    assert 'noema_ledger_total_usd{kind="balance"}' in metrics.text


async def test_the_public_openapi_document_lists_only_public_endpoints(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/me/status", "/api/v1/tools", "/api/v1/generations"} <= set(doc["paths"])
    assert [p for p in doc["paths"] if not p.startswith("/api/v1/")] == []
    assert "internal" not in json.dumps(doc).lower() and "webhook" not in json.dumps(doc).lower()


async def test_the_internal_openapi_document_is_only_for_internal_clients(client: httpx.AsyncClient) -> None:
    assert (await client.get("/internal/v1/openapi.json")).status_code == 401
    r = await client.get("/internal/v1/openapi.json", headers={"X-Internal-Client-Key": ADMIN_KEY})
    assert r.status_code == 200 and "/internal/v1/data/users/find-or-create" in r.json()["paths"]
    assert [p for p in r.json()["paths"] if not p.startswith("/internal/v1/")] == []


@asynccontextmanager
async def _served(db_url: str, client_host: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a client at ``client_host`` sees it (the address uvicorn would put in the scope)."""
    application = create_app(build_container(make_settings(db_url, **overrides)))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, client=(client_host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://noema.test") as c:
            yield c


async def test_metrics_without_a_token_are_served_only_to_loopback_clients(db_url: str) -> None:
    async with _served(db_url, "203.0.113.7") as outsider:
        r = await outsider.get("/metrics")
        assert r.status_code == 403 and "noema_ledger" not in r.text
        assert "NOEMA_METRICS_TOKEN" in r.json()["error"]["message"]
    for loopback in ("127.0.0.1", "::1"):
        async with _served(db_url, loopback) as local:
            r = await local.get("/metrics")
            assert r.status_code == 200 and 'noema_ledger_total_usd{kind="balance"}' in r.text


async def test_metrics_with_a_token_need_it_as_a_bearer_from_everyone(db_url: str) -> None:
    token = "m" * 32
    for host in ("203.0.113.7", "127.0.0.1"):
        async with _served(db_url, host, metrics_token=token) as c:
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": token}):
                r = await c.get("/metrics", headers=headers)
                assert r.status_code == 401 and "noema_ledger" not in r.text, (host, headers)
                assert r.headers["www-authenticate"] == "Bearer"
            r = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and 'noema_ledger_total_usd{kind="balance"}' in r.text


async def test_malformed_json_gets_a_plain_message_and_an_unknown_tool_points_to_the_api_list(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _aid, auth = await funded_key(app, "1")
        headers = {**auth, "Content-Type": "application/json"}
        broken = await client.post("/api/v1/generations", headers=headers, content=b'{"toolId": "txt2img", "inp')
        assert broken.status_code == 400
        assert broken.json()["error"]["message"] == "The request body is not valid JSON."
        assert "decode" not in broken.text and "details" not in broken.json()["error"]
        for r in (
            await client.post("/api/v1/generations", headers=auth, json={"toolId": "nope", "inputs": {}}),
            await client.get("/api/v1/tools/nope", headers=auth),
            await client.get("/api/v1/preferences/nope", headers=auth),
        ):
            assert r.status_code == 404
            assert r.json()["error"]["message"] == "There is no tool called 'nope'; GET /api/v1/tools lists them."
        assert (await client.get("/api/v1/generations", headers=auth)).json()["items"] == []
