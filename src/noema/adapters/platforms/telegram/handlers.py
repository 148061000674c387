"""Telegram commands: parse the update, call the chat services, answer in plain words.

Every handler answers; a NoemaError becomes its message, anything else a short apology (the
traceback goes to the log, never to the chat).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Any

import structlog
from telegram import InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatType, ParseMode
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from noema.adapters.platforms.telegram import texts
from noema.adapters.platforms.telegram.images import ImageSource, download, image_of
from noema.adapters.platforms.telegram.payments import StarsOffer, TelegramPayments, topup_button
from noema.adapters.platforms.telegram.target import TelegramTarget
from noema.adapters.platforms.wording import OOPS
from noema.domain.accounts import Platform
from noema.domain.chat_commands import ParsedCommand, parse_command, split_inputs
from noema.domain.errors import InsufficientFunds, InvalidInput, NoemaError, ToolDisabled, ToolNotFound
from noema.domain.linking import CODE_LIFETIME
from noema.domain.platform_updates import PlatformUpdate
from noema.domain.presets import Preset
from noema.domain.tools import THROUGH_PRESET, Tool
from noema.services.chat import ChatRun, ChatServices, ChatUser, Visit

log = structlog.get_logger(__name__)
BUILTINS = {
    "start": "Start here: what Noema does",
    "help": "How to use the bot",
    "tools": "Every tool you can run",
    "status": "Balance, level and running tasks",
    "cancel": "Stop a running generation",
    "link": "Join this account with another platform",
    "apikey": "A personal key for the API",
    "account": "Your account record",
    "set": "Your default inputs for a tool: /set txt2img steps=30",
    "settings": "Show your defaults for a tool",
    "topup": "Add credit with Telegram Stars (or /topup card)",
    "paysupport": "Help with a payment",
}
_Handler = Callable[[Message, "Caller", ParsedCommand], Awaitable[None]]


@dataclass(frozen=True)
class Caller:
    """The person behind an update, with the account and session the command runs in."""

    user: ChatUser
    visit: Visit
    update: PlatformUpdate | None = None  #: the update being answered (a redelivery of it is ignored)

    @property
    def account_id(self) -> str:
        return self.visit.account_id


class TelegramHandlers:
    """The bot's commands and buttons over the chat services."""

    def __init__(self, chat: ChatServices, stars: StarsOffer) -> None:
        self.chat = chat
        self.payments = TelegramPayments(chat, stars)
        self._builtins: dict[str, _Handler] = {
            "start": self._help,
            "help": self._help,
            "tools": self._tools,
            "status": self._status,
            "cancel": self._cancel,
            "link": self._link,
            "apikey": self._apikey,
            "account": self._account,
            "set": self._set,
            "settings": self._settings,
            "topup": self.payments.topup,
            "paysupport": self.payments.paysupport,
        }

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Route commands (in text or in a photo's caption) and button presses here."""
        app.add_handler(MessageHandler(filters.COMMAND | filters.CaptionRegex(r"^/"), self.on_message))
        app.add_handler(CallbackQueryHandler(self.on_button))
        self.payments.install(app)

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command: a built-in one or a tool."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        parsed = parse_command(message.text or message.caption)
        if parsed is None or not parsed.is_for(context.bot.username):
            return
        try:
            caller = await self._enter(user, "/" + parsed.name, update)
            handler = self._builtins.get(parsed.name, self._tool)
            await handler(message, caller, parsed)
        except NoemaError as exc:
            await _reply(message, escape(exc.message))
        except Exception:
            log.exception("telegram_command_failed", command=parsed.name)
            await _reply(message, OOPS)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Rerun or info under a result."""
        query, user = update.callback_query, update.effective_user
        if query is None or user is None or not isinstance(query.message, Message):
            return
        action, _, gid = (query.data or "").partition(":")
        await query.answer()
        message = query.message
        try:
            caller = await self._enter(user, f"button:{action}", update)
            if action in ("rerun", "reseed"):
                key = f"telegram:button:{query.id}"
                await self._rerun(message, caller, gid, key=key, new_seed=action == "reseed")
            elif action == "info":
                generation = await self.chat.generation(caller.account_id, gid)
                await _reply(message, texts.info(generation))
            elif action == "topup":
                await message.reply_text("Top up with Telegram Stars:", reply_markup=self.payments.packages())
            elif action == "stars":
                await self.payments.invoice(message, caller, gid)
        except NoemaError as exc:
            await _reply(message, escape(exc.message))
        except Exception:
            log.exception("telegram_button_failed", action=action[:20])
            await _reply(message, OOPS)

    async def _enter(self, user: User, command: str, update: Update) -> Caller:
        who = ChatUser(Platform.TELEGRAM, str(user.id), user.full_name, user.username)
        return Caller(who, await self.chat.enter(who, command), platform_update(update.update_id))

    async def _help(self, message: Message, _caller: Caller, _parsed: ParsedCommand) -> None:
        await _reply(message, texts.help_text(await self.chat.menu(limit=1)))

    async def _tools(self, message: Message, _caller: Caller, _parsed: ParsedCommand) -> None:
        tools = await self.chat.catalog.listed()
        label = tools[0].backend_label if tools else ""
        for part in texts.split_lines(texts.tools_text(tools, label)):
            await _reply(message, part)

    async def _status(self, message: Message, caller: Caller, _parsed: ParsedCommand) -> None:
        now = self.chat.clock.now()
        report = await self.chat.status(caller.account_id, now)
        await _reply(message, texts.status_text(report, now), markup=topup_button())

    async def _cancel(self, message: Message, caller: Caller, parsed: ParsedCommand) -> None:
        g = await self.chat.cancel(caller.account_id, parsed.args.split()[0] if parsed.args else None)
        await _reply(message, texts.cancelled(g))

    async def _link(self, message: Message, caller: Caller, parsed: ParsedCommand) -> None:
        if parsed.args:
            await self.chat.redeem_link(caller.account_id, parsed.args.split()[0])
            await _reply(message, "🔗 Linked: this Telegram account and the other one are now one account.")
            return
        code, url = await self.chat.link_codes(caller.account_id, Platform.TELEGRAM)
        await _reply(message, texts.link_text(code.code, int(CODE_LIFETIME.total_seconds() // 60), url))

    async def _apikey(self, message: Message, caller: Caller, _parsed: ParsedCommand) -> None:
        if message.chat.type != ChatType.PRIVATE:
            await _reply(message, "For your safety I send API keys only in a private chat: message me directly.")
            return
        key = await self.chat.new_api_key(caller.account_id, name="telegram")
        await _reply(
            message,
            f"Your new API key (shown once, keep it secret):\n<code>{escape(key.plain)}</code>\n"
            f"Use it as <code>Authorization: Bearer …</code> on {escape(self.chat.public_url)}/api/v1",
        )

    async def _account(self, message: Message, caller: Caller, _parsed: ParsedCommand) -> None:
        found = await self.chat.account(caller.account_id)
        await _reply(message, texts.account_text(found.account, found.identities))

    async def _set(self, message: Message, caller: Caller, parsed: ParsedCommand) -> None:
        name, _, rest = parsed.args.partition(" ")
        if not name:
            raise InvalidInput("Say which tool and what to keep, e.g. /set txt2img steps=30 (or /set txt2img clear).")
        tool = await self._find(name.lstrip("/").lower())
        values = await self.chat.set_defaults(caller.account_id, tool, rest)
        await _reply(message, texts.preferences_text(tool, values))

    async def _settings(self, message: Message, caller: Caller, parsed: ParsedCommand) -> None:
        name = parsed.args.split()[0] if parsed.args else ""
        if not name:
            raise InvalidInput("Say which tool, e.g. /settings txt2img.")
        tool = await self._find(name.lstrip("/").lower())
        await _reply(message, texts.preferences_text(tool, await self.chat.defaults(caller.account_id, tool)))

    async def _tool(self, message: Message, caller: Caller, parsed: ParsedCommand) -> None:
        preset = await self.chat.presets.find(parsed.name)
        if preset is not None:
            await self._preset(message, caller, parsed, preset)
            return
        try:
            tool = await self._find(parsed.name)
        except ToolNotFound:
            if message.chat.type == ChatType.PRIVATE or parsed.addressee:
                await _reply(message, f"There is no command /{escape(parsed.name)}. /tools lists what you can run.")
            return
        prompt, options = split_inputs(tool, parsed.args)
        inputs: dict[str, Any] = dict(options)
        if tool.prompt_input is not None and prompt:
            inputs[tool.prompt_input.name] = prompt
        source = image_of(message)
        if problem := _missing(tool, prompt, source):
            await _reply(message, texts.tool_usage(tool, problem))
            return
        await self._start(message, caller, tool, inputs, source, key=_key(message))

    async def _preset(self, message: Message, caller: Caller, parsed: ParsedCommand, preset: Preset) -> None:
        """``/make +style a castle`` (replying to the style photo): a preset with its features."""
        words = parsed.args.split()
        features = tuple(w[1:].lower() for w in words if w.startswith("+") and len(w) > 1)
        tool = await self.chat.catalog.find(preset.route(features)[0], caller=THROUGH_PRESET)
        prompt, inputs = split_inputs(tool, " ".join(w for w in words if not (w.startswith("+") and len(w) > 1)))
        if tool.prompt_input is not None and prompt:
            inputs[tool.prompt_input.name] = prompt
        source = image_of(message) if features else None
        if len(features) > 1:
            raise InvalidInput("On Telegram a preset takes one feature and its photo; use the web API for more.")
        if features and source is None:
            raise InvalidInput(f"+{features[0]} needs an image: send the command as a reply to a photo.")
        run = ChatRun(tool, inputs, preset=preset.command, features=features)
        image_input = preset.features[features[0]] if features else None
        await self._start(message, caller, tool, inputs, source, key=_key(message), run=run, image_input=image_input)

    async def _find(self, command: str) -> Tool:
        for tool in await self.chat.callable_tools():
            if tool.command == command:
                return tool
        raise ToolNotFound(f"There is no tool /{command[:40]}; /tools lists them.")

    async def _rerun(self, message: Message, caller: Caller, gid: str, *, key: str, new_seed: bool) -> None:
        """The same inputs again (the recorded seed reproduces the image), or with fresh random seeds."""
        plan, earlier = await self.chat.earlier_run(caller.account_id, gid, new_seed=new_seed)
        before = TelegramTarget.parse(earlier.delivery)
        file_id = before.image_file_id if before is not None else None
        source = ImageSource(file_id, "image/jpeg") if file_id is not None else None
        image = plan.tool.image_input
        if plan.missing_file(given=[image.name] if image is not None and source is not None else []) is not None:
            raise InvalidInput("That run's image is not available any more; reply to the photo again.")
        await self._start(message, caller, plan.tool, plan.inputs, source, key=key)

    async def _start(
        self,
        message: Message,
        caller: Caller,
        tool: Tool,
        inputs: dict[str, Any],
        source: ImageSource | None,
        *,
        key: str,
        run: ChatRun | None = None,
        image_input: str | None = None,
    ) -> None:
        """Acknowledge at once, then ask for the generation; the acknowledgement becomes the progress message."""
        if not tool.enabled:
            raise ToolDisabled(tool.disabled_reason or f"/{tool.command} is disabled.")
        files = {}
        image_input = image_input or (tool.image_input.name if tool.image_input is not None else None)
        if source is not None and image_input is not None:
            files[image_input] = await download(message.get_bot(), source)
        estimate, _seconds = await self.chat.generations.estimate(tool)
        ack = await _reply(message, texts.received(tool, estimate))
        to = TelegramTarget(
            message.chat.id,
            message_id=message.message_id,
            progress_message_id=ack.message_id,
            image_file_id=source.file_id if source is not None else None,
        )
        try:
            base = run or ChatRun(tool, inputs)
            asked = ChatRun(
                tool,
                inputs,
                files,
                to.to_json(),
                key,
                preset=base.preset,
                features=base.features,
                answers=caller.update,
            )
            await self.chat.run(caller.visit, caller.user, asked)
        except NoemaError as exc:
            text = texts.tool_usage(tool, exc.message) if isinstance(exc, InvalidInput) else escape(exc.message)
            markup = topup_button() if isinstance(exc, InsufficientFunds) else None
            await ack.edit_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


def platform_update(update_id: int) -> PlatformUpdate:
    """A Telegram update by its id, as recorded once answered."""
    return PlatformUpdate(Platform.TELEGRAM.value, str(update_id))


def _missing(tool: Tool, prompt: str, source: ImageSource | None) -> str | None:
    image = tool.image_input
    if image is not None and image.required and source is None:
        return f"/{tool.command} needs an image: send the command as a reply to a photo, or as a photo's caption."
    text = tool.prompt_input
    if text is not None and text.required and not prompt:
        return f"/{tool.command} needs a prompt: write what you want after the command."
    return None


def _key(message: Message) -> str:
    """The idempotency key of a command: Telegram may deliver the same update again."""
    return f"telegram:{message.chat.id}:{message.message_id}"


async def _reply(message: Message, text: str, *, markup: InlineKeyboardMarkup | None = None) -> Message:
    return await message.reply_text(text, parse_mode=ParseMode.HTML, do_quote=True, reply_markup=markup)
