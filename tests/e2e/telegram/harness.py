"""Noema with Telegram enabled, against the fake Bot API server over real HTTP and the embedded sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from noema.bootstrap import Container, build_container
from noema.domain.accounts import Platform
from noema.domain.money import parse_usd
from noema.entrypoints.http.app import create_app
from noema.ports import Clock
from noema.services import accounts, economy
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_api_state import SentMessage

SECRET = "webhook-secret-0123456789"
PUBLIC = "https://noema.test"
T = TypeVar("T")


@dataclass
class TelegramRig:
    """The app, a client for it, and the fake Telegram it talks to."""

    app: FastAPI
    client: httpx.AsyncClient
    fake: FakeTelegram

    @property
    def container(self) -> Container:
        container: Container = self.app.state.container  # Starlette's State holds Any
        return container

    async def post(self, update: dict[str, Any], *, secret: str | None = SECRET) -> httpx.Response:
        """Deliver an update to the webhook as Telegram does."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return await self.client.post("/api/webhook/telegram", json=update, headers=headers)

    async def say(self, chat_id: int, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """A user writes; the update goes to the webhook; returns the user's message."""
        update = self.fake.user_message(chat_id, text, **kwargs)
        response = await self.post(update)
        assert response.status_code == 200, response.text
        message: dict[str, Any] = update["message"]
        return message

    async def press(self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None) -> None:
        """A user presses an inline button."""
        response = await self.post(self.fake.callback_query(chat_id, message_id, data, user_id=user_id))
        assert response.status_code == 200, response.text

    def replies(self, chat_id: int, to: int) -> list[SentMessage]:
        """What the bot sent in reply to one message."""
        return [s for s in self.fake.sent_to(chat_id) if s.reply_to_message_id == to]

    async def account_id(self, user_id: int) -> str:
        found = await accounts.by_platform(self.container.uow(), Platform.TELEGRAM, str(user_id))
        return found.account.id

    async def fund(self, user_id: int, usd: str) -> str:
        """Give a Telegram user (created if new) ``usd`` of credit; returns the account id."""
        c = self.container
        found = await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id=str(user_id))
        if parse_usd(usd, allow_zero=True):
            transfer = economy.Transfer(account_id=found.account.id, amount_nanos=parse_usd(usd))
            await economy.credit(c.uow(), c.clock, transfer)
        return found.account.id

    async def wallet(self, account_id: str) -> tuple[int, int]:
        account = await economy.wallet(self.container.uow(), account_id)
        return account.balance_nanos, account.held_nanos


@asynccontextmanager
async def telegram_app(
    db_url: str, tmp_path: Path, fake: FakeTelegram, *, clock: Clock | None = None, **overrides: object
) -> AsyncIterator[TelegramRig]:
    """Noema (sandbox backend, workers on) with Telegram in webhook mode pointed at ``fake`` (and ``clock``)."""
    root = fake.url
    values: dict[str, object] = {
        "sandbox_data_dir": str(tmp_path / "sandbox"),
        "sandbox_run_seconds": 0.4,
        "workers_enabled": True,
        "public_url": PUBLIC,
        "telegram_bot_token": fake.token,
        "telegram_api_base_url": root,
        "telegram_webhook_secret": SECRET,
        # Telegram's flood limit (a message a second per chat) would hold each result ~1 s behind the
        # acknowledgement and progress edit; the fake has no such limit, and the limiter has its own test.
        "telegram_chat_messages_per_second": 100.0,
    }
    values.update(overrides)
    application = create_app(build_container(make_settings(db_url, **values), clock=clock))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC, timeout=30) as client:
            yield TelegramRig(application, client, fake)
