"""Bot-level methods of the fake Bot API: getMe, the webhook, getUpdates and the command menus."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from typing import Any
from urllib.parse import urlparse

from tests.fakes.telegram_api_core import ApiResult, BotApiError, UploadedFile, bad_request
from tests.fakes.telegram_api_state import BotState, Webhook

UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
WEBHOOK_PORTS = (80, 88, 443, 8443)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
POLL_INTERVAL = 0.01
MAX_COMMANDS = 100
SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_RE = re.compile(r"(?:[a-z]{2})?")

Files = dict[str, UploadedFile]


def get_me(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
    """The bot's User object with the fields getMe adds."""
    return {
        **copy.deepcopy(state.bot_user),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def _check_webhook_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if (parsed.port or 443) not in WEBHOOK_PORTS:
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


def _allowed_updates(value: Any) -> list[str] | None:
    """Telegram's reading of ``allowed_updates``: known types in its own order; empty means the default."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request("can't parse allowed_updates JSON object")
    chosen = [name for name in UPDATE_TYPES if name in value]
    return chosen or None


def _clamp(value: Any, default: int, low: int, high: int) -> int:
    number = value if isinstance(value, int) and not isinstance(value, bool) else default
    return max(low, min(high, number))


def set_webhook(state: BotState, params: dict[str, Any], files: Files) -> ApiResult:
    """setWebhook; an empty url removes the webhook, as on Telegram."""
    url = str(params.get("url") or "")
    if not url:
        return delete_webhook(state, params, files)
    _check_webhook_url(url)
    secret = params.get("secret_token")
    if secret is not None and not _SECRET_RE.fullmatch(str(secret)):
        raise bad_request("secret token contains unallowed characters")
    allowed = _allowed_updates(params.get("allowed_updates"))
    webhook = Webhook(
        url=url,
        secret_token=None if secret is None else str(secret),
        max_connections=_clamp(params.get("max_connections"), 40, 1, 100),
        allowed_updates=allowed if "allowed_updates" in params else state.webhook.allowed_updates,
        ip_address=params.get("ip_address") or "149.154.167.220",
    )
    if params.get("drop_pending_updates"):
        state.pending_updates.clear()
    if webhook == state.webhook:
        return ApiResult(True, "Webhook is already set")
    state.webhook = webhook
    return ApiResult(True, "Webhook was set")


def delete_webhook(state: BotState, params: dict[str, Any], files: Files) -> ApiResult:
    """``deleteWebhook`` (the allowed_updates setting survives, as on Telegram)."""
    if params.get("drop_pending_updates"):
        state.pending_updates.clear()
    if not state.webhook.url:
        return ApiResult(True, "Webhook is already deleted")
    state.webhook = Webhook(allowed_updates=state.webhook.allowed_updates)
    return ApiResult(True, "Webhook was deleted")


def get_webhook_info(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
    """getWebhookInfo; the secret token is never shown."""
    webhook = state.webhook
    info: dict[str, Any] = {
        "url": webhook.url,
        "has_custom_certificate": False,
        "pending_update_count": len(state.pending_updates),
    }
    if webhook.url:
        info.update(max_connections=webhook.max_connections, ip_address=webhook.ip_address)
    if webhook.allowed_updates:
        info["allowed_updates"] = list(webhook.allowed_updates)
    return info


def update_type(update: dict[str, Any]) -> str:
    """The kind of an Update: the name of its one field besides update_id."""
    return next(key for key in update if key != "update_id")


def _confirm(state: BotState, offset: Any) -> None:
    """Forget updates below a positive offset; a negative one keeps only that many of the newest."""
    if not isinstance(offset, int) or isinstance(offset, bool) or offset == 0:
        return
    if offset > 0:
        state.pending_updates[:] = [u for u in state.pending_updates if u["update_id"] >= offset]
    else:
        del state.pending_updates[: max(len(state.pending_updates) + offset, 0)]


def _ready(state: BotState, generation: int, limit: int) -> list[dict[str, Any]]:
    if state.poll_generation != generation:
        raise BotApiError(409, POLL_CONFLICT)
    allowed = set(state.webhook.allowed_updates or (t for t in UPDATE_TYPES if t not in NOT_BY_DEFAULT))
    state.pending_updates[:] = [u for u in state.pending_updates if update_type(u) in allowed]
    return copy.deepcopy(state.pending_updates[:limit])


async def get_updates(state: BotState, params: dict[str, Any], files: Files) -> list[dict[str, Any]]:
    """``getUpdates`` with a long poll of ``timeout`` seconds, cut to the fake's ``long_poll_cap``."""
    with state.lock:
        if state.webhook.url:
            raise BotApiError(409, WEBHOOK_CONFLICT)
        if "allowed_updates" in params:
            state.webhook.allowed_updates = _allowed_updates(params["allowed_updates"])
        _confirm(state, params.get("offset"))
        state.poll_generation += 1
        generation = state.poll_generation
    limit = _clamp(params.get("limit"), 100, 1, 100)
    timeout = params.get("timeout")
    wait = _number(timeout) or 0.0
    deadline = time.monotonic() + max(0.0, min(wait, state.long_poll_cap))
    while True:
        with state.lock:
            ready = _ready(state, generation, limit)
            if ready or time.monotonic() >= deadline or state.closing:
                return ready
        await asyncio.sleep(POLL_INTERVAL)


def _number(value: Any) -> float | None:
    """The value as a float, None when it is not a number (nor a string of one)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def scope_key(scope: Any) -> str:
    """A BotCommandScope as a key: ``default``, ``chat:ID``, ``chat_member:ID:USER`` and so on."""
    if scope is None:
        return "default"
    if not isinstance(scope, dict) or scope.get("type") not in SCOPE_TYPES:
        raise bad_request("can't parse BotCommandScope JSON object")
    kind: str = scope["type"]  # one of SCOPE_TYPES
    if kind in ("chat", "chat_administrators", "chat_member"):
        if not isinstance(scope.get("chat_id"), int):
            raise bad_request("chat not found")
        if kind == "chat_member":
            if not isinstance(scope.get("user_id"), int):
                raise bad_request("invalid user_id specified")
            return f"{kind}:{scope['chat_id']}:{scope['user_id']}"
        return f"{kind}:{scope['chat_id']}"
    return kind


def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
    language = str(params.get("language_code") or "")
    if not _LANGUAGE_RE.fullmatch(language):
        raise bad_request("invalid language code specified")
    return scope_key(params.get("scope")), language


def _check_command(command: Any) -> dict[str, Any]:
    if not isinstance(command, dict):
        raise bad_request("can't parse BotCommand JSON object")
    name = command.get("command")
    if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name.removeprefix("/")):
        raise bad_request("BOT_COMMAND_INVALID")
    description = command.get("description")
    if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
        raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    return {"command": name.removeprefix("/"), "description": description.strip()}


def set_my_commands(state: BotState, params: dict[str, Any], files: Files) -> bool:
    """setMyCommands, checked as Telegram checks it; an empty list deletes the menu."""
    commands = params.get("commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > MAX_COMMANDS:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    checked = [_check_command(command) for command in commands]
    key = _commands_key(params)
    if checked:
        state.commands[key] = checked
    else:
        state.commands.pop(key, None)
    return True


def get_my_commands(state: BotState, params: dict[str, Any], files: Files) -> list[dict[str, Any]]:
    """``getMyCommands`` for exactly this scope and language."""
    return copy.deepcopy(state.commands.get(_commands_key(params), []))


def delete_my_commands(state: BotState, params: dict[str, Any], files: Files) -> bool:
    """``deleteMyCommands`` for this scope and language."""
    state.commands.pop(_commands_key(params), None)
    return True
