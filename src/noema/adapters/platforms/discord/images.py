"""Image inputs from Discord: the file attached to a command's ``image`` option.

The bytes are downloaded here (only from Discord's CDN or the configured API host, size-limited,
checked with Pillow to be an image) and uploaded to the backend by the generation service; the
Discord URL never reaches the backend.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from noema.adapters.platforms.discord.interactions import Attachment
from noema.adapters.platforms.media import image_mime
from noema.domain.errors import InvalidInput, NotifierError
from noema.domain.inputs import MAX_UPLOAD_BYTES

CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})


def too_big(limit: int) -> InvalidInput:
    """The refusal of a file over ``limit`` bytes."""
    return InvalidInput(f"That image is larger than {limit // 2**20} MB; attach a smaller one.")


def check_declared(attachment: Attachment, limit: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse at once what Discord already says is too big or not an image."""
    if attachment.size > limit:
        raise too_big(limit)
    declared = attachment.content_type.split(";")[0].strip().lower()
    if declared and not declared.startswith("image/"):
        raise InvalidInput("That file is not an image; attach a JPEG, PNG or WebP picture.")


class AttachmentFetcher:
    """Downloads attachments from the hosts Discord serves them from."""

    def __init__(self, http: httpx.AsyncClient, *, api_base_url: str, limit: int = MAX_UPLOAD_BYTES) -> None:
        self.http, self.limit = http, limit
        self.hosts = CDN_HOSTS | {urlsplit(api_base_url).hostname or ""}

    async def download(self, url: str) -> tuple[str, bytes, str]:
        """The image's bytes, checked: (file name, bytes, MIME type)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in self.hosts:
            raise InvalidInput("That attachment is not on Discord's servers.")
        try:
            async with self.http.stream("GET", url, timeout=30, follow_redirects=False) as response:
                if response.status_code >= 400:
                    gone = response.status_code in (403, 404, 410)
                    raise (
                        InvalidInput("That image is not available any more; attach it again.")
                        if gone
                        else NotifierError(f"Discord's CDN answered {response.status_code}.")
                    )
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.limit:
                        raise too_big(self.limit)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise NotifierError(f"Could not download the image from Discord ({type(exc).__name__}).") from exc
        content = b"".join(chunks)
        mime = image_mime(content, how="attach")
        return f"discord-image.{mime.split('/')[1]}", content, mime
