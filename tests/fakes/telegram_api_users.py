"""What users do in the fake: post messages (text, photos, documents, replies) and press inline buttons.

Each action makes a Bot API ``Update``, queues it for getUpdates and returns it, so a test can also
post it to the bot's webhook itself.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from tests.fakes.telegram_api_state import DEFAULT_USER_ID, BotState, reply_copy
from tests.fakes.telegram_api_text import command_entities


def make_user(user_id: int) -> dict[str, Any]:
    """A human User object; a private chat with the same id has the same names."""
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": f"User {user_id}",
        "username": f"user{user_id}",
        "language_code": "en",
    }


def _sender(chat_id: int, user_id: int | None) -> dict[str, Any]:
    if user_id is None:
        user_id = chat_id if chat_id > 0 else DEFAULT_USER_ID
    return make_user(user_id)


def _queue(state: BotState, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    update = {"update_id": state.next_update_id(), kind: payload}
    state.pending_updates.append(update)
    return copy.deepcopy(update)


def _add_text(message: dict[str, Any], field: str, text: str) -> None:
    message[field] = text
    entities = command_entities(text)
    if entities:
        message["entities" if field == "text" else "caption_entities"] = entities


def user_message(
    state: BotState,
    chat_id: int,
    text: str | None = None,
    *,
    user_id: int | None = None,
    photo: bytes | None = None,
    document: tuple[str, bytes, str] | None = None,
    caption: str | None = None,
    reply_to: int | None = None,
) -> dict[str, Any]:
    """A message from a user in ``chat_id``, stored so the bot can reply to it, and its queued Update."""
    if (text is None) == (photo is None and document is None):
        raise ValueError("a user message has either text or a photo/document")
    if caption is not None and text is not None:
        raise ValueError("a caption belongs to a photo or document, not to a text message")
    with state.lock:
        message = state.new_message(chat_id, sender=_sender(chat_id, user_id))
        if reply_to is not None:
            target = state.messages.get((chat_id, reply_to))
            if target is None:
                raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
            message["reply_to_message"] = reply_copy(target)
        if text is not None:
            _add_text(message, "text", text)
        if photo is not None:
            message["photo"] = state.files.add_photo(photo)
        if document is not None:
            file_name, content, mime_type = document
            message["document"] = state.files.add_document(content, file_name=file_name, mime_type=mime_type)
        if caption:
            _add_text(message, "caption", caption)
        state.store(message)
        return _queue(state, "message", message)


def _has_button(message: dict[str, Any], data: str) -> bool:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return any(button.get("callback_data") == data for row in rows for button in row)


def callback_query(
    state: BotState, chat_id: int, message_id: int, data: str, *, user_id: int | None = None
) -> dict[str, Any]:
    """A press on an inline button of a message the bot sent; the button must exist, as in a real client."""
    with state.lock:
        message = state.messages.get((chat_id, message_id))
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        if not _has_button(message, data):
            raise ValueError(f"message {message_id} has no inline button with callback_data {data!r}")
        query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        state.callback_answers[query_id] = None
        query = {
            "id": query_id,
            "from": _sender(chat_id, user_id),
            "message": copy.deepcopy(message),
            "chat_instance": str(abs(hash((state.token, chat_id))) % 10**19),
            "data": data,
        }
        return _queue(state, "callback_query", query)
