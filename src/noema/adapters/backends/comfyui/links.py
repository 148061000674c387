"""Public image links given as inputs to a ComfyUI run: fetched by the guard the chats use for result files.

Only hosts the operator lists (``NOEMA_COMFYUI_INPUT_HOSTS``) are asked; a name must resolve to public
addresses only (a private address or ``localhost`` is reached only when listed as such); every
redirect is checked by the same rule; the body is read up to 25 MB. Anything else is refused in
words before the run is queued, so nothing is held or charged for it.
"""

from __future__ import annotations

import httpx

from noema.adapters.platforms.media import MediaKind
from noema.adapters.platforms.result_fetch import (
    REFUSED_PREFIX,
    MediaSources,
    Resolver,
    ResultFetcher,
    is_local_host,
    resolve,
)
from noema.config.media_hosts import Source
from noema.domain.errors import InvalidInput, NotifierError, ResultRefused

MAX_LINK_BYTES = 25 * 1024 * 1024
_PICTURES = (MediaKind.PHOTO, MediaKind.ANIMATION)


def link_sources(sources: tuple[Source, ...]) -> MediaSources:
    """The operator's list; a host given as a private address (or ``localhost``) is reached as given."""
    local = tuple(s for s in sources if is_local_host(s.host))
    return MediaSources(tuple(s for s in sources if s not in local), trusted=local)


class LinkFetcher:
    """Picture links to bytes, under an allow-list; InvalidInput says why one is not taken."""

    def __init__(
        self, http: httpx.AsyncClient, hosts: tuple[Source, ...] | None, *, resolver: Resolver = resolve
    ) -> None:
        self._fetcher = None
        if hosts:
            self._fetcher = ResultFetcher(http, link_sources(hosts), resolver=resolver, max_bytes=MAX_LINK_BYTES)

    async def picture(self, name: str, url: str) -> tuple[str, bytes, str]:
        """(file name, bytes, content type) of the picture at ``url``."""
        if self._fetcher is None:
            raise InvalidInput(
                f"The input {name!r} must be an uploaded picture; links are not fetched on this server.",
                details={"field": name},
            )
        try:
            media = await self._fetcher.fetch({"url": url})
        except ResultRefused as exc:
            reason = exc.message.removeprefix(REFUSED_PREFIX).rstrip(".")
            raise _refused(name, f"is not taken: {reason}") from None
        except NotifierError:
            raise _refused(name, "could not be fetched") from None
        if media.kind not in _PICTURES or not media.mime_type.startswith("image/"):
            raise InvalidInput(f"The link for {name!r} is not a picture.", details={"field": name})
        return f"input.{media.mime_type.split('/')[-1][:8]}", media.content, media.mime_type


def _refused(name: str, why: str) -> InvalidInput:
    return InvalidInput(f"The picture link for {name!r} {why}.", details={"field": name})
