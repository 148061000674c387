"""Load the bytes of an input image named by a run: one of the sandbox's own files or a data: URI.

The sandbox never fetches a URL: Noema uploads the files its users give (``POST /api/file/upload``)
and sends the stored file's URL, so any other URL would only make this process a request relay
towards whatever host and port a caller names.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from noema.adapters.backends.sandbox.files import FileStore
from noema.adapters.backends.sandbox.renderer import ImageInputError

MAX_FETCH_BYTES = 20 * 1024 * 1024
#: The same words for every URL that is not ours, so a failed run tells nothing about the host it names.
NOT_OURS = (
    "the sandbox reads input images only from its own files (upload them with POST /api/file/upload) "
    "or from data: URIs; it does not fetch other URLs"
)


def decode_data_uri(reference: str) -> bytes:
    """The bytes of a base64 ``data:image/...`` URI."""
    header, sep, payload = reference.partition(",")
    if not sep or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise ImageInputError("a data: URI input must be a base64 image (data:image/...;base64,...)")
    if len(payload) > MAX_FETCH_BYTES * 4 // 3 + 4:
        raise ImageInputError(f"the input image is larger than {MAX_FETCH_BYTES // (1024 * 1024)} MB")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError("the data: URI is not valid base64") from None


class ImageFetcher:
    """Reads input images: data: URIs, and the sandbox's own files straight from disk."""

    def __init__(self, files: FileStore) -> None:
        self._files = files

    def accepts(self, reference: str) -> bool:
        """Whether the reference is a data: URI or one of our own file URLs (nothing else is ever read)."""
        return reference.startswith("data:") or self._files.is_own_url(reference)

    async def fetch(self, reference: str) -> bytes:
        """The bytes of the image; ImageInputError with a plain reason when it cannot be had."""
        if reference.startswith("data:"):
            return decode_data_uri(reference)
        if not self._files.is_own_url(reference):
            raise ImageInputError(NOT_OURS)
        path = self._files.local_path(reference)
        if path is None:
            raise ImageInputError("the input image does not exist in the sandbox's files")
        if path.stat().st_size > MAX_FETCH_BYTES:
            raise ImageInputError(f"the input image is larger than {MAX_FETCH_BYTES // (1024 * 1024)} MB")
        return await asyncio.to_thread(path.read_bytes)
