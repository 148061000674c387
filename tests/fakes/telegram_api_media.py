"""Media methods of the fake Bot API: sendPhoto, sendDocument, sendAnimation, sendVideo, sendMediaGroup, getFile."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram_api_core import BotApiError, UploadedFile, bad_request, chat_id_of
from tests.fakes.telegram_api_files import DOWNLOAD_MAX_BYTES, probe_image
from tests.fakes.telegram_api_messages import caption_of, finish_message, set_optional
from tests.fakes.telegram_api_state import BotState, MessageKind
from tests.fakes.telegram_api_text import check_reply_markup

ALBUM_MAX = 10
ALBUM_TYPES = ("photo", "video", "document")
_SERVER_SIDE_ERRORS = ("Bad Request: IMAGE_PROCESS_FAILED", "Bad Request: PHOTO_INVALID_DIMENSIONS")
_DOCUMENT_FIELDS = ("file_name", "mime_type", "thumbnail", "file_id", "file_unique_id", "file_size")

Files = dict[str, UploadedFile]
Handler = Callable[[BotState, dict[str, Any], Files], Any]


def _upload(value: Any, name: str, files: Files) -> UploadedFile | None:
    """The multipart part a file parameter names: its own part or an ``attach://`` reference."""
    if isinstance(value, str) and value.startswith("attach://"):
        return files.get(value.removeprefix("attach://"))
    return files.get(name)


def _is_gif(upload: UploadedFile | None) -> bool:
    info = probe_image(upload.content) if upload else None
    return info is not None and info.extension == "gif"


def place_media(message: dict[str, Any], kind: str, media: Any, params: dict[str, Any]) -> None:
    """Put a media object in a message as Telegram shows it (an animation also shows as a document)."""
    message[kind] = media
    if kind == "animation":
        message["document"] = {key: media[key] for key in _DOCUMENT_FIELDS if key in media}
    if kind in ("photo", "video", "animation"):
        set_optional(message, "has_media_spoiler", params.get("has_spoiler") is True)
        set_optional(message, "show_caption_above_media", params.get("show_caption_above_media") is True)


def _set_caption(message: dict[str, Any], params: dict[str, Any]) -> None:
    caption, entities = caption_of(params)
    set_optional(message, "caption", caption)
    set_optional(message, "caption_entities", entities)


def _media_sender(kind: str, method: str) -> Handler:
    def send(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
        chat_id = chat_id_of(params)
        markup = check_reply_markup(params.get("reply_markup"))
        caption_of(params)  # a bad caption fails before any file is read
        reply = state.reply_target(chat_id, params)
        upload = _upload(params.get(kind), kind, files)
        actual = kind
        if kind == "document" and _is_gif(upload) and params.get("disable_content_type_detection") is not True:
            actual = "animation"  # Telegram turns an uploaded GIF document into an animation
        media, content = state.files.resolve(actual, params.get(kind), upload, params)
        message = state.new_message(chat_id)
        place_media(message, actual, media, params)
        _set_caption(message, params)
        finish_message(message, params, reply, markup)
        state.record(
            message, kind=MessageKind(actual), method=method, params=params, content=content, media_type=actual
        )
        return copy.deepcopy(message)

    send.__name__ = f"send_{kind}"
    send.__doc__ = f"{method}: an upload, a known file_id or an HTTP URL (never fetched)."
    return send


send_photo = _media_sender("photo", "sendPhoto")
send_document = _media_sender("document", "sendDocument")
send_animation = _media_sender("animation", "sendAnimation")
send_video = _media_sender("video", "sendVideo")


def _album_items(media: Any) -> list[dict[str, Any]]:
    """The InputMedia list of sendMediaGroup, checked as Telegram checks an album."""
    if media is None:
        raise bad_request('parameter "media" is required')
    if not isinstance(media, list) or not all(isinstance(item, dict) for item in media):
        raise bad_request("can't parse media JSON object")
    if not media:
        raise bad_request("there are no messages to send")
    if len(media) > ALBUM_MAX:
        raise bad_request("too many messages to send as an album")
    for item in media:
        kind = item.get("type")
        if kind == "animation":
            raise bad_request("can't parse InputMedia: type \"animation\" can't be used in sendMediaGroup")
        if kind not in ALBUM_TYPES:
            raise bad_request(f'can\'t parse InputMedia: type "{kind}" is unsupported')
        caption_of(item)
    kinds = {item["type"] for item in media}
    if "document" in kinds and len(kinds) > 1:
        raise bad_request("document can't be mixed with other media types")
    if len({item.get("show_caption_above_media") is True for item in media if item["type"] != "document"}) > 1:
        raise bad_request("parameter show_caption_above_media must be the same for all messages")
    return media


def _resolve_item(state: BotState, item: dict[str, Any], position: int, files: Files) -> tuple[Any, bytes | None]:
    value = item.get("media")
    upload = _upload(value, "", files) if isinstance(value, str) else None
    if not value or not isinstance(value, str) or (value.startswith("attach://") and upload is None):
        raise bad_request("can't parse InputMedia: media not found")
    try:
        return state.files.resolve(item["type"], value, upload, item)
    except BotApiError as error:
        if error.description in _SERVER_SIDE_ERRORS:
            reason = error.description.removeprefix("Bad Request: ")
            raise bad_request(f'failed to send message #{position} with the error message "{reason}"') from None
        raise


def send_media_group(state: BotState, params: dict[str, Any], files: Files) -> list[dict[str, Any]]:
    """sendMediaGroup: photos and videos together, or documents; one item is sent as an ordinary message."""
    chat_id = chat_id_of(params)
    items = _album_items(params.get("media"))
    reply = state.reply_target(chat_id, params)
    resolved = [_resolve_item(state, item, position, files) for position, item in enumerate(items, 1)]
    group_id = str(secrets.randbelow(9 * 10**17) + 10**17) if len(items) > 1 else None
    sent = []
    for item, (media, content) in zip(items, resolved, strict=True):
        message = state.new_message(chat_id)
        place_media(message, item["type"], media, item)
        _set_caption(message, item)
        set_optional(message, "media_group_id", group_id)
        finish_message(message, params, reply, None)
        kind = MessageKind.MEDIA_GROUP if group_id else MessageKind(item["type"])
        state.record(message, kind=kind, method="sendMediaGroup", params=item, content=content, media_type=item["type"])
        sent.append(copy.deepcopy(message))
    return sent


def get_file(state: BotState, params: dict[str, Any], files: Files) -> dict[str, Any]:
    """getFile: a File whose file_path downloads at /file/bot<token>/<file_path>; over 20 MB is refused."""
    stored = state.files.files.get(str(params.get("file_id") or ""))
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.content is None:
        raise bad_request("wrong file_id or the file is temporarily unavailable")
    if stored.file_size > DOWNLOAD_MAX_BYTES:
        raise bad_request("file is too big")
    return stored.as_file()
