"""Discord: the REST client keeps within the rate limits, retries what is worth retrying and nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from noema.adapters.platforms.discord.ratelimit import Buckets
from noema.adapters.platforms.discord.rest import DiscordApiError, DiscordRest, OutMessage
from noema.domain.errors import NotifierError

Handler = Callable[[httpx.Request], httpx.Response]


class Time:
    """A clock that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def _client(handler: Handler, time: Time, **kw: float) -> tuple[DiscordRest, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    rest = DiscordRest(
        http,
        base_url="https://discord.test/api/v10",
        bot_token="secret-token",
        application_id="11",
        buckets=Buckets(time.clock),
        sleep=time.sleep,
        **kw,
    )
    return rest, seen


def _replies(*responses: httpx.Response) -> Handler:
    queue = list(responses)
    return lambda _request: queue.pop(0)


def _limited(retry_after: float, *, is_global: bool = False) -> httpx.Response:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
    return httpx.Response(429, json=body, headers={"X-RateLimit-Bucket": "b1", "Retry-After": "1"})


async def test_a_short_429_is_waited_out_for_its_retry_after_and_retried() -> None:
    time = Time()
    rest, seen = _client(_replies(_limited(0.75), httpx.Response(200, json={"id": "m"})), time)
    assert await rest.edit_original("tok", OutMessage({"content": "hi"})) == {"id": "m"}
    assert len(seen) == 2 and time.slept == [0.75]


async def test_a_long_429_goes_back_to_the_caller_with_its_retry_after() -> None:
    time = Time()
    rest, seen = _client(_replies(_limited(12.5)), time)
    with pytest.raises(NotifierError) as info:
        await rest.edit_original("tok", OutMessage({"content": "hi"}))
    assert info.value.retryable and info.value.retry_after == 12.5 and len(seen) == 1
    with pytest.raises(NotifierError) as again:  # the bucket is known to be empty: no request is made
        await rest.edit_original("tok", OutMessage({"content": "hi"}))
    assert len(seen) == 1 and again.value.retry_after == pytest.approx(12.5)


async def test_an_empty_bucket_is_waited_for_before_the_next_request() -> None:
    time = Time()
    headers = {"X-RateLimit-Bucket": "abc", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.4"}
    rest, seen = _client(lambda _r: httpx.Response(200, json={}, headers=headers), time)
    await rest.followup("tok", OutMessage({"content": "1"}))
    await rest.followup("tok", OutMessage({"content": "2"}))
    assert time.slept == [0.4] and len(seen) == 2
    await rest.followup("other-token", OutMessage({"content": "3"}))  # another webhook: another bucket, no wait
    assert time.slept == [0.4] and len(seen) == 3


async def test_a_global_429_pauses_every_route() -> None:
    time = Time()
    rest, _seen = _client(_replies(_limited(1.5, is_global=True), httpx.Response(204)), time)
    await rest.delete_original("tok")
    assert time.slept == [1.5]


async def test_server_errors_and_network_errors_are_retried_with_backoff() -> None:
    time = Time()
    calls: Iterator[httpx.Response | httpx.ConnectError] = iter(
        [httpx.Response(502), httpx.ConnectError("down"), httpx.Response(200, json=[])]
    )

    def flaky(request: httpx.Request) -> httpx.Response:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    rest, _seen = _client(flaky, time)
    assert await rest.overwrite_commands([]) == []
    assert time.slept == [0.5, 1.0]


async def test_a_network_error_that_persists_is_a_retryable_notifier_error_without_the_token() -> None:
    def down(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down")

    rest, seen = _client(down, Time())
    with pytest.raises(NotifierError) as info:
        await rest.edit_original("secret-interaction-token", OutMessage({}))
    assert info.value.retryable and len(seen) == 4 and "secret" not in info.value.message


async def test_other_4xx_are_final_and_name_discords_code() -> None:
    body = {"message": "Invalid Webhook Token", "code": 50027}
    rest, seen = _client(_replies(httpx.Response(401, json=body)), Time())
    with pytest.raises(DiscordApiError) as info:
        await rest.edit_original("tok", OutMessage({"content": "x"}))
    assert not info.value.retryable and info.value.discord_code == 50027 and info.value.token_gone
    assert len(seen) == 1


async def test_files_go_as_multipart_with_payload_json_and_bot_endpoints_carry_the_token() -> None:
    rest, seen = _client(lambda _r: httpx.Response(200, json={"id": "1"}), Time())
    await rest.channel_message("55", OutMessage({"content": "x"}, [("a.png", b"\x89PNG", "image/png")]))
    (request,) = seen
    assert (
        request.url.path == "/api/v10/channels/55/messages" and request.headers["authorization"] == "Bot secret-token"
    )
    body = request.read()
    assert b'name="payload_json"' in body and b'name="files[0]"; filename="a.png"' in body
    assert json.dumps({"content": "x"}).encode() in body
    await rest.edit_original("tok", OutMessage({"content": "y"}))
    assert "authorization" not in seen[-1].headers  # interaction webhooks are authorised by their token
    assert seen[-1].url.path == "/api/v10/webhooks/11/tok/messages/@original"
