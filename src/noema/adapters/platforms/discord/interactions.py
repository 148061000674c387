"""Reading an interaction Discord posted: who, where, which command or button, which options.

Only the parts Noema uses are read, each checked for its type; anything malformed is an
InvalidInput (answered 400), never a crash further in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from noema.domain.errors import InvalidInput

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  #: Discord's upload limit without boosts
DISCORD_EPOCH_MS = 1_420_070_400_000
_SNOWFLAKE = re.compile(r"^\d{1,25}$")
_NAME = re.compile(r"^[-_'\w]{1,32}$")


class InteractionType(IntEnum):
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


@dataclass(frozen=True)
class Attachment:
    """A file the user attached to a command option."""

    id: str
    filename: str
    url: str
    size: int
    content_type: str


@dataclass(frozen=True)
class Interaction:
    """The parts of one interaction Noema acts on."""

    type: InteractionType
    id: str
    application_id: str
    token: str = field(repr=False)  #: a credential for 15 minutes: kept out of reprs and tracebacks
    user_id: str = ""
    username: str | None = None
    display_name: str | None = None
    channel_id: str | None = None
    guild_id: str | None = None
    name: str = ""  #: the command's name (slash commands and autocomplete)
    options: dict[str, Any] = field(default_factory=dict)  #: leaf option values by name
    focused: str | None = None  #: the option being typed (autocomplete)
    attachments: dict[str, Attachment] = field(default_factory=dict)  #: resolved attachments by id
    custom_id: str = ""  #: the pressed component
    size_limit: int = MAX_ATTACHMENT_BYTES

    @property
    def created_at(self) -> float:
        """When Discord created the interaction (seconds since the epoch, from its snowflake id)."""
        return ((int(self.id) >> 22) + DISCORD_EPOCH_MS) / 1000

    def attachment(self, option: str) -> Attachment | None:
        """The attachment given for an attachment option, if any."""
        value = self.options.get(option)
        return self.attachments.get(value) if isinstance(value, str) else None


def _bad(what: str) -> InvalidInput:
    return InvalidInput(f"The interaction is malformed: {what}.")


def _snowflake(value: Any, what: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _SNOWFLAKE.match(value):
        raise _bad(f"{what} is not an id")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"{what} is not an object")
    return value


def parse_interaction(payload: Any) -> Interaction:
    """The interaction in a decoded request body; InvalidInput when it is not one."""
    if not isinstance(payload, dict):
        raise _bad("the body is not an object")
    raw_type = payload.get("type")
    if (
        not isinstance(raw_type, int)
        or isinstance(raw_type, bool)
        or raw_type not in {t.value for t in InteractionType}
    ):
        raise _bad("unknown interaction type")
    kind = InteractionType(raw_type)
    token = payload.get("token")
    if not isinstance(token, str) or not 1 <= len(token) <= 500:
        raise _bad("the token is missing")
    base: dict[str, Any] = {
        "type": kind,
        "id": _snowflake(payload.get("id"), "id"),
        "application_id": _snowflake(payload.get("application_id"), "application_id"),
        "token": token,
    }
    if kind is InteractionType.PING:
        return Interaction(**base)
    member = _dict(payload.get("member"), "member")
    user = _dict(member.get("user") or payload.get("user"), "user")
    limit = payload.get("attachment_size_limit")
    return Interaction(
        **base,
        user_id=_snowflake(user.get("id"), "user id") or "",
        username=_text(user.get("username")),
        display_name=_text(member.get("nick")) or _text(user.get("global_name")) or _text(user.get("username")),
        channel_id=_snowflake(payload.get("channel_id"), "channel_id", required=False),
        guild_id=_snowflake(payload.get("guild_id"), "guild_id", required=False),
        size_limit=limit
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
        else MAX_ATTACHMENT_BYTES,
        **_data(kind, _dict(payload.get("data"), "data")),
    )


def _text(value: Any) -> str | None:
    return value[:100] if isinstance(value, str) and value else None


def _data(kind: InteractionType, data: dict[str, Any]) -> dict[str, Any]:
    if kind is InteractionType.MESSAGE_COMPONENT:
        custom_id = data.get("custom_id")
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
            raise _bad("the component has no custom_id")
        return {"custom_id": custom_id}
    if kind is InteractionType.MODAL_SUBMIT:
        return {"custom_id": str(data.get("custom_id") or "")[:100]}
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad("the command has no name")
    options, focused = _leaf_options(data.get("options"))
    return {"name": name, "options": options, "focused": focused, "attachments": _attachments(data)}


def _leaf_options(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Option values by name (inside any sub-command), and the focused one."""
    if raw is None:
        return {}, None
    if not isinstance(raw, list) or len(raw) > 25:
        raise _bad("options is not a list")
    if len(raw) == 1 and isinstance(raw[0], dict) and raw[0].get("type") in (1, 2):
        return _leaf_options(raw[0].get("options"))
    values: dict[str, Any] = {}
    focused = None
    for option in raw:
        if not isinstance(option, dict) or not isinstance(option.get("name"), str):
            raise _bad("an option has no name")
        value = option.get("value")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise _bad(f"option {option['name'][:32]!r} has an unusable value")
        values[option["name"][:32]] = value
        if option.get("focused") is True:
            focused = option["name"][:32]
    return values, focused


def _attachments(data: dict[str, Any]) -> dict[str, Attachment]:
    resolved = _dict(_dict(data.get("resolved"), "resolved").get("attachments"), "resolved attachments")
    result = {}
    for key, item in list(resolved.items())[:10]:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise _bad("an attachment has no url")
        size = item.get("size")
        result[str(key)] = Attachment(
            id=str(key),
            filename=str(item.get("filename") or "image")[:100],
            url=item["url"],
            size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
            content_type=str(item.get("content_type") or "")[:100],
        )
    return result
