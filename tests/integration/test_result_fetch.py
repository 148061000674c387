"""Result files are fetched only from the backend's own hosts, never from a private address, redirects checked.

A real counting server on 127.0.0.1 proves that a refused URL was never requested; a MockTransport
with an injected resolver stands for hosts on the internet whose addresses the test chooses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from noema.adapters.platforms.media import MediaKind
from noema.adapters.platforms.result_fetch import (
    REFUSED_NOTE,
    MediaSources,
    ResultFetcher,
    sources_for,
)
from noema.config.media_hosts import Source, parse_hosts
from noema.domain.errors import NotifierError, ResultRefused
from tests.e2e.chat_harness import png_bytes
from tests.fakes.media_host import MediaHost, media_host


@pytest.fixture
def host() -> Iterator[MediaHost]:
    with media_host() as served:
        yield served


@pytest.fixture
def other() -> Iterator[MediaHost]:
    with media_host() as served:
        yield served


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def _image(url: str) -> dict[str, object]:
    return {"kind": "image", "url": url, "filename": "fox.png", "mime_type": "image/png"}


def _local(host: MediaHost) -> MediaSources:
    """The rule for a backend that is itself on this machine: its host and port, private addresses allowed."""
    return MediaSources((Source.parse(f"127.0.0.1:{host.port}"),), allow_private=True)


# --- hosts and redirects, against real servers -------------------------------------------------


async def test_a_result_on_an_allowed_host_is_fetched(client: httpx.AsyncClient, host: MediaHost) -> None:
    media = await ResultFetcher(client, _local(host)).fetch(_image(host.url("/fox.png")))
    assert media.kind is MediaKind.PHOTO and media.filename == "fox.png"
    assert host.hits == ["/fox.png"]


async def test_a_result_on_a_host_that_is_not_allowed_is_never_requested(
    client: httpx.AsyncClient, host: MediaHost
) -> None:
    fetcher = ResultFetcher(client, MediaSources((Source.parse("media.example"),), allow_private=True))
    with pytest.raises(ResultRefused):
        await fetcher.fetch(_image(host.url("/fox.png")))
    assert host.hits == []


async def test_a_redirect_from_an_allowed_host_to_another_port_is_not_followed(
    client: httpx.AsyncClient, host: MediaHost, other: MediaHost
) -> None:
    host.redirects["/hop"] = other.url("/fox.png")
    with pytest.raises(ResultRefused, match="not one of the backend's media hosts"):
        await ResultFetcher(client, _local(host)).fetch(_image(host.url("/hop")))
    assert host.hits == ["/hop"]
    assert other.hits == []


async def test_a_redirect_within_the_allowed_host_is_followed(client: httpx.AsyncClient, host: MediaHost) -> None:
    host.redirects["/hop"] = "/fox.png"
    media = await ResultFetcher(client, _local(host)).fetch(_image(host.url("/hop")))
    assert media.kind is MediaKind.PHOTO
    assert host.hits == ["/hop", "/fox.png"]


async def test_a_redirect_loop_stops_after_a_few_hops(client: httpx.AsyncClient, host: MediaHost) -> None:
    host.redirects["/a"] = "/b"
    host.redirects["/b"] = "/a"
    with pytest.raises(ResultRefused, match="redirects"):
        await ResultFetcher(client, _local(host)).fetch(_image(host.url("/a")))
    assert len(host.hits) == 4  # the first request and three redirects


async def test_loopback_is_refused_when_the_backend_is_not_local(client: httpx.AsyncClient, host: MediaHost) -> None:
    sources = MediaSources((Source.parse(f"localhost:{host.port}"), Source.parse(f"127.0.0.1:{host.port}")))
    for url in (f"http://localhost:{host.port}/fox.png", host.url("/fox.png")):
        with pytest.raises(ResultRefused, match="private address"):
            await ResultFetcher(client, sources).fetch(_image(url))
    assert host.hits == []


async def test_a_file_larger_than_the_cap_is_refused(client: httpx.AsyncClient, host: MediaHost) -> None:
    host.big_bytes = 4096
    with pytest.raises(ResultRefused, match="larger than"):
        await ResultFetcher(client, _local(host), max_bytes=1024).fetch(_image(host.url("/big")))


async def test_a_refused_file_becomes_a_note_and_the_others_still_arrive(
    client: httpx.AsyncClient, host: MediaHost, other: MediaHost
) -> None:
    outputs: list[dict[str, Any]] = [
        _image(host.url("/a.png")),
        _image(other.url("/b.png")),
        {"kind": "text", "text": "hi"},
    ]
    files, notes = await ResultFetcher(client, _local(host)).fetch_all(outputs)
    assert [f.kind for f in files] == [MediaKind.PHOTO]
    assert notes == [REFUSED_NOTE]
    assert other.hits == []


# --- names that resolve to private addresses, with a chosen resolver ---------------------------


class _Internet:
    """A MockTransport of named hosts, and the addresses each resolves to."""

    def __init__(self, addresses: dict[str, list[str]]) -> None:
        self.addresses = addresses
        self.requests: list[str] = []
        self.redirects: dict[str, str] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.addresses:
            raise OSError("no such host")
        return self.addresses[host]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if location := self.redirects.get(str(request.url)):
            return httpx.Response(302, headers={"Location": location})
        return httpx.Response(200, content=png_bytes(), headers={"Content-Type": "image/png"})

    def fetcher(self, *hosts: str) -> ResultFetcher:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return ResultFetcher(client, MediaSources(tuple(Source.parse(h) for h in hosts)), resolver=self.resolve)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "192.168.0.7", "169.254.169.254", "::1", "::ffff:127.0.0.1", "fd00::1"]
)
async def test_an_allowed_name_that_resolves_to_a_private_address_is_never_requested(address: str) -> None:
    internet = _Internet({"media.example": ["93.184.216.34", address]})
    with pytest.raises(ResultRefused, match="private address"):
        await internet.fetcher("media.example").fetch(_image("https://media.example/fox.png"))
    assert internet.requests == []


async def test_a_redirect_to_an_allowed_name_with_a_private_address_is_not_followed() -> None:
    internet = _Internet({"cdn.example": ["93.184.216.34"], "inner.example": ["10.0.0.8"]})
    internet.redirects["https://cdn.example/fox.png"] = "https://inner.example/fox.png"
    with pytest.raises(ResultRefused, match="private address"):
        await internet.fetcher("cdn.example", "inner.example").fetch(_image("https://cdn.example/fox.png"))
    assert internet.requests == ["https://cdn.example/fox.png"]


async def test_a_public_allowed_name_is_fetched_and_a_subdomain_pattern_matches() -> None:
    internet = _Internet({"out.bucket.example": ["93.184.216.34"]})
    media = await internet.fetcher("*.bucket.example").fetch(_image("https://out.bucket.example/fox.png"))
    assert media.kind is MediaKind.PHOTO


async def test_a_name_that_does_not_resolve_is_a_retryable_failure_not_a_refusal() -> None:
    internet = _Internet({})
    with pytest.raises(NotifierError) as raised:
        await internet.fetcher("gone.example").fetch(_image("https://gone.example/fox.png"))
    assert raised.value.retryable and not isinstance(raised.value, ResultRefused)


# --- the default rule --------------------------------------------------------------------------


def test_comfydeploy_results_come_from_its_api_host_and_its_output_buckets_over_public_addresses() -> None:
    rule = sources_for(backend_url="https://api.comfydeploy.com/api", sandbox_files_url=None, configured=None)
    assert not rule.allow_private
    assert rule.admits(httpx.URL("https://comfy-deploy-output.s3.amazonaws.com/outputs/runs/r/a.png"))
    assert rule.admits(httpx.URL("https://comfy-deploy-output.s3.us-east-2.amazonaws.com/outputs/runs/r/a.png"))
    assert rule.admits(httpx.URL("https://api.comfydeploy.com/files/a.png"))
    assert not rule.admits(httpx.URL("https://evil.example/a.png"))
    assert not rule.admits(httpx.URL("https://api.comfydeploy.com:8443/a.png"))


def test_configured_hosts_replace_the_default_buckets_but_keep_the_backends_own_host() -> None:
    rule = sources_for(
        backend_url="https://api.comfydeploy.com/api", sandbox_files_url=None, configured=parse_hosts("cdn.example")
    )
    assert rule.admits(httpx.URL("https://cdn.example/a.png"))
    assert rule.admits(httpx.URL("https://api.comfydeploy.com/a.png"))
    assert not rule.admits(httpx.URL("https://comfy-deploy-output.s3.amazonaws.com/a.png"))


def test_a_backend_on_a_private_address_may_serve_from_private_addresses() -> None:
    rule = sources_for(backend_url="http://127.0.0.1:3011/api", sandbox_files_url=None, configured=None)
    assert rule.allow_private and rule.admits(httpx.URL("http://127.0.0.1:3011/outputs/a.png"))
    assert not rule.admits(httpx.URL("http://127.0.0.1:5432/"))


def test_the_sandbox_serves_only_its_own_files_under_the_public_url() -> None:
    rule = sources_for(backend_url=None, sandbox_files_url="https://noema.test/sandbox/files/", configured=None)
    assert rule.allow_private
    assert rule.admits(httpx.URL("https://noema.test/sandbox/files/runs/r/a.png"))
    assert not rule.admits(httpx.URL("https://noema.test/api/internal/accounts"))
    assert not rule.admits(httpx.URL("https://noema.test/sandbox/files/%2e%2e/%2e%2e/api/internal/accounts"))
    assert not rule.admits(httpx.URL("http://noema.test/sandbox/files/a.png"))  # another port (80)


@pytest.mark.parametrize("bad", ["ftp://x.example", "https://user:pw@x.example", "https://x.example/?q=1", "http://"])
def test_a_media_host_setting_that_is_not_a_host_or_url_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a host"):
        Source.parse(bad)
