"""Discord interactions over the chat services: commands, autocomplete and buttons.

``answer`` returns at once what Discord gets in reply to its POST, with the work to finish in the
background. Every piece of work ends in a message: a NoemaError becomes its message, anything else
a short apology (the traceback goes to the log, never to the user).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from noema.adapters.platforms.discord import texts
from noema.adapters.platforms.discord.images import AttachmentFetcher
from noema.adapters.platforms.discord.interactions import Interaction, InteractionType
from noema.adapters.platforms.discord.replies import AUTOCOMPLETE_RESULT, PONG, Answer, Responder, deferred, quick
from noema.adapters.platforms.discord.rest import DiscordRest
from noema.adapters.platforms.discord.runs import ToolRuns, caller
from noema.adapters.platforms.wording import OOPS
from noema.domain.accounts import Platform
from noema.domain.errors import NoemaError
from noema.domain.ids import parse_id
from noema.domain.linking import CODE_LIFETIME
from noema.services.chat import ChatServices, Visit

log = structlog.get_logger(__name__)
_Private = Callable[[Interaction, Visit], Awaitable[dict[str, Any]]]


class DiscordHandlers:
    """Noema's slash commands, autocomplete and buttons."""

    def __init__(self, chat: ChatServices, rest: DiscordRest, fetcher: AttachmentFetcher) -> None:
        self.chat = chat
        self.reply = Responder(rest)
        self.runs = ToolRuns(chat, fetcher)
        self._private: dict[str, _Private] = {
            "help": self._help,
            "account": self._account,
            "tools": self._tools,
            "status": self._status,
            "cancel": self._cancel,
            "link": self._link,
            "apikey": self._apikey,
            "set": self._set,
            "settings": self._settings,
            "topup": self._topup,
        }

    async def answer(self, ix: Interaction) -> Answer:
        """The response to an interaction, and the work to do after it."""
        if ix.type is InteractionType.PING:
            return Answer({"type": PONG})
        if ix.type is InteractionType.AUTOCOMPLETE:
            return Answer({"type": AUTOCOMPLETE_RESULT, "data": {"choices": await self._choices(ix)}})
        if ix.type is InteractionType.MESSAGE_COMPONENT:
            return self._button(ix)
        if ix.type is InteractionType.APPLICATION_COMMAND:
            return await self._command(ix)
        return Answer(quick("That form is not one of Noema's."))

    async def _command(self, ix: Interaction) -> Answer:
        handler = self._private.get(ix.name)
        if handler is not None:
            return Answer(deferred(ephemeral=True), lambda: self._privately(ix, handler))
        try:
            tool = await self.runs.find(ix)
        except NoemaError as exc:
            return Answer(quick(exc.message))
        return Answer(deferred(ephemeral=False), lambda: self._publicly(ix, lambda: self.runs.start(ix, tool)))

    def _button(self, ix: Interaction) -> Answer:
        action, _, generation_id = ix.custom_id.partition(":")
        if action == "rerun":
            return Answer(
                deferred(ephemeral=False), lambda: self._publicly(ix, lambda: self.runs.rerun(ix, generation_id))
            )
        if action == "info":
            return Answer(deferred(ephemeral=True), lambda: self._privately(ix, self._info))
        if action == "cancel":
            return Answer(deferred(ephemeral=True), lambda: self._privately(ix, self._cancel_button))
        return Answer(quick("That button does not do anything any more."))

    async def _privately(self, ix: Interaction, handler: _Private) -> None:
        """Work whose answer only the user sees: the ephemeral original is edited with it."""
        try:
            visit = await self.chat.enter(caller(ix), f"/{ix.name or ix.custom_id.partition(':')[0]}")
            payload = await handler(ix, visit)
        except NoemaError as exc:
            payload = texts.message(exc.message)
        except Exception:
            log.exception("discord_command_failed", command=ix.name[:32])
            payload = texts.message(OOPS)
        try:
            await self.reply.edit(ix, payload)
        except NoemaError as exc:
            log.warning("discord_reply_failed", error=exc.message[:200])

    async def _publicly(self, ix: Interaction, start: Callable[[], Awaitable[object]]) -> None:
        """A run: the outbox answers from here on; a refusal goes to the user alone."""
        try:
            await start()
            return
        except NoemaError as exc:
            text = exc.message
        except Exception:
            log.exception("discord_run_failed", command=ix.name[:32])
            text = OOPS
        try:
            await self.reply.private(ix, text)
        except NoemaError as exc:
            log.warning("discord_reply_failed", error=exc.message[:200])

    async def _choices(self, ix: Interaction) -> list[dict[str, Any]]:
        if ix.focused != "tool":
            return []
        typed = str(ix.options.get("tool") or "").strip().lstrip("/").lower()
        try:
            menu = await self.chat.menu()
        except NoemaError as exc:  # no tool list to offer right now: no suggestions, not a failed interaction
            log.warning("discord_autocomplete_failed", error=exc.message[:200])
            return []
        tools = [t for t in menu if typed in t.command or typed in t.display_name.lower()]
        tools.sort(key=lambda t: not t.command.startswith(typed))
        return [{"name": f"{t.command} — {t.display_name}"[:100], "value": t.command} for t in tools[:25]]

    async def _help(self, _ix: Interaction, _visit: Visit) -> dict[str, Any]:
        return texts.message(texts.help_text(await self.chat.menu(limit=1)))

    async def _account(self, _ix: Interaction, visit: Visit) -> dict[str, Any]:
        found = await self.chat.account(visit.account_id)
        return texts.message(embeds=[texts.account_embed(found.account, found.identities)])

    async def _tools(self, _ix: Interaction, _visit: Visit) -> dict[str, Any]:
        tools = await self.chat.catalog.listed()
        return texts.message(embeds=[texts.tools_embed(tools, tools[0].backend_label if tools else "")])

    async def _status(self, _ix: Interaction, visit: Visit) -> dict[str, Any]:
        report = await self.chat.status(visit.account_id, self.chat.clock.now())
        return texts.message(embeds=[texts.status_embed(report)])

    async def _cancel(self, ix: Interaction, visit: Visit) -> dict[str, Any]:
        wanted = ix.options.get("id")
        generation = await self.chat.cancel(visit.account_id, str(wanted).strip() if wanted else None)
        return texts.message(texts.cancelled(generation))

    async def _cancel_button(self, ix: Interaction, visit: Visit) -> dict[str, Any]:
        """The Cancel button under a run's progress: /cancel of that run (only its owner has it running)."""
        generation_id = parse_id(ix.custom_id.partition(":")[2], what="generation id")
        return texts.message(texts.cancelled(await self.chat.cancel(visit.account_id, generation_id)))

    async def _link(self, ix: Interaction, visit: Visit) -> dict[str, Any]:
        code = ix.options.get("code")
        if code:
            await self.chat.redeem_link(visit.account_id, str(code).strip())
            return texts.message("🔗 Linked: this Discord account and the other one are now one account.")
        issued, url = await self.chat.link_codes(visit.account_id, Platform.DISCORD)
        return texts.message(texts.link_text(issued.code, int(CODE_LIFETIME.total_seconds() // 60), url))

    async def _topup(self, _ix: Interaction, visit: Visit) -> dict[str, Any]:
        url = await self.chat.topup_link(visit.account_id, Platform.DISCORD)
        return texts.message(texts.topup_text(url, int(CODE_LIFETIME.total_seconds() // 60)))

    async def _apikey(self, _ix: Interaction, visit: Visit) -> dict[str, Any]:
        key = await self.chat.new_api_key(visit.account_id, name="discord")
        return texts.message(texts.api_key_text(key.plain, self.chat.public_url))

    async def _set(self, ix: Interaction, visit: Visit) -> dict[str, Any]:
        tool = await self.chat.catalog.find(str(ix.options.get("tool") or ""))
        values = await self.chat.set_defaults(visit.account_id, tool, str(ix.options.get("values") or ""))
        return texts.message(texts.preferences_text(tool, values))

    async def _settings(self, ix: Interaction, visit: Visit) -> dict[str, Any]:
        tool = await self.chat.catalog.find(str(ix.options.get("tool") or ""))
        return texts.message(texts.preferences_text(tool, await self.chat.defaults(visit.account_id, tool)))

    async def _info(self, ix: Interaction, visit: Visit) -> dict[str, Any]:
        generation_id = parse_id(ix.custom_id.partition(":")[2], what="generation id")
        generation = await self.chat.generation(visit.account_id, generation_id)
        return texts.message(embeds=[texts.info_embed(generation)])
