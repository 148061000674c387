"""Message methods of the fake Bot API: sendMessage, the edits, deleteMessage, chat actions, reactions, callbacks."""

from __future__ import annotations

import copy
import time
from typing import Any

from telegram.constants import ReactionEmoji

from tests.fakes.telegram_api_core import UploadedFile, bad_request, chat_id_of, int_param
from tests.fakes.telegram_api_state import BotState, MessageKind, SentMessage
from tests.fakes.telegram_api_text import CAPTION_LIMIT, TEXT_LIMIT, check_reply_markup, format_text

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a content and reply markup of the current message"
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
REACTION_EMOJI = frozenset(emoji.value for emoji in ReactionEmoji)
CALLBACK_TEXT_LIMIT = 200
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"

Files = dict[str, UploadedFile]


def text_of(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text and entities of a sendMessage/editMessageText request."""
    return format_text(
        params.get("text"),
        params.get("parse_mode"),
        params.get("entities"),
        limit=TEXT_LIMIT,
        too_long="message is too long",
        empty="message text is empty",
    )


def caption_of(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The caption and caption entities of a media request or an InputMedia (empty is allowed)."""
    return format_text(
        params.get("caption"),
        params.get("parse_mode"),
        params.get("caption_entities"),
        limit=CAPTION_LIMIT,
        too_long="message caption is too long",
        empty=None,
    )


def set_optional(message: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` when the value is truthy, drop it otherwise (Telegram leaves out empty fields)."""
    if value:
        message[key] = value
    else:
        message.pop(key, None)


def finish_message(
    message: dict[str, Any],
    params: dict[str, Any],
    reply: dict[str, Any] | None,
    markup: dict[str, Any] | None,
) -> None:
    """The fields every sent message may carry: the reply, an inline keyboard, protection."""
    set_optional(message, "reply_to_message", reply)
    set_optional(message, "reply_markup", markup if markup and "inline_keyboard" in markup else None)
    set_optional(message, "has_protected_content", params.get("protect_content") is True)


def send_message(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
    """``sendMessage``."""
    chat_id = chat_id_of(params)
    markup = check_reply_markup(params.get("reply_markup"))
    text, entities = text_of(params)
    reply = state.reply_target(chat_id, params)
    message = state.new_message(chat_id)
    message["text"] = text
    set_optional(message, "entities", entities)
    finish_message(message, params, reply, markup)
    state.record(message, kind=MessageKind.TEXT, method="sendMessage", params=params)
    return copy.deepcopy(message)


def _target(state: BotState, params: dict[str, Any], *, missing: str) -> tuple[int, int]:
    if params.get("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")  # the fake keeps no inline messages
    chat_id = chat_id_of(params)
    return chat_id, int_param(params, "message_id", missing=missing)


def _editable(state: BotState, params: dict[str, Any]) -> SentMessage:
    chat_id, message_id = _target(state, params, missing="message identifier is not specified")
    sent = state.sent_message(chat_id, message_id)
    if sent is None or sent.deleted:
        if (chat_id, message_id) in state.messages:
            raise bad_request("message can't be edited")
        raise bad_request("message to edit not found")
    return sent


def _apply_edit(sent: SentMessage, changes: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Change a sent message as an edit does; the same content and markup is refused."""
    markup = check_reply_markup(params.get("reply_markup"))
    inline = markup if markup and "inline_keyboard" in markup else None
    changes = {**changes, "reply_markup": inline}
    if all(sent.message.get(key) == (value or None) for key, value in changes.items()):
        raise bad_request(NOT_MODIFIED)
    sent.history.append(copy.deepcopy(sent.message))
    for key, value in changes.items():
        set_optional(sent.message, key, value)
    sent.message["edit_date"] = int(time.time())
    sent.reply_markup = inline
    if "parse_mode" in params:
        sent.parse_mode = params.get("parse_mode")
    return copy.deepcopy(sent.message)


def edit_message_text(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
    """``editMessageText`` of a text message the bot sent."""
    sent = _editable(state, params)
    text, entities = text_of(params)
    if "text" not in sent.message:
        raise bad_request("there is no text in the message to edit")
    return _apply_edit(sent, {"text": text, "entities": entities}, params)


def edit_message_caption(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
    """``editMessageCaption`` of a media message the bot sent; an empty caption removes it."""
    sent = _editable(state, params)
    caption, entities = caption_of(params)
    if sent.media_type is None:
        raise bad_request("there is no caption in the message to edit")
    return _apply_edit(sent, {"caption": caption, "caption_entities": entities}, params)


def edit_message_reply_markup(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
    """editMessageReplyMarkup; without reply_markup the inline keyboard is removed."""
    return _apply_edit(_editable(state, params), {}, params)


def delete_message(state: BotState, params: dict[str, Any], files: Files) -> bool:
    """``deleteMessage`` of any message the fake knows in the chat."""
    key = _target(state, params, missing="message identifier is not specified")
    if state.messages.pop(key, None) is None:
        raise bad_request("message to delete not found")
    sent = state.sent_message(*key)
    if sent is not None:
        sent.deleted = True
    return True


def send_chat_action(state: BotState, params: dict[str, Any], files: Files) -> bool:
    """``sendChatAction`` with one of Telegram's actions."""
    chat_id_of(params)
    if params.get("action") not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


def _check_reaction(reaction: Any) -> list[dict[str, Any]]:
    if reaction is None:
        return []
    if not isinstance(reaction, list) or not all(isinstance(item, dict) for item in reaction):
        raise bad_request("can't parse reaction types JSON object")
    for item in reaction:
        if item.get("type") == "emoji" and item.get("emoji") not in REACTION_EMOJI:
            raise bad_request("REACTION_INVALID")
        if item.get("type") == "custom_emoji" and not item.get("custom_emoji_id"):
            raise bad_request("REACTION_INVALID")
        if item.get("type") not in ("emoji", "custom_emoji", "paid"):
            raise bad_request("can't parse reaction types JSON object")
    if len(reaction) > 1:
        raise bad_request("REACTIONS_TOO_MANY")
    return [dict(item) for item in reaction]


def set_message_reaction(state: BotState, params: dict[str, Any], files: Files) -> bool:
    """setMessageReaction: at most one reaction, an emoji from Telegram's list; an empty list removes it."""
    key = _target(state, params, missing="message identifier is not specified")
    reaction = _check_reaction(params.get("reaction"))
    if key not in state.messages:
        raise bad_request("message to react not found")
    if reaction:
        state.reactions[key] = reaction
    else:
        state.reactions.pop(key, None)
    return True


def answer_callback_query(state: BotState, params: dict[str, Any], files: Files) -> bool:
    """answerCallbackQuery, once per query made by ``FakeTelegram.callback_query``."""
    query_id = str(params.get("callback_query_id") or "")
    if query_id not in state.callback_answers or state.callback_answers[query_id] is not None:
        raise bad_request(_QUERY_INVALID)
    text = params.get("text")
    if text is not None and len(str(text)) > CALLBACK_TEXT_LIMIT:
        raise bad_request("MESSAGE_TOO_LONG")
    state.callback_answers[query_id] = {
        "text": text,
        "show_alert": params.get("show_alert", False),
        "url": params.get("url"),
        "cache_time": params.get("cache_time", 0),
    }
    return True
