"""The Discord platform: HTTP interactions at ``/api/webhook/discord``, commands kept registered.

Discord posts each interaction, signed; it is verified, answered at once (PONG, autocomplete
choices, a quick refusal or a deferred response) and the rest is done in a background task that
edits the response. Slash commands are registered by bulk overwrite on start and whenever the
catalog changes, globally or in each configured guild. Results leave through the outbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog

from noema.adapters.platforms.discord.commands import command_set
from noema.adapters.platforms.discord.handlers import DiscordHandlers
from noema.adapters.platforms.discord.images import AttachmentFetcher
from noema.adapters.platforms.discord.interactions import parse_interaction
from noema.adapters.platforms.discord.notifier import DiscordNotifier
from noema.adapters.platforms.discord.rest import DiscordRest
from noema.adapters.platforms.discord.signature import SignatureCheck
from noema.adapters.platforms.result_fetch import ResultFetcher
from noema.domain.errors import NoemaError
from noema.domain.tools import Tool
from noema.services.chat import MENU_LIMIT, ChatServices

log = structlog.get_logger(__name__)
WEBHOOK_PATH = "/api/webhook/discord"
STOP_GRACE_SECONDS = 5.0


class DiscordPlatform:
    """Owns the REST client, the signature check, the handlers and their background tasks."""

    def __init__(
        self,
        *,
        application_id: str,
        public_key: str,
        bot_token: str,
        api_base_url: str,
        guild_ids: tuple[str, ...],
        chat: ChatServices,
        http: httpx.AsyncClient,
        media: ResultFetcher,
    ) -> None:
        self.chat, self.guild_ids = chat, guild_ids
        self.rest = DiscordRest(http, base_url=api_base_url, bot_token=bot_token, application_id=application_id)
        self.signature = SignatureCheck(public_key)
        fetcher = AttachmentFetcher(http, api_base_url=api_base_url)
        self.handlers = DiscordHandlers(chat, self.rest, fetcher)
        self.notifier = DiscordNotifier(
            self.rest, media=media, uow_factory=chat.uow_factory, clock=chat.clock, public_url=chat.public_url
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._registered: list[dict[str, Any]] | None = None
        self._sync_lock = asyncio.Lock()
        self._running = False

    async def start(self) -> None:
        """Register the slash commands and follow catalog changes."""
        self._running = True
        await self.sync_commands_quietly()
        self.chat.catalog.on_change(self._catalog_changed)
        log.info("discord_started", scope="guilds" if self.guild_ids else "global", guilds=len(self.guild_ids))

    async def stop(self) -> None:
        """Let running interaction work finish (briefly), then cancel what is left."""
        self._running = False
        await self.idle(timeout=STOP_GRACE_SECONDS)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> bool:
        """Whether the request is signed by Discord with a fresh timestamp."""
        return self.signature.verify(body, signature, timestamp, now=self.chat.clock.now().timestamp())

    async def interact(self, payload: Any) -> dict[str, Any]:
        """The interaction response to a verified request; its work continues in the background."""
        interaction = parse_interaction(payload)
        answer = await self.handlers.answer(interaction)
        if answer.work is not None:
            self._spawn(answer.work())
        return answer.response

    async def idle(self, *, timeout: float | None = None) -> None:
        """Wait until the background work started so far has finished."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync_commands(self) -> list[dict[str, Any]]:
        """Bulk-overwrite the slash commands (global, or in each guild) if they changed since the last time."""
        async with self._sync_lock:
            commands = command_set(await self.chat.menu(limit=MENU_LIMIT))
            if commands == self._registered:
                return commands
            if self.guild_ids:
                await self.rest.overwrite_commands([])  # no stale global copies next to the guild ones
                for guild_id in self.guild_ids:
                    await self.rest.overwrite_commands(commands, guild_id)
            else:
                await self.rest.overwrite_commands(commands)
            self._registered = commands
            log.info("discord_commands_registered", commands=len(commands))
            return commands

    async def sync_commands_quietly(self) -> None:
        """sync_commands for start-up and background tasks: logs a failure, never raises."""
        try:
            await self.sync_commands()
        except NoemaError as exc:
            log.warning("discord_commands_not_registered", error=exc.message[:300])
        except Exception:
            log.exception("discord_commands_sync_crashed")

    def _catalog_changed(self, _tools: list[Tool]) -> None:
        if self._running:
            self._spawn(self.sync_commands_quietly())
