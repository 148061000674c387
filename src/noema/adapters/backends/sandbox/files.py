"""Files the sandbox stores and serves: uploads and run outputs under ``data_dir/files``."""

from __future__ import annotations

import mimetypes
import os
import re
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

# The one list of what is served inline (the rest downloads): the same for sandbox files and Noema's media.
from noema.adapters.media_store import INLINE_TYPES

#: What ``POST /api/file/upload`` accepts (ComfyDeploy's rule).
ALLOWED_UPLOAD_PREFIXES = ("image/", "video/", "application/", "audio/")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_CHARS = 100


def safe_filename(name: str | None, content_type: str) -> str:
    """A file name that is safe on disk and in URLs, with an extension matching its type."""
    base = _UNSAFE_CHARS.sub("_", Path(name or "").name).strip("._")[:_MAX_NAME_CHARS] or "upload"
    if not mimetypes.guess_type(base)[0]:
        base += mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
    return base


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


class FileStore:
    """Files under one root directory, each reachable at ``{public_base_url}/files/<relative path>``."""

    def __init__(self, root: Path, public_base_url: str) -> None:
        self.root = root
        self._files_url = f"{public_base_url}/files/"

    def url_for(self, relative: str) -> str:
        """The public URL of a stored file."""
        return self._files_url + quote(relative)

    def save_upload(self, name: str | None, content_type: str, content: bytes) -> tuple[str, str, str]:
        """Store an upload; returns its file id, stored name and URL."""
        file_id = str(uuid.uuid4())
        filename = safe_filename(name, content_type)
        relative = f"uploads/{file_id}/{filename}"
        _write_atomically(self.root / relative, content)
        return file_id, filename, self.url_for(relative)

    def save_output(self, run_id: str, filename: str, content: bytes) -> str:
        """Store one output file of a run; returns its URL."""
        relative = f"outputs/{run_id}/{safe_filename(filename, 'application/octet-stream')}"
        _write_atomically(self.root / relative, content)
        return self.url_for(relative)

    def resolve(self, relative: str) -> Path | None:
        """The stored file at a relative path, refusing anything outside the root."""
        root = self.root.resolve()
        try:
            path = (root / relative).resolve()
        except (OSError, ValueError):
            return None
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def local_path(self, url: str) -> Path | None:
        """The stored file behind one of this store's own URLs, or None for any other URL."""
        if not url.startswith(self._files_url):
            return None
        return self.resolve(unquote(urlsplit(url[len(self._files_url) :]).path))

    def is_own_url(self, url: str) -> bool:
        """Whether the URL points into this store (even at a file that does not exist)."""
        return url.startswith(self._files_url)

    @staticmethod
    def media_type(path: Path) -> str | None:
        """The Content-Type to serve a stored file inline with, or None: serve it as a download."""
        return INLINE_TYPES.get(path.suffix.lower())
