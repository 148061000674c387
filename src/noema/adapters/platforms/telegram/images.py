"""Image inputs from Telegram: the photo or image document a command replies to (or carries).

The bytes are downloaded through the Bot API and uploaded to the backend by the generation
service; a Telegram file URL (which contains the bot token) never leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import TelegramError

from noema.adapters.platforms.media import image_mime
from noema.domain.errors import InvalidInput, NotifierError

#: The Bot API serves files up to 20 MB to bots.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ImageSource:
    """A Telegram file that holds an image."""

    file_id: str
    mime_type: str
    file_size: int | None = None


def _own_image(message: Message) -> ImageSource | None:
    if message.photo:
        largest = message.photo[-1]
        return ImageSource(largest.file_id, "image/jpeg", largest.file_size)
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return ImageSource(document.file_id, document.mime_type or "image/png", document.file_size)
    return None


def image_of(message: Message) -> ImageSource | None:
    """The image a command carries (a photo with the command as caption) or replies to."""
    own = _own_image(message)
    if own is not None:
        return own
    return _own_image(message.reply_to_message) if message.reply_to_message else None


async def download(bot: Bot, source: ImageSource) -> tuple[str, bytes, str]:
    """The image's bytes, checked to be an image of a known format: (file name, bytes, MIME type)."""
    too_big = InvalidInput(f"That image is larger than {MAX_DOWNLOAD_BYTES // 2**20} MB; send a smaller one.")
    if source.file_size is not None and source.file_size > MAX_DOWNLOAD_BYTES:
        raise too_big
    try:
        file = await bot.get_file(source.file_id)
        if file.file_size is not None and file.file_size > MAX_DOWNLOAD_BYTES:
            raise too_big
        content = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        if "too big" in exc.message.lower():
            raise too_big from None
        raise NotifierError(f"Could not download the image from Telegram ({exc.message}).") from exc
    mime = image_mime(content, how="send")
    return f"telegram-image.{mime.split('/')[1]}", content, mime
