"""Fetching result files for the chats: only from the backend's own hosts, never from a private address.

Output URLs come from the backend's answers, so they are not trusted. A URL is fetched only when a
``Source`` admits it (the backend's own host, the storage its outputs live on, the sandbox's
``/sandbox/files/``). Unless the backend is itself local, every address the host resolves to must
be public. Redirects are followed by hand, each hop checked by the same rule, at most
``MAX_REDIRECTS`` of them, and the body is read up to a cap. A refused URL is a ``ResultRefused``:
the chat says the file could not be fetched, and the log names the host and the reason, never the
URL (a pre-signed URL's query is a credential).

The address check and the connection resolve the name separately; the allow-list bounds what a
changed answer could reach to the backend's own hosts, so the check guards against a misconfigured
or compromised record rather than against any name on the internet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from noema.adapters.platforms.media import MAX_RESULT_BYTES, Media, classify, media_outputs
from noema.config.media_hosts import Source
from noema.domain.errors import NotifierError, ResultRefused

log = structlog.get_logger(__name__)

#: Where ComfyDeploy's runner uploads outputs (its public output bucket, by both of S3's host names).
COMFYDEPLOY_STORAGE = ("comfy-deploy-output.s3.amazonaws.com", "comfy-deploy-output.s3.us-east-2.amazonaws.com")
MAX_REDIRECTS = 3
#: What the user reads in place of a file that was refused.
REFUSED_NOTE = "A result file could not be fetched, so it is not shown here."
REFUSED_PREFIX = "The result file could not be fetched: "

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local, reserved and so on."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return ip.is_global and not ip.is_multicast


def is_local_host(host: str) -> bool:
    """Whether a host is this machine or a private network by its name alone (no lookup)."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return not is_public(name)


@dataclass(frozen=True)
class MediaSources:
    """Where result files may come from, and whether private addresses may be reached (a local backend)."""

    sources: tuple[Source, ...]
    allow_private: bool = False
    trusted: tuple[Source, ...] = ()  #: served in-process (Noema's own media): no address check

    def admits(self, url: httpx.URL) -> bool:
        """Whether some source admits ``url``."""
        return url.scheme in ("http", "https") and any(s.admits(url) for s in (*self.sources, *self.trusted))

    def is_trusted(self, url: httpx.URL) -> bool:
        """Whether ``url`` is one of Noema's own (reached in-process, whatever its host resolves to)."""
        return url.scheme in ("http", "https") and any(s.admits(url) for s in self.trusted)

    def with_trusted(self, url_prefix: str) -> MediaSources:
        """These sources and Noema's own files under ``url_prefix`` (two backends: the cloud's and ComfyUI's)."""
        return replace(self, trusted=(*self.trusted, Source.parse(url_prefix)))


def sources_for(
    *,
    backend_url: str | None,
    sandbox_files_url: str | None,
    configured: tuple[Source, ...] | None,
    own_media_url: str | None = None,
) -> MediaSources:
    """Where the chats may fetch result files from, for the backend in use.

    The backend's own host and (unless ``configured`` names others) ComfyDeploy's output buckets,
    or the sandbox's own files, or Noema's own ``/media/`` (self-hosted ComfyUI: its servers stay
    private); private addresses only when that backend is local (Noema's own URLs are served in-process).
    """
    extra = configured or ()
    if own_media_url is not None:
        return MediaSources((Source.parse(own_media_url), *extra), allow_private=True)
    if sandbox_files_url is not None:
        return MediaSources((Source.parse(sandbox_files_url), *extra), allow_private=True)
    own = Source.parse(backend_url or "")
    storage = extra if configured is not None else tuple(Source(h) for h in COMFYDEPLOY_STORAGE)
    return MediaSources((Source(own.host, own.port), *storage), allow_private=is_local_host(own.host))


class ResultFetcher:
    """Downloads result files under ``MediaSources``; failures are NotifierError, refusals ResultRefused."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        sources: MediaSources,
        *,
        resolver: Resolver = resolve,
        max_bytes: int = MAX_RESULT_BYTES,
        timeout_seconds: float = 60.0,
    ) -> None:
        self._client, self._sources, self._resolve = client, sources, resolver
        self._max_bytes, self._timeout = max_bytes, timeout_seconds

    async def fetch_all(self, outputs: list[dict[str, Any]]) -> tuple[list[Media], list[str]]:
        """The files of the media outputs, and a note for the user in place of each refused one."""
        files: list[Media] = []
        notes: list[str] = []
        for output in media_outputs(outputs):
            try:
                files.append(await self.fetch(output))
            except ResultRefused:
                notes.append(REFUSED_NOTE)
        return files, notes

    async def fetch(self, output: dict[str, Any]) -> Media:
        """Download one media output (a network failure is retryable; a refused or huge file is not)."""
        try:
            url = httpx.URL(str(output.get("url") or ""))
        except httpx.InvalidURL:
            raise _refused("", "not a valid URL") from None
        for _hop in range(MAX_REDIRECTS + 1):
            await self._check(url)
            try:
                async with self._client.stream("GET", url, timeout=self._timeout, follow_redirects=False) as response:
                    if response.is_redirect:
                        url = _next_hop(url, response)
                        continue
                    return await self._read(response, output)
            except httpx.HTTPError as exc:
                raise NotifierError(f"Could not fetch the result file ({type(exc).__name__}).") from exc
        raise _refused(url.host, f"more than {MAX_REDIRECTS} redirects")

    async def _check(self, url: httpx.URL) -> None:
        if not self._sources.admits(url):
            raise _refused(url.host, "not one of the backend's media hosts")
        if self._sources.allow_private or self._sources.is_trusted(url):
            return
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self._resolve(url.host, port)
        except OSError as exc:  # a lookup that fails now may work on the delivery's next attempt
            raise NotifierError(f"Could not resolve the result file's host ({type(exc).__name__}).") from exc
        if not addresses or not all(is_public(a) for a in addresses):
            raise _refused(url.host, "it resolves to a private address")

    async def _read(self, response: httpx.Response, output: dict[str, Any]) -> Media:
        if response.status_code >= 400:
            retry = response.status_code >= 500 or response.status_code == 429
            raise NotifierError(f"The result file answered {response.status_code}.", retryable=retry)
        limit_mb = self._max_bytes // (1024 * 1024)
        declared_size = response.headers.get("content-length", "")
        if declared_size.isdigit() and int(declared_size) > self._max_bytes:
            raise _refused(response.url.host, f"larger than {limit_mb} MB")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise _refused(response.url.host, f"larger than {limit_mb} MB")
            chunks.append(chunk)
        declared = response.headers.get("content-type", "").split(";")[0] or output.get("mime_type")
        return classify(b"".join(chunks), filename=_filename(output), declared_mime=declared)


def _next_hop(url: httpx.URL, response: httpx.Response) -> httpx.URL:
    try:
        return url.join(response.headers.get("location", ""))
    except httpx.InvalidURL:
        raise _refused(url.host, "a redirect to an invalid URL") from None


def _refused(host: str, reason: str) -> ResultRefused:
    log.warning("result_fetch_refused", host=host[:100], reason=reason)
    return ResultRefused(f"{REFUSED_PREFIX}{reason}.")


def _filename(output: dict[str, Any]) -> str:
    name = output.get("filename") or PurePosixPath(urlsplit(str(output.get("url") or "")).path).name
    return str(name or "result.bin")[:100]
