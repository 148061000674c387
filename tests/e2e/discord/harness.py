"""Noema with Discord enabled, against the fake Discord REST server over real HTTP and the embedded sandbox.

Interactions are signed with the fake's Ed25519 key and posted to the app's endpoint the way
Discord posts them; the fake applies the app's inline answer and records every REST call after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from noema.adapters.platforms.discord import DiscordPlatform
from noema.bootstrap import Container, build_container
from noema.domain.accounts import Platform
from noema.domain.generation import Generation
from noema.domain.money import parse_usd
from noema.entrypoints.http.app import create_app
from noema.ports import GenerationFilter
from noema.services import accounts, economy
from tests.conftest import make_settings, run_sync
from tests.fakes.discord_api import DEFAULT_USER, FakeDiscord

PUBLIC = "https://noema.test"
ENDPOINT = f"{PUBLIC}/api/webhook/discord"

__all__ = ["DEFAULT_USER", "ENDPOINT", "DiscordRig", "discord_app", "serving"]


def serving() -> Iterator[FakeDiscord]:
    """One fake Discord server for a test module (each test calls ``reset`` on it).

    Starting and stopping a server per test would cost a fifth of a second each time.
    """
    fake = FakeDiscord()
    run_sync(fake.serve())
    try:
        yield fake
    finally:
        run_sync(fake.stop())


@dataclass
class DiscordRig:
    """The app, a client for it, and the fake Discord it talks to."""

    app: FastAPI
    client: httpx.AsyncClient
    fake: FakeDiscord

    @property
    def container(self) -> Container:
        container: Container = self.app.state.container  # Starlette's State holds Any
        return container

    @property
    def discord(self) -> DiscordPlatform:
        platform = self.container.discord
        assert platform is not None
        return platform

    async def post(self, interaction: dict[str, Any]) -> httpx.Response:
        """Deliver a signed interaction as Discord does (the inline answer is applied by the fake)."""
        return await self.fake.deliver(ENDPOINT, interaction, client=self.client)

    async def raw(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST exactly these bytes and headers to the interactions endpoint."""
        return await self.client.post(ENDPOINT, content=body, headers=headers)

    async def slash(self, name: str, options: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
        """A user runs a slash command; waits until Noema's background work for it is done."""
        hit = self.fake.slash(name, options, **kw)
        response = await self.post(hit)
        assert response.status_code == 200, response.text
        await self.discord.idle()
        return hit

    async def press(self, custom_id: str, message: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """A user presses a button on a message."""
        hit = self.fake.button(custom_id, message, **kw)
        response = await self.post(hit)
        assert response.status_code == 200, response.text
        await self.discord.idle()
        return hit

    async def fund(self, usd: str, user_id: str = DEFAULT_USER) -> str:
        """Give a Discord user (created if new) ``usd`` of credit; returns the account id."""
        c = self.container
        found = await accounts.find_or_create(c.uow, c.clock, platform=Platform.DISCORD, platform_id=user_id)
        if parse_usd(usd, allow_zero=True):
            await economy.credit(
                c.uow(), c.clock, economy.Transfer(account_id=found.account.id, amount_nanos=parse_usd(usd))
            )
        return found.account.id

    async def account_id(self, user_id: str = DEFAULT_USER) -> str:
        found = await accounts.by_platform(self.container.uow(), Platform.DISCORD, user_id)
        return found.account.id

    async def wallet(self, account_id: str) -> tuple[int, int]:
        account = await economy.wallet(self.container.uow(), account_id)
        return account.balance_nanos, account.held_nanos

    async def generations(self, account_id: str) -> list[Generation]:
        async with self.container.uow() as uow:
            page = await uow.generations.search(GenerationFilter(account_id=account_id), limit=50, cursor=None)
        return page.items

    def reply_text(self, interaction: dict[str, Any]) -> str:
        """What the user sees as the answer: the original's content and embed text, or the ephemeral followup's."""
        messages = [self.fake.original(interaction), *self.fake.followups(interaction)]
        parts = []
        for message in filter(None, messages):
            parts.append(message.get("content") or "")
            for embed in message.get("embeds") or []:
                parts += [embed.get("title") or "", embed.get("description") or ""]
                parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
        return "\n".join(p for p in parts if p)


def settings_for(fake: FakeDiscord, tmp_path: Path, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "sandbox_data_dir": str(tmp_path / "sandbox"),
        "sandbox_run_seconds": 0.25,
        "workers_enabled": True,
        "public_url": PUBLIC,
        "discord_bot_token": fake.bot_token,
        "discord_application_id": fake.application_id,
        "discord_public_key": fake.public_key_hex,
        "discord_api_base_url": f"{fake.root}/api/v10",
    }
    values.update(overrides)
    return values


@asynccontextmanager
async def discord_app(db_url: str, tmp_path: Path, fake: FakeDiscord, **overrides: object) -> AsyncIterator[DiscordRig]:
    """Noema (sandbox backend, workers on unless told) with Discord pointed at ``fake``."""
    application = create_app(build_container(make_settings(db_url, **settings_for(fake, tmp_path, **overrides))))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC, timeout=30) as client:
            yield DiscordRig(application, client, fake)
