"""The Telegram platform: python-telegram-bot's Application inside Noema's process and FastAPI app.

In webhook mode Telegram posts updates to ``/api/webhook/telegram`` and they are processed in the
request (so Telegram retries an update we failed on); in polling mode PTB's updater asks with
getUpdates. Either way the same handlers answer, and results leave through the outbox.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import structlog
from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import Application

from noema.adapters.platforms.result_fetch import ResultFetcher
from noema.adapters.platforms.telegram.handlers import BUILTINS, TelegramHandlers, platform_update
from noema.adapters.platforms.telegram.limiter import ChatRateLimiter
from noema.adapters.platforms.telegram.notifier import TelegramNotifier
from noema.adapters.platforms.telegram.payments import REDELIVER, StarsOffer
from noema.domain.errors import ExternalServiceError, InvalidInput
from noema.domain.tools import Tool
from noema.services.chat import MENU_LIMIT, ChatServices

log = structlog.get_logger(__name__)
WEBHOOK_PATH = "/api/webhook/telegram"
ALLOWED_UPDATES = ["message", "callback_query", "pre_checkout_query"]


class TelegramPlatform:
    """Owns the PTB application: start (webhook or polling), the command menu, incoming updates, stop."""

    def __init__(
        self,
        *,
        token: str,
        api_root: str,
        polling: bool,
        webhook_url: str,
        webhook_secret: str | None,
        chat: ChatServices,
        media: ResultFetcher,
        stars: StarsOffer,
        chat_messages_per_second: float = 1.0,
    ) -> None:
        builder = (
            Application.builder()
            .token(token)
            .base_url(f"{api_root}/bot")
            .base_file_url(f"{api_root}/file/bot")
            .rate_limiter(ChatRateLimiter(per_chat=chat_messages_per_second))
            .concurrent_updates(True)
        )
        if not polling:
            builder = builder.updater(None)
        self.app = builder.build()
        self.polling, self.webhook_url, self.webhook_secret = polling, webhook_url, webhook_secret
        self.chat = chat
        self.notifier = TelegramNotifier(self.app.bot, media=media, uow_factory=chat.uow_factory, clock=chat.clock)
        TelegramHandlers(chat, stars).install(self.app)
        self._menu_task: asyncio.Task[None] | None = None
        self._running = False

    async def start(self) -> None:
        """Connect (getMe), register the webhook or start polling, and publish the command menu."""
        await self.app.initialize()
        await self.app.start()
        self._running = True
        if self.polling:
            await self.app.bot.delete_webhook()
            assert self.app.updater is not None
            await self.app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        else:
            try:
                await self.app.bot.set_webhook(
                    self.webhook_url, secret_token=self.webhook_secret, allowed_updates=ALLOWED_UPDATES
                )
            except TelegramError as exc:  # e.g. a public URL Telegram refuses: say so, keep serving the rest
                log.error("telegram_webhook_refused", url=self.webhook_url, error=str(exc)[:200])
        await self.sync_menu()
        self.chat.catalog.on_change(self._catalog_changed)
        log.info("telegram_started", mode="polling" if self.polling else "webhook", bot=self.app.bot.username)

    async def stop(self) -> None:
        """Stop polling and the application."""
        if not self._running:
            return
        if self._menu_task is not None:
            self._menu_task.cancel()
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        await self.app.stop()
        await self.app.shutdown()
        self._running = False

    async def process(self, data: Any) -> None:
        """Handle one update posted to the webhook; a body that is not an update is refused."""
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise InvalidInput("The body is not a Telegram update (an object with an integer update_id).")
        try:
            update = Update.de_json(data, self.app.bot)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"The Telegram update could not be read ({type(exc).__name__}).") from None
        answering = platform_update(data["update_id"])
        if await self.chat.answered(answering):
            # Telegram missed our 200 and sent it again: it was answered, so nothing is sent twice.
            log.info("telegram_update_repeated", update_id=data["update_id"])
            return
        REDELIVER.set(False)
        await self.app.process_update(update)
        if REDELIVER.get():
            # A paid charge was not credited, or its receipt not sent: fail the webhook so Telegram sends it again.
            raise ExternalServiceError("A Telegram payment's credit or receipt is not done yet; Telegram will retry.")
        await self.chat.mark_answered(answering)

    def secret_matches(self, header: str | None) -> bool:
        """Whether a webhook request carries our secret token (compared in constant time)."""
        return bool(self.webhook_secret and header) and hmac.compare_digest(
            (header or "").encode(), (self.webhook_secret or "").encode()
        )

    async def sync_menu(self) -> list[BotCommand]:
        """Publish at most 100 commands: the built-in ones, then tools by priority and usage."""
        tools = await self.chat.menu(limit=MENU_LIMIT - len(BUILTINS))
        commands = [BotCommand(name, text) for name, text in BUILTINS.items()] + [_command(t) for t in tools]
        try:
            await self.app.bot.set_my_commands(commands)
        except TelegramError as exc:
            log.warning("telegram_menu_failed", error=str(exc)[:200])
        return commands

    def _catalog_changed(self, _tools: list[Tool]) -> None:
        if self._running:
            self._menu_task = asyncio.get_running_loop().create_task(self.sync_menu_quietly())

    async def sync_menu_quietly(self) -> None:
        """sync_menu for a background task: never raises."""
        try:
            await self.sync_menu()
        except Exception:
            log.exception("telegram_menu_sync_crashed")


def _command(tool: Tool) -> BotCommand:
    description = (tool.description or tool.display_name or tool.command).strip().splitlines()[0]
    return BotCommand(tool.command, description[:256] or tool.command)
