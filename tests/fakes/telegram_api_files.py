"""Files of the fake Bot API: stored bytes, file ids, and the PhotoSize, Document, Animation and Video objects.

Uploads are kept byte for byte (the largest PhotoSize of an uploaded photo is the original file;
smaller sizes are JPEG thumbnails made with Pillow). A URL is never fetched: it becomes a file
without content, so getFile refuses to serve it.
"""

from __future__ import annotations

import copy
import itertools
import mimetypes
import secrets
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urlparse

from PIL import Image

from tests.fakes.telegram_api_core import BotApiError, UploadedFile, bad_request

MB = 1024 * 1024
PHOTO_MAX_BYTES = 10 * MB
UPLOAD_MAX_BYTES = 50 * MB
DOWNLOAD_MAX_BYTES = 20 * MB
THUMBNAIL_SIDES = (90, 320, 800, 1280)
MEDIA_KINDS = ("photo", "document", "animation", "video")
_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "animation": "CgACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
}
_FOLDER = {"photo": "photos", "document": "documents", "animation": "animations", "video": "videos"}
_EXTENSIONS = {"jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp"}
_OCTET = "application/octet-stream"
_Media = TypeVar("_Media", list[dict[str, Any]], dict[str, Any])  #: a photo (its sizes) or one media object


@dataclass
class StoredFile:
    """One file as the Bot API server keeps it; ``content`` is None for files sent by URL."""

    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes | None
    file_size: int

    def as_file(self) -> dict[str, Any]:
        """The Bot API ``File`` object getFile answers with."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }


@dataclass
class ImageInfo:
    """What Pillow could read of an image."""

    width: int
    height: int
    extension: str
    duration: int


def probe_image(content: bytes) -> ImageInfo | None:
    """Size, file extension and (for animations) duration in seconds, or None if it is no image."""
    try:
        with Image.open(BytesIO(content)) as image:
            frames = getattr(image, "n_frames", 1)
            duration = round(int(image.info.get("duration", 0) or 0) * frames / 1000)
            extension = _EXTENSIONS.get((image.format or "").lower(), "bin")
            return ImageInfo(image.width, image.height, extension, duration)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _thumbnails(content: bytes, longest: int) -> list[tuple[bytes, int, int]]:
    """JPEG thumbnails for Telegram's smaller photo sizes, smallest first."""
    sides = [side for side in THUMBNAIL_SIDES if side < longest]
    if not sides:
        return []
    with Image.open(BytesIO(content)) as opened:
        image = opened.convert("RGB")
    made: list[tuple[bytes, int, int]] = []
    for side in reversed(sides):
        image.thumbnail((side, side))
        buffer = BytesIO()
        image.save(buffer, "JPEG", quality=75)
        made.append((buffer.getvalue(), image.width, image.height))
    return made[::-1]


def _mime_type(content: bytes | None, file_name: str, declared: str | None) -> str:
    if declared and declared != _OCTET:
        return declared
    guessed = mimetypes.guess_type(file_name, strict=False)[0]
    if guessed:
        return guessed
    info = probe_image(content) if content else None
    return (
        f"image/{'jpeg' if info.extension == 'jpg' else info.extension}" if info and info.extension != "bin" else _OCTET
    )


def _extension(file_name: str, fallback: str) -> str:
    """The file name's extension when it looks like one (PTB names unnamed bytes ``application.octet-stream``)."""
    suffix = PurePosixPath(file_name).suffix.lstrip(".")
    return suffix.lower() if suffix.isalnum() and len(suffix) <= 5 else fallback


class FileStore:
    """Every file the fake knows, by file_id and by file_path, and the media object each file_id names."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.paths: dict[str, StoredFile] = {}
        self.media: dict[str, tuple[str, Any]] = {}
        self._sequence = itertools.count()

    def _store(self, kind: str, content: bytes | None, extension: str) -> StoredFile:
        stored = StoredFile(
            file_id=_ID_PREFIX[kind] + secrets.token_urlsafe(30),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            file_path=f"{_FOLDER[kind]}/file_{next(self._sequence)}.{extension}",
            content=content,
            file_size=len(content) if content is not None else 0,
        )
        self.files[stored.file_id] = stored
        self.paths[stored.file_path] = stored
        return stored

    def _register(self, kind: str, media: _Media) -> _Media:
        for item in media if isinstance(media, list) else [media]:  # a photo is a list of sizes
            self.media[item["file_id"]] = (kind, media)
        return copy.deepcopy(media)

    @staticmethod
    def _ids(stored: StoredFile) -> dict[str, Any]:
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.file_size}

    def add_photo(self, content: bytes) -> list[dict[str, Any]]:
        """A PhotoSize list (smallest first, the original last), refused as sendPhoto refuses."""
        if len(content) > PHOTO_MAX_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        info = probe_image(content)
        if info is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        short, long = sorted((info.width, info.height))
        if info.width + info.height > 10000 or long > 20 * short:
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        sizes = []
        for data, width, height in _thumbnails(content, long):
            sizes.append({**self._ids(self._store("photo", data, "jpg")), "width": width, "height": height})
        original = self._store("photo", content, info.extension)
        sizes.append({**self._ids(original), "width": info.width, "height": info.height})
        return self._register("photo", sizes)

    def add_document(self, content: bytes | None, *, file_name: str, mime_type: str | None = None) -> dict[str, Any]:
        """A Document object for these bytes."""
        mime = _mime_type(content, file_name, mime_type)
        extension = _extension(file_name, (mimetypes.guess_extension(mime) or ".bin")[1:])
        stored = self._store("document", content, extension)
        return self._register("document", {"file_name": file_name, "mime_type": mime, **self._ids(stored)})

    def add_motion(
        self,
        kind: str,
        content: bytes | None,
        *,
        file_name: str,
        mime_type: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An Animation or Video object; size and duration from the request, else read from a GIF/WebP."""
        params = params or {}
        info = probe_image(content) if content else None
        shape = {
            name: params[name] if isinstance(params.get(name), int) else (getattr(info, name) if info else 0)
            for name in ("width", "height", "duration")
        }
        mime = _mime_type(content, file_name, mime_type)
        extension = _extension(file_name, info.extension if info and info.extension != "bin" else "mp4")
        stored = self._store(kind, content, extension)
        media = {**shape, "file_name": file_name, "mime_type": mime, **self._ids(stored)}
        return self._register(kind, media)

    def add(self, kind: str, upload: UploadedFile, params: dict[str, Any] | None = None) -> Any:
        """The media object for an uploaded file of this kind."""
        if len(upload.content) > UPLOAD_MAX_BYTES:
            raise BotApiError(413, "Request Entity Too Large")
        if kind == "photo":
            return self.add_photo(upload.content)
        if kind == "document":
            return self.add_document(upload.content, file_name=upload.filename, mime_type=upload.content_type)
        return self.add_motion(
            kind, upload.content, file_name=upload.filename, mime_type=upload.content_type, params=params
        )

    def resolve(
        self, kind: str, value: Any, upload: UploadedFile | None, params: dict[str, Any]
    ) -> tuple[Any, bytes | None]:
        """The media object and bytes for an upload, a known file_id or an HTTP URL, as Telegram resolves them."""
        if upload is not None:
            return self.add(kind, upload, params), upload.content
        if not isinstance(value, str) or not value:
            raise bad_request(f"there is no {kind} in the request")
        if value in self.media:
            have, media = self.media[value]
            if have != kind:
                raise bad_request(f"can't use file of type {have.title()} as {kind.title()}")
            return copy.deepcopy(media), self.content_of(kind, media)
        if value.startswith(("http://", "https://")):
            return self._from_url(kind, value, params), None
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _from_url(self, kind: str, url: str, params: dict[str, Any]) -> Any:
        name = PurePosixPath(urlparse(url).path).name or "file"
        if kind == "photo":
            stored = self._store("photo", None, "jpg")
            return self._register("photo", [{**self._ids(stored), "width": 800, "height": 800}])
        if kind == "document":
            return self.add_document(None, file_name=name)
        return self.add_motion(kind, None, file_name=name, params=params)

    def content_of(self, kind: str, media: Any) -> bytes | None:
        """The stored bytes behind a media object (the largest size of a photo)."""
        file_id = media[-1]["file_id"] if kind == "photo" else media["file_id"]
        return self.files[file_id].content
