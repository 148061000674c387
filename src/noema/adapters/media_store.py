"""Noema's own media store: result files of its ComfyUI servers and uploaded inputs, kept on disk.

Each file lives at ``<root>/<key>/<filename>`` where the key is 128 random bits in hex, so its URL
``<base>/media/<key>/<filename>`` cannot be guessed. Names are reduced to safe characters; a key or
name of any other shape is simply not found (no path can reach outside the root).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

MEDIA_PATH = "/media/"
_KEY = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,119}")
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

#: Extensions served inline, with their content type; anything else is served as an attachment.
INLINE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".txt": "text/plain; charset=utf-8",
}


def safe_filename(name: str) -> str:
    """The base name with anything but letters, digits, dot, dash and underscore replaced."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = "".join(c if c in _SAFE else "_" for c in base).lstrip("._-")
    return cleaned[-100:] or "file.bin"


class MediaStore:
    """Files under unguessable keys in ``root``, addressed by URLs under ``base_url``."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.prefix = base_url.rstrip("/") + MEDIA_PATH

    async def save(self, content: bytes, filename: str) -> str:
        """Store the bytes and return their URL (written off the event loop: outputs can be large)."""
        return await asyncio.to_thread(self._write, content, filename)

    def _write(self, content: bytes, filename: str) -> str:
        key = secrets.token_hex(16)
        name = safe_filename(filename)
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
        return f"{self.prefix}{key}/{name}"

    def path(self, key: str, filename: str) -> Path | None:
        """The file stored under ``key/filename``, or None (also for any malformed key or name)."""
        if not _KEY.fullmatch(key) or not _NAME.fullmatch(filename):
            return None
        found = self.root / key / filename
        return found if found.is_file() else None

    @staticmethod
    def inline_type(filename: str) -> str | None:
        """The content type a browser may show this file as; None: it is served as an attachment."""
        return INLINE_TYPES.get(PurePosixPath(filename).suffix.lower())

    def owns(self, url: str) -> bool:
        """Whether the URL is one of this store's."""
        return url.startswith(self.prefix)

    async def read(self, url: str) -> tuple[str, bytes] | None:
        """(filename, bytes) of one of this store's URLs, or None (read off the event loop)."""
        if not self.owns(url):
            return None
        key, _, filename = url[len(self.prefix) :].partition("/")
        found = self.path(key, filename)
        return (filename, await asyncio.to_thread(found.read_bytes)) if found is not None else None

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Delete every stored file older than ``keep``; returns how many keys were removed."""
        if not self.root.is_dir():
            return 0
        cutoff = (now - keep).timestamp()
        removed = 0
        for folder in self.root.iterdir():
            if folder.is_dir() and _KEY.fullmatch(folder.name) and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed
