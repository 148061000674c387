"""Noema with card payments against the fake Stripe API, and the calls the card tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.services import economy, payments
from tests.conftest import running_app
from tests.fakes.stripe_api import SECRET_KEY, WEBHOOK_SECRET, FakeStripe

#: keyword arguments of Settings (their values are Any: Settings validates each)
STRIPE_SETTINGS: dict[str, Any] = {"stripe_secret_key": SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET}


@asynccontextmanager
async def stripe_app(
    db_url: str, tmp_path: Path, fake: FakeStripe, **overrides: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Noema with card payments pointed at the fake Stripe API; the ledger and payments verify after."""
    async with running_app(db_url, tmp_path, **STRIPE_SETTINGS, stripe_api_base=fake.url, **overrides) as (
        application,
        client,
    ):
        yield application, client
        await verified(application)


async def verified(application: FastAPI) -> None:
    """``noema ledger verify`` finds nothing: the ledger and the payments agree."""
    c: Container = application.state.container
    _checked, drifts = await economy.verify(c.uow())
    assert drifts == []
    assert await payments.verify(c.uow()) == []


async def wallet(application: FastAPI, aid: str) -> tuple[str, str]:
    """(balance, owed) in dollars with two decimals."""
    c: Container = application.state.container
    account = await economy.wallet(c.uow(), aid)
    return f"{account.balance_nanos / 1e9:.2f}", f"{account.owed_nanos / 1e9:.2f}"


async def topup(client: httpx.AsyncClient, headers: dict[str, str], usd: str = "5") -> dict[str, Any]:
    """``POST /api/v1/topups`` for a card payment, expected to succeed."""
    r = await client.post("/api/v1/topups", json={"provider": "stripe", "amountUsd": usd}, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def session_id(topup: dict[str, Any]) -> str:
    """The Checkout Session a top-up opened."""
    return str(topup["checkoutUrl"].rsplit("/", 1)[1])


async def latest_payment(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """The caller's newest payment, as ``GET /api/v1/payments`` shows it."""
    items: list[dict[str, Any]] = (await client.get("/api/v1/payments", headers=headers)).json()["items"]
    return items[0]
