"""Result files for chat platforms: sorted by what they really are (``result_fetch`` downloads them).

Chat platforms get the bytes uploaded rather than the backend's URL: the URL may be private (the
embedded sandbox) or short-lived, and the real type decides photo, animation, video or document.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from io import BytesIO
from pathlib import PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from noema.domain.errors import InvalidInput

MAX_RESULT_BYTES = 50 * 1024 * 1024  #: Telegram's upload limit for bots; Discord's is lower and checked there
_VIDEO = {"video/mp4", "video/webm", "video/quicktime"}


class MediaKind(str, Enum):
    PHOTO = "photo"
    ANIMATION = "animation"
    VIDEO = "video"
    DOCUMENT = "document"


@dataclass(frozen=True)
class Media:
    """One result file, ready to upload."""

    kind: MediaKind
    content: bytes
    filename: str
    mime_type: str
    width: int | None = None
    height: int | None = None


def _probe(content: bytes) -> tuple[str | None, int, int, int]:
    """Image format, width, height and frame count, or (None, 0, 0, 0) for a non-image."""
    try:
        with Image.open(BytesIO(content)) as image:
            return (image.format or "").upper(), image.width, image.height, getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None, 0, 0, 0


def classify(content: bytes, *, filename: str, declared_mime: str | None) -> Media:
    """What the bytes are: a still image, an animation (GIF or animated WebP), a video or a document."""
    fmt, width, height, frames = _probe(content)
    if fmt == "GIF" or (fmt == "WEBP" and frames > 1):
        return Media(MediaKind.ANIMATION, content, filename, f"image/{fmt.lower()}", width, height)
    if fmt in ("PNG", "JPEG", "WEBP"):
        return Media(MediaKind.PHOTO, content, filename, f"image/{fmt.lower()}", width, height)
    mime = (declared_mime or "").lower()
    if mime in _VIDEO or PurePosixPath(filename).suffix.lower() in (".mp4", ".webm", ".mov"):
        return Media(MediaKind.VIDEO, content, filename, mime or "video/mp4")
    return Media(MediaKind.DOCUMENT, content, filename, mime or "application/octet-stream")


_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def image_mime(content: bytes, *, how: str) -> str:
    """The MIME type of an image input Noema can pass on; InvalidInput (saying ``how`` to send one) otherwise."""
    fmt, _w, _h, _frames = _probe(content)
    if fmt is None:
        raise InvalidInput(f"That file is not an image Noema can read; {how} a JPEG, PNG or WebP picture.")
    if fmt not in _IMAGE_FORMATS:
        raise InvalidInput(f"Images in {fmt or 'that'} format are not supported; {how} a JPEG, PNG or WebP picture.")
    return _IMAGE_FORMATS[fmt]


def texts_of(outputs: list[dict[str, Any]]) -> list[str]:
    """The text outputs of a run, in order."""
    return [str(o["text"]) for o in outputs if o.get("kind") == "text" and o.get("text")]


def media_outputs(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outputs that are files at a URL."""
    return [o for o in outputs if o.get("url") and o.get("kind") != "text"]


def download_name(tool_command: str, short: str, n: int, original: str) -> str:
    """What a downloaded result is called: ``<tool>-<short id>-<n>.<ext>`` (``txt2img-ab12c-1.png``)."""
    ext = PurePosixPath(original).suffix.lower().lstrip(".")
    ext = ext if ext.isalnum() and len(ext) <= 5 else "bin"
    tool = "".join(ch for ch in tool_command if ch.isalnum() or ch in "_-")[:32] or "result"
    return f"{tool}-{short}-{n}.{ext}"


#: The inputs a result card names, by what an input's name contains: (label, parts of the name).
_SETTINGS = (("Seed", ("seed",)), ("Steps", ("steps",)), ("Sampler", ("sampler",)), ("CFG", ("cfg",)))


def settings_used(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """The seed, size, steps and sampler a run used, from its inputs, as (label, value) pairs."""
    found: list[tuple[str, str]] = []
    for label, parts in _SETTINGS:
        value = next((v for k, v in inputs.items() if any(p in k.lower() for p in parts)), None)
        if value is not None and value != "":
            found.append((label, str(value)[:40]))
    width = next((v for k, v in inputs.items() if "width" in k.lower()), None)
    height = next((v for k, v in inputs.items() if "height" in k.lower()), None)
    if width is not None and height is not None:
        found.insert(1, ("Size", f"{width}×{height}"))
    return found
