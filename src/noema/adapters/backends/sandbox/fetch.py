"""Load the bytes of an input image named by a run: one of our own files, a data: URI, or a URL."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging

import httpx

from noema.adapters.backends.sandbox.files import FileStore
from noema.adapters.backends.sandbox.renderer import ImageInputError

logger = logging.getLogger(__name__)

MAX_FETCH_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 30.0


def _describe(reference: str) -> str:
    # Never echo a data: URI (or a very long URL) into a live status.
    return "a data: URI" if reference.startswith("data:") else repr(reference[:120])


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
    """Fetches input images, reading the sandbox's own files straight from disk."""

    def __init__(self, files: FileStore, client: httpx.AsyncClient) -> None:
        self._files = files
        self._client = client

    async def fetch(self, reference: str) -> bytes:
        """The bytes of the image; ImageInputError with a plain reason when it cannot be had."""
        if reference.startswith("data:"):
            return decode_data_uri(reference)
        if self._files.is_own_url(reference):
            path = self._files.local_path(reference)
            if path is None:
                raise ImageInputError(f"the input image {_describe(reference)} does not exist")
            return await asyncio.to_thread(path.read_bytes)
        if reference.startswith(("http://", "https://")):
            return await self._download(reference)
        raise ImageInputError(f"the input image {_describe(reference)} is not an http(s) URL or data: URI")

    async def _download(self, url: str) -> bytes:
        try:
            async with self._client.stream(
                "GET", url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True
            ) as response:
                if response.status_code != 200:
                    raise ImageInputError(f"fetching the input image {_describe(url)} gave HTTP {response.status_code}")
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith("image/"):
                    raise ImageInputError(f"the input image URL {_describe(url)} is not an image ({content_type!r})")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_FETCH_BYTES:
                        raise ImageInputError(f"the input image is larger than {MAX_FETCH_BYTES // (1024 * 1024)} MB")
                return bytes(body)
        except httpx.HTTPError as exc:
            logger.info("sandbox could not fetch input image %s: %r", url[:120], exc)
            raise ImageInputError(f"the input image {_describe(url)} could not be fetched") from exc
        except httpx.InvalidURL as exc:
            raise ImageInputError(f"the input image URL {_describe(url)} is invalid") from exc
