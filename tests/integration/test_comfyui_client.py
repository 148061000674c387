"""The ComfyUI client's failure handling (httpx.MockTransport) and the fake's faults on demand.

stamina's test mode removes the real backoff sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from noema.adapters.backends.comfyui import ComfyUIClient, EventListener
from noema.adapters.backends.comfyui.events import Connected, Disconnected, Event, QueueStatus
from noema.domain.errors import BackendOutcomeUnknown, BackendProtocolError, BackendRejected, BackendUnavailable
from tests.fakes.comfyui import FakeComfyUI

BASE = "http://comfy.test:8188"
GRAPH: dict[str, dict[str, Any]] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 1}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}},
}


@pytest.fixture(autouse=True)
def _no_backoff_sleeps() -> Iterator[None]:
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


def _client(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: int
) -> tuple[ComfyUIClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return ComfyUIClient(BASE, http=http, client_id="cid", **kwargs), seen


def _raise(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


async def test_a_prompt_whose_answer_is_lost_is_not_sent_again() -> None:
    client, seen = _client(_raise(httpx.ReadTimeout))
    with pytest.raises(BackendOutcomeUnknown):
        await client.queue_prompt(GRAPH)
    assert len(seen) == 1


async def test_a_prompt_answered_with_a_server_error_is_not_sent_again() -> None:
    client, seen = _client(lambda r: httpx.Response(500, text="Internal Server Error"))
    with pytest.raises(BackendOutcomeUnknown):
        await client.queue_prompt(GRAPH)
    assert len(seen) == 1


async def test_a_prompt_that_never_connected_is_tried_again_then_reported_unavailable() -> None:
    client, seen = _client(_raise(httpx.ConnectError))
    with pytest.raises(BackendUnavailable) as caught:
        await client.queue_prompt(GRAPH)
    assert len(seen) == 3 and not isinstance(caught.value, BackendOutcomeUnknown)


async def test_the_prompt_carries_our_client_id_and_prompt_id() -> None:
    client, seen = _client(lambda r: httpx.Response(200, json={"prompt_id": "abc", "number": 0, "node_errors": {}}))
    assert await client.queue_prompt(GRAPH, prompt_id="abc") == "abc"
    body = seen[0].read()
    assert b'"client_id":"cid"' in body.replace(b" ", b"") and b'"prompt_id":"abc"' in body.replace(b" ", b"")


async def test_reads_are_retried_on_server_errors_and_then_reported_unavailable() -> None:
    client, seen = _client(lambda r: httpx.Response(502))
    with pytest.raises(BackendUnavailable):
        await client.queue()
    assert len(seen) == 3


async def test_an_answer_that_is_not_json_is_a_protocol_error() -> None:
    client, _ = _client(lambda r: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(BackendProtocolError):
        await client.system_stats()


async def test_a_missing_output_file_is_a_rejection_with_its_status() -> None:
    client, seen = _client(lambda r: httpx.Response(404))
    with pytest.raises(BackendRejected) as caught:
        await client.view("nope.png")
    assert caught.value.status == 404 and len(seen) == 1


async def test_an_output_larger_than_the_limit_is_refused_without_buffering_it_all() -> None:
    client, _ = _client(lambda r: httpx.Response(200, content=b"x" * 5000), view_limit_bytes=1000)
    with pytest.raises(BackendProtocolError, match="more than 1000 bytes"):
        await client.view("big.png")


async def test_history_of_a_prompt_id_cannot_reach_another_route() -> None:
    client, seen = _client(lambda r: httpx.Response(200, json={}))
    assert await client.history("../queue") is None
    assert seen[0].url.raw_path == b"/history/..%2Fqueue"


# --- the fake's faults on demand ----------------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeComfyUI]:
    server = FakeComfyUI(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(fake: FakeComfyUI) -> AsyncIterator[ComfyUIClient]:
    async with httpx.AsyncClient() as http:
        yield ComfyUIClient(fake.url, http=http, client_id=uuid.uuid4().hex, timeout_seconds=0.5)


async def _next(events: AsyncIterator[Event], kind: type) -> Event:
    while True:
        event = await asyncio.wait_for(anext(events), 10)
        if isinstance(event, kind):
            return event


async def test_the_listener_reconnects_after_the_server_drops_the_socket(fake: FakeComfyUI) -> None:
    listener = EventListener(fake.url, client_id="c1", initial_backoff=0.05, max_backoff=0.2)
    events = listener.events()
    assert isinstance(events, AsyncGenerator)  # closed below, ending the listener's socket
    try:
        assert isinstance(await _next(events, Connected), Connected)
        await _next(events, QueueStatus)
        assert await asyncio.to_thread(fake.drop_sockets) == 1
        assert isinstance(await _next(events, Disconnected), Disconnected)
        assert isinstance(await _next(events, Connected), Connected)
    finally:
        await events.aclose()


async def test_the_listener_gives_up_after_the_bounded_number_of_failed_connects() -> None:
    listener = EventListener(
        "http://127.0.0.1:9", client_id="c", initial_backoff=0.01, max_backoff=0.02, max_failures=3
    )
    seen = [event async for event in listener.events()]
    assert isinstance(seen[0], Disconnected), seen
    assert seen == [Disconnected(seen[0].reason)] * 3


async def test_a_restarted_server_knows_neither_the_queued_nor_the_finished_prompts(
    fake: FakeComfyUI, client: ComfyUIClient
) -> None:
    fake.node_seconds = 0.5
    first = await client.queue_prompt(GRAPH)
    second = await client.queue_prompt({**GRAPH, "1": {**GRAPH["1"], "inputs": {**GRAPH["1"]["inputs"], "color": 2}}})
    assert first in await client.queue() and second in await client.queue()
    await asyncio.to_thread(fake.restart)
    queue = await client.queue()
    assert first not in queue and second not in queue
    assert await client.history(first) is None and await client.history(second) is None


async def test_a_view_slower_than_the_timeout_is_reported_unavailable(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    prompt_id = await client.queue_prompt(GRAPH)
    for _ in range(100):
        if (result := await client.history(prompt_id)) is not None:
            break
        await asyncio.sleep(0.05)
    assert result is not None
    [output] = result.outputs
    fake.view_delay = 2.0
    with pytest.raises(BackendUnavailable):
        await client.view(output.filename)
    fake.view_delay = 0.0
    assert (await client.view(output.filename)).startswith(b"\x89PNG")
