"""Interaction objects as Discord POSTs them to an app's interactions endpoint, and their signatures.

Discord signs ``timestamp + body`` with the application's Ed25519 key and sends the hex signature in
``X-Signature-Ed25519`` and the timestamp in ``X-Signature-Timestamp``.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey

APP_PERMISSIONS = "2248473465835073"
MEMBER_PERMISSIONS = "2248473465835073"
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
OPTION_TYPES = {bool: 5, int: 4, float: 10, str: 3}


@dataclass
class InteractionRecord:
    """What the fake remembers of one interaction it issued, and how the app answered it."""

    id: str
    token: str
    type: int
    created: float
    payload: dict[str, Any]
    callback_type: int | None = None
    callback_data: Any = None
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    deferred: bool = False

    @property
    def acknowledged(self) -> bool:
        return self.callback_type is not None

    @property
    def user(self) -> dict[str, Any]:
        return dict(self.payload.get("member", {}).get("user") or self.payload.get("user") or {})


def new_token(interaction_id: str) -> str:
    """An interaction token shaped like Discord's: base64url of ``interaction:<id>:<random>``."""
    raw = f"interaction:{interaction_id}:{secrets.token_urlsafe(96)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(key: SigningKey, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """The two signature headers Discord sends with an interaction."""
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    signature = key.sign(stamp.encode() + body).signature
    return {"X-Signature-Ed25519": signature.hex(), "X-Signature-Timestamp": stamp}


def user_object(user_id: str, username: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": username,
        "global_name": username.title(),
        "avatar": None,
        "discriminator": "0",
        "public_flags": 0,
        "flags": 0,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }


def bot_user(application_id: str, name: str) -> dict[str, Any]:
    """The application's bot user: the author of interaction responses (an HTTP-interactions bot)."""
    return {
        "id": application_id,
        "username": name,
        "global_name": None,
        "avatar": None,
        "discriminator": "0311",
        "public_flags": 1 << 19,
        "flags": 1 << 19,
        "bot": True,
    }


def _member(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "user": user,
        "roles": [],
        "nick": None,
        "avatar": None,
        "banner": None,
        "premium_since": None,
        "joined_at": "2024-01-02T03:04:05.678000+00:00",
        "communication_disabled_until": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "permissions": MEMBER_PERMISSIONS,
    }


def _channel(channel_id: str, guild_id: str | None, user: dict[str, Any]) -> dict[str, Any]:
    if guild_id is None:
        return {"id": channel_id, "type": 1, "last_message_id": None, "flags": 0, "recipients": [user]}
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": "general",
        "position": 0,
        "parent_id": None,
        "topic": None,
        "nsfw": False,
        "flags": 0,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "permissions": APP_PERMISSIONS,
    }


def _place(guild_id: str | None, user: dict[str, Any]) -> dict[str, Any]:
    """Where the interaction happened: a guild (with the member) or a DM with the bot (with the user)."""
    if guild_id is None:
        return {"user": user, "context": 1, "authorizing_integration_owners": {"0": "0"}}
    return {
        "guild_id": guild_id,
        "guild": {"id": guild_id, "locale": "en-US", "features": []},
        "guild_locale": "en-US",
        "member": _member(user),
        "context": 0,
        "authorizing_integration_owners": {"0": guild_id},
    }


def build_interaction(
    *,
    interaction_id: str,
    application_id: str,
    token: str,
    type: int,
    data: dict[str, Any] | None,
    guild_id: str | None,
    channel_id: str,
    user: dict[str, Any],
    message: dict[str, Any] | None,
    locale: str,
) -> dict[str, Any]:
    """A full interaction object (PING carries only the envelope)."""
    payload: dict[str, Any] = {
        "id": interaction_id,
        "application_id": application_id,
        "type": type,
        "token": token,
        "version": 1,
        "entitlements": [],
    }
    if type == PING:
        payload["user"] = user
        return payload
    if data is not None:
        payload["data"] = data
    payload["channel_id"] = channel_id
    payload["channel"] = _channel(channel_id, guild_id, user)
    payload["app_permissions"] = APP_PERMISSIONS
    payload["locale"] = locale
    payload["attachment_size_limit"] = 26_214_400
    payload.update(_place(guild_id, user))
    if message is not None:
        payload["message"] = copy.deepcopy(message)
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    """The body bytes Discord would send (compact JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def typed_options(options: list[dict[str, Any]], definitions: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Options with ``type`` filled in: from the registered command when known, else from the value."""
    known = {d.get("name"): d for d in definitions or []}
    result = []
    for option in options:
        definition = known.get(option.get("name"), {})
        kind = option.get("type") or definition.get("type") or OPTION_TYPES.get(type(option.get("value")), 3)
        option = {"name": option.get("name"), "type": kind, **option}
        if "options" in option:
            option["options"] = typed_options(option["options"], definition.get("options"))
        result.append(option)
    return result


def nest(
    path: list[str], options: list[dict[str, Any]], definitions: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Wrap ``options`` in the sub-command (group) options named by ``path`` (``["group", "sub"]``)."""
    if not path:
        return typed_options(options, definitions)
    known = {d.get("name"): d for d in definitions or []}
    definition = known.get(path[0], {})
    kind = definition.get("type") or (2 if len(path) > 1 else 1)
    return [{"name": path[0], "type": kind, "options": nest(path[1:], options, definition.get("options"))}]


def leaf_options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The innermost option list (inside sub-commands), where values live."""
    while len(options) == 1 and options[0].get("type") in (1, 2):
        options = options[0].setdefault("options", [])
    return options


def mark_focused(options: list[dict[str, Any]], focused: str | None) -> None:
    """Set ``focused: true`` on the named value option, or on the last one when none is marked."""
    leaf = leaf_options(options)
    if any(o.get("focused") for o in leaf):
        return
    targets = [o for o in leaf if o.get("name") == focused] if focused else leaf[-1:]
    if not targets:
        raise ValueError(f"no option named {focused!r} to focus")
    targets[0]["focused"] = True
    targets[0]["value"] = str(targets[0].get("value", ""))
