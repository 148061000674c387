"""Delivering a generation's news to Telegram: progress edits, results by media type, failures.

A result may take several Bot API calls (an album, a text, an animation). Each call is one *part*;
the outbox's part log (``services.outbox.PartLog``) records them as they go, so a retry after a
failure or a restart sends only what is missing, never a part twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

import structlog
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from noema.adapters.platforms import media as results
from noema.adapters.platforms.media import Media, MediaKind
from noema.adapters.platforms.result_fetch import ResultFetcher
from noema.adapters.platforms.telegram import texts
from noema.adapters.platforms.telegram.limiter import retry_seconds
from noema.adapters.platforms.telegram.target import TelegramTarget
from noema.domain.delivery import Delivery, DeliveryKind, DeliveryPayload
from noema.domain.errors import NotifierError
from noema.domain.generation import Generation
from noema.ports import Clock, UnitOfWorkFactory
from noema.services.outbox import PartLog

log = structlog.get_logger(__name__)
PHOTO_MAX_BYTES = 10 * 1024 * 1024
ALBUM_MAX = 10
TEXT_MAX = 4096


def buttons(generation_id: str) -> InlineKeyboardMarkup:
    """Rerun (same seed), rerun with a new seed, and info buttons under a result."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("🔁 Rerun", callback_data=f"rerun:{generation_id}"),
                InlineKeyboardButton("🎲 New seed", callback_data=f"reseed:{generation_id}"),
                InlineKeyboardButton("ℹ️ Info", callback_data=f"info:{generation_id}"),
            ]
        ]
    )


def fits_photo(item: Media) -> bool:
    """Whether Telegram takes it as a photo (else it goes as a document, uncompressed)."""
    w, h = item.width or 0, item.height or 0
    return len(item.content) <= PHOTO_MAX_BYTES and w + h <= 10_000 and max(w, h) <= 20 * max(1, min(w, h))


def _reply(to: TelegramTarget) -> ReplyParameters | None:
    """The result answers the command (if that message is gone, it is sent all the same)."""
    return ReplyParameters(to.message_id, allow_sending_without_reply=True) if to.message_id else None


class TelegramNotifier:
    """The Notifier of the ``telegram`` platform."""

    def __init__(self, bot: Bot, *, media: ResultFetcher, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self.bot, self.media = bot, media
        self.parts = PartLog(uow_factory, clock)

    async def send(self, delivery: Delivery, generation: Generation) -> None:
        """Deliver one outbox row; Bot API failures become NotifierError (retryable or not)."""
        to = TelegramTarget.parse(delivery.target)
        if to is None:
            raise NotifierError("The delivery has no Telegram chat.", retryable=False)
        try:
            await self.bot.initialize()  # once per process (getMe); a worker-only process never started the app
            if delivery.kind is DeliveryKind.PROGRESS:
                await self._edit(to, texts.progress(delivery.payload))
            elif delivery.kind is DeliveryKind.FAILURE:
                await self._failure(to, delivery.payload)
            else:
                await self._result(delivery, to, generation.id)
        except RetryAfter as exc:
            seconds = retry_seconds(exc)
            raise NotifierError(f"Telegram asked to wait {seconds:g} s.", retry_after=seconds) from exc
        except Forbidden as exc:
            raise NotifierError(f"Telegram refused: {exc.message}", retryable=False) from exc
        except BadRequest as exc:
            raise NotifierError(f"Telegram refused: {exc.message}", retryable=False) from exc
        except (NetworkError, TelegramError) as exc:
            raise NotifierError(f"Telegram did not answer: {exc.message}") from exc

    async def _edit(self, to: TelegramTarget, text: str, markup: InlineKeyboardMarkup | None = None) -> bool:
        """Edit the progress message; False when there is none (or it is gone)."""
        if to.progress_message_id is None:
            return False
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=to.chat_id,
                message_id=to.progress_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return True
            if "not found" in exc.message.lower():
                return False
            raise
        return True

    async def _failure(self, to: TelegramTarget, payload: DeliveryPayload) -> None:
        text = texts.failure(payload)
        if not await self._edit(to, text):
            await self.bot.send_message(to.chat_id, text, parse_mode=ParseMode.HTML, reply_parameters=_reply(to))

    async def _result(self, delivery: Delivery, to: TelegramTarget, generation_id: str) -> None:
        payload = delivery.payload
        outputs = [dict(output) for output in payload.outputs]
        files, refused = await self.media.fetch_all(outputs)
        parts = _plan(files, results.texts_of(outputs) + refused)
        markup = buttons(generation_id)
        single = len(parts) == 1

        async def send_part(index: int) -> None:
            caption = texts.result_caption(payload, part=index + 1, parts=len(parts)) if index == 0 else None
            await parts[index](self.bot, to, caption, markup if single else None)

        await self.parts.send(delivery, len(parts), send_part)
        summary = texts.result_caption(payload)
        if not parts:
            summary += "\nThe run finished without an output to show."
        try:
            await self._edit(to, summary, None if single else markup)
        except TelegramError as exc:  # the result itself is out; a stale progress line is not worth a retry
            log.warning("telegram_summary_edit_failed", generation_id=generation_id, error=str(exc)[:200])


_Part = Callable[[Bot, TelegramTarget, str | None, InlineKeyboardMarkup | None], Awaitable[Any]]


def _plan(files: list[Media], text_outputs: list[str]) -> list[_Part]:
    """The Bot API calls of a result: albums of photos and videos, animations and documents, texts."""
    album = [f for f in files if f.kind is MediaKind.VIDEO or (f.kind is MediaKind.PHOTO and fits_photo(f))]
    documents = [f for f in files if f.kind is MediaKind.DOCUMENT or (f.kind is MediaKind.PHOTO and not fits_photo(f))]
    parts: list[_Part] = []
    for start in range(0, len(album), ALBUM_MAX):
        chunk = album[start : start + ALBUM_MAX]
        parts.append(_single(chunk[0]) if len(chunk) == 1 else _album(chunk))
    parts += [_single(f) for f in files if f.kind is MediaKind.ANIMATION]
    for start in range(0, len(documents), ALBUM_MAX):
        chunk = documents[start : start + ALBUM_MAX]
        parts.append(_single(chunk[0], as_document=True) if len(chunk) == 1 else _album(chunk, as_document=True))
    for text in text_outputs:
        parts += [_text(chunk) for chunk in escaped_chunks(text, TEXT_MAX - 300)]
    return parts


def escaped_chunks(text: str, limit: int) -> list[str]:
    """The text HTML-escaped and cut into pieces of at most ``limit`` characters, never inside an entity."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        piece = escape(char, quote=False)
        if size + len(piece) > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece)
    if current:
        chunks.append("".join(current))
    return chunks


def _single(item: Media, *, as_document: bool = False) -> _Part:
    async def send(bot: Bot, to: TelegramTarget, caption: str | None, markup: InlineKeyboardMarkup | None) -> None:
        upload = InputFile(item.content, filename=item.filename)
        common: dict[str, Any] = {
            "caption": caption,
            "parse_mode": ParseMode.HTML,
            "reply_parameters": _reply(to),
            "reply_markup": markup,
        }
        if as_document or item.kind is MediaKind.DOCUMENT:
            await bot.send_document(to.chat_id, upload, **common)
        elif item.kind is MediaKind.ANIMATION:
            await bot.send_animation(to.chat_id, upload, width=item.width, height=item.height, **common)
        elif item.kind is MediaKind.VIDEO:
            await bot.send_video(to.chat_id, upload, supports_streaming=True, **common)
        else:
            await bot.send_photo(to.chat_id, upload, **common)

    return send


def _album(items: list[Media], *, as_document: bool = False) -> _Part:
    async def send(bot: Bot, to: TelegramTarget, caption: str | None, _markup: InlineKeyboardMarkup | None) -> None:
        media: list[InputMediaPhoto | InputMediaVideo | InputMediaDocument] = []
        for n, item in enumerate(items):
            # Raw bytes with a file name: PTB attaches them as multipart parts (an InputFile would not be).
            text = caption if n == 0 else None
            kind = InputMediaDocument if as_document else InputMediaVideo if item.kind is MediaKind.VIDEO else None
            if kind is None:
                media.append(
                    InputMediaPhoto(item.content, caption=text, parse_mode=ParseMode.HTML, filename=item.filename)
                )
            else:
                media.append(kind(item.content, caption=text, parse_mode=ParseMode.HTML, filename=item.filename))
        await bot.send_media_group(to.chat_id, media, reply_parameters=_reply(to))

    return send


def _text(text: str) -> _Part:
    async def send(bot: Bot, to: TelegramTarget, caption: str | None, markup: InlineKeyboardMarkup | None) -> None:
        body = f"{caption}\n\n{text}" if caption else text
        await bot.send_message(
            to.chat_id, body, parse_mode=ParseMode.HTML, reply_parameters=_reply(to), reply_markup=markup
        )

    return send
