"""State of the fake Bot API: the bot, chats, messages, what the bot sent, updates, webhook and commands."""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tests.fakes.telegram_api_core import bad_request
from tests.fakes.telegram_api_files import FileStore

DEFAULT_USER_ID = 1001
SUPERGROUP_ID_BASE = -1_000_000_000_000


class MessageKind(str, Enum):
    """What a sent message carries; album items are ``media_group`` (their ``media_type`` says which media)."""

    TEXT = "text"
    PHOTO = "photo"
    DOCUMENT = "document"
    ANIMATION = "animation"
    VIDEO = "video"
    MEDIA_GROUP = "media_group"


@dataclass
class SentMessage:
    """A message the bot sent. ``message`` is the live Bot API object: edits change it, ``history`` keeps the old ones."""

    chat_id: int
    message_id: int
    kind: MessageKind
    method: str
    message: dict[str, Any]
    content: bytes | None = None
    media_type: str | None = None
    reply_markup: dict[str, Any] | None = None
    parse_mode: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    @property
    def text(self) -> str | None:
        """The current text (after HTML parsing)."""
        return self.message.get("text")

    @property
    def caption(self) -> str | None:
        """The current caption of a media message."""
        return self.message.get("caption")

    @property
    def entities(self) -> list[dict[str, Any]]:
        """Entities of the text or caption."""
        return list(self.message.get("entities") or self.message.get("caption_entities") or [])

    @property
    def reply_to_message_id(self) -> int | None:
        """The message this one replies to."""
        reply = self.message.get("reply_to_message")
        return reply["message_id"] if reply else None

    @property
    def media_group_id(self) -> str | None:
        """The album this message belongs to."""
        return self.message.get("media_group_id")

    @property
    def media(self) -> Any:
        """The PhotoSize list, Document, Animation or Video object of a media message."""
        return self.message.get(self.media_type) if self.media_type else None

    @property
    def file_name(self) -> str | None:
        """The file name Telegram reports for a document, animation or video."""
        media = self.media
        return media.get("file_name") if isinstance(media, dict) else None

    @property
    def mime_type(self) -> str | None:
        """The MIME type Telegram reports for a document, animation or video."""
        media = self.media
        return media.get("mime_type") if isinstance(media, dict) else None


@dataclass
class Webhook:
    """The webhook as setWebhook left it; ``secret_token`` is kept although getWebhookInfo never shows it."""

    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str | None = None


def reply_copy(message: dict[str, Any]) -> dict[str, Any]:
    """A message as it appears in ``reply_to_message``: without its own reply."""
    return copy.deepcopy({key: value for key, value in message.items() if key != "reply_to_message"})


class BotState:
    """Everything the fake server remembers for its one bot. Mutations happen under ``lock``."""

    def __init__(self, token: str, bot_username: str, *, long_poll_cap: float) -> None:
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Noema Test",
            "username": bot_username,
        }
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.sent: list[SentMessage] = []
        self.files = FileStore()
        self.webhook = Webhook()
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.pending_updates: list[dict[str, Any]] = []
        self.callback_answers: dict[str, dict[str, Any] | None] = {}
        self.reactions: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.pre_checkout_answers: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, int] = {}  #: Stars charge id -> the user who paid
        self.refunded: set[str] = set()
        self.long_poll_cap = long_poll_cap
        self.poll_generation = 0
        self.closing = False
        self.lock = threading.RLock()
        self._message_ids: dict[int, Iterator[int]] = {}
        self._update_ids = itertools.count(100_000_001)

    def next_update_id(self) -> int:
        """The next update_id, increasing across all updates."""
        return next(self._update_ids)

    def next_message_id(self, chat_id: int) -> int:
        """The next message_id in this chat; incoming and outgoing messages share the counter, as on Telegram."""
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def chat(self, chat_id: int) -> dict[str, Any]:
        """The Chat object for an id; unknown ids become a private chat (positive), supergroup or group."""
        if chat_id not in self.chats:
            if chat_id > 0:
                self.chats[chat_id] = {
                    "id": chat_id,
                    "first_name": f"User {chat_id}",
                    "username": f"user{chat_id}",
                    "type": "private",
                }
            else:
                kind = "supergroup" if chat_id <= SUPERGROUP_ID_BASE else "group"
                self.chats[chat_id] = {"id": chat_id, "title": f"Test {kind} {chat_id}", "type": kind}
        return self.chats[chat_id]

    def new_message(self, chat_id: int, *, sender: dict[str, Any] | None = None) -> dict[str, Any]:
        """A fresh message in a chat from ``sender`` (the bot by default), not yet stored."""
        return {
            "message_id": self.next_message_id(chat_id),
            "from": copy.deepcopy(sender or self.bot_user),
            "chat": copy.deepcopy(self.chat(chat_id)),
            "date": int(time.time()),
        }

    def reply_target(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        """The ``reply_to_message`` for ``reply_parameters`` (or the older ``reply_to_message_id``)."""
        wanted = params.get("reply_parameters")
        if wanted is None and params.get("reply_to_message_id") is not None:
            wanted = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if wanted is None:
            return None
        if not isinstance(wanted, dict) or not isinstance(wanted.get("message_id"), int):
            raise bad_request("can't parse reply parameters JSON object")
        target_chat = wanted.get("chat_id", chat_id)
        target = self.messages.get((target_chat, wanted["message_id"]))
        if target is None:
            if wanted.get("allow_sending_without_reply") is True:
                return None
            raise bad_request("message to be replied not found")
        return reply_copy(target)

    def store(self, message: dict[str, Any]) -> None:
        """Keep a message so it can be replied to, edited, deleted and reacted to."""
        self.messages[(message["chat"]["id"], message["message_id"])] = message

    def record(
        self,
        message: dict[str, Any],
        *,
        kind: MessageKind,
        method: str,
        params: dict[str, Any],
        content: bytes | None = None,
        media_type: str | None = None,
    ) -> SentMessage:
        """Store a message the bot sent and remember how it was sent."""
        self.store(message)
        sent = SentMessage(
            chat_id=message["chat"]["id"],
            message_id=message["message_id"],
            kind=kind,
            method=method,
            message=message,
            content=content,
            media_type=media_type,
            reply_markup=params.get("reply_markup"),
            parse_mode=params.get("parse_mode"),
        )
        self.sent.append(sent)
        return sent

    def sent_message(self, chat_id: int, message_id: int) -> SentMessage | None:
        """The record of a message the bot sent."""
        return next((s for s in self.sent if s.chat_id == chat_id and s.message_id == message_id), None)
