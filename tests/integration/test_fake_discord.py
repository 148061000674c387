"""The fake Discord API over real HTTP: signatures, commands, interaction responses, files, rate limits."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nacl.exceptions
import pytest
from nacl.signing import VerifyKey
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.discord_api import FakeDiscord

BOT = {"Authorization": "Bot test-bot-token"}
APP = "1100000000000000001"


def _png(width: int = 3, height: int = 2) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def _command(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": 1, "description": f"Run {name}", **extra}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    discord = FakeDiscord()
    await discord.serve()
    yield discord
    await discord.stop()


@pytest.fixture
async def api(fake: FakeDiscord) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{fake.root}/api/v10", timeout=10) as client:
        yield client


def _callback_url(hit: dict[str, Any]) -> str:
    return f"/interactions/{hit['id']}/{hit['token']}/callback"


def _original(fake: FakeDiscord, hit: dict[str, Any]) -> dict[str, Any]:
    """The interaction's @original message, which the test expects to exist."""
    message = fake.original(hit)
    assert message is not None
    return message


def _original_url(hit: dict[str, Any]) -> str:
    return f"/webhooks/{APP}/{hit['token']}/messages/@original"


def _multipart(payload: dict[str, Any], *files: tuple[str, bytes, str]) -> dict[str, Any]:
    parts: list[tuple[str, Any]] = [("payload_json", (None, json.dumps(payload), "application/json"))]
    parts += [(f"files[{i}]", f) for i, f in enumerate(files)]
    return {"files": parts}


async def test_signature_headers_verify_with_the_public_key(fake: FakeDiscord) -> None:
    body, headers = fake.signed(fake.slash("imagine", [{"name": "prompt", "value": "a red fox"}]))
    verify_key = VerifyKey(bytes.fromhex(fake.public_key_hex))
    stamp, signature = headers["X-Signature-Timestamp"], bytes.fromhex(headers["X-Signature-Ed25519"])
    assert verify_key.verify(stamp.encode() + body, signature) == stamp.encode() + body
    assert headers["Content-Type"] == "application/json"
    given = fake.sign(b'{"type":1}', timestamp="1700000000")
    assert given["X-Signature-Timestamp"] == "1700000000"
    verify_key.verify(b'1700000000{"type":1}', bytes.fromhex(given["X-Signature-Ed25519"]))
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify_key.verify(stamp.encode() + body + b" ", signature)


async def test_interactions_look_like_what_discord_posts(fake: FakeDiscord) -> None:
    first = fake.slash("imagine", [{"name": "prompt", "value": "cat"}, {"name": "steps", "value": 20}])
    second = fake.slash("imagine")
    assert first["token"] != second["token"] and first["id"] != second["id"]
    assert (first["type"], first["version"], first["application_id"]) == (2, 1, APP)
    assert first["member"]["user"] == {**first["member"]["user"], "id": "4400000000000000004", "username": "tester"}
    assert [o["type"] for o in first["data"]["options"]] == [3, 4]
    assert "options" not in second["data"]
    dm = fake.slash("tools list", guild_id=None, user_id="77")
    assert "member" not in dm and dm["user"]["id"] == "77" and dm["context"] == 1
    assert dm["data"]["options"] == [{"name": "list", "type": 1, "options": []}]
    typed = fake.autocomplete(
        "imagine", [{"name": "model", "value": "fl"}, {"name": "prompt", "value": "x"}], focused="model"
    )
    assert typed["type"] == 4 and typed["data"]["options"][0]["focused"] is True
    assert "focused" not in typed["data"]["options"][1]
    clicked = fake.button("retry:1", {"id": "555", "channel_id": "3300000000000000003", "content": "done"})
    assert clicked["type"] == 3 and clicked["data"] == {"custom_id": "retry:1", "component_type": 2}
    assert clicked["message"]["id"] == "555"


async def test_bulk_overwrite_stores_lists_and_keeps_ids(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    body = [_command("imagine", options=[{"name": "prompt", "type": 3, "description": "What", "required": True}])]
    body.append(_command("balance"))
    first = await api.put(f"/applications/{APP}/commands", json=body, headers=BOT)
    assert first.status_code == 200
    created = first.json()
    assert {c["name"] for c in created} == {"imagine", "balance"}
    assert all(c["application_id"] == APP and c["id"] and c["version"] for c in created)
    assert fake.commands[(None, "imagine")]["options"][0]["name"] == "prompt"
    listed = await api.get(f"/applications/{APP}/commands", headers=BOT)
    assert listed.json() == created
    again = (await api.put(f"/applications/{APP}/commands", json=body[:1], headers=BOT)).json()
    assert again[0]["id"] == created[0]["id"] and again[0]["version"] == created[0]["version"]
    assert (None, "balance") not in fake.commands
    guild = await api.put(f"/applications/{APP}/guilds/42/commands", json=[_command("debug")], headers=BOT)
    assert guild.json()[0]["guild_id"] == "42" and ("42", "debug") in fake.commands
    assert fake.slash("imagine")["data"]["id"] == created[0]["id"]


async def test_bulk_overwrite_refuses_what_discord_refuses(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    too_many = await api.put(f"/applications/{APP}/commands", json=[_command(f"c{i}") for i in range(101)], headers=BOT)
    assert too_many.status_code == 400
    assert too_many.json()["code"] == 50035 and too_many.json()["message"] == "Invalid Form Body"
    assert too_many.json()["errors"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    bad = [
        _command("Imagine"),
        _command("ok", description=""),
        _command(
            "order",
            options=[
                {"name": "a", "type": 3, "description": "A"},
                {"name": "b", "type": 3, "description": "B", "required": True},
            ],
        ),
    ]
    refused = (await api.put(f"/applications/{APP}/commands", json=bad, headers=BOT)).json()
    assert refused["errors"]["0"]["name"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"
    assert refused["errors"]["1"]["description"]["_errors"][0]["code"] == "BASE_TYPE_BAD_LENGTH"
    assert (
        refused["errors"]["2"]["options"]["1"]["_errors"][0]["code"] == "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID"
    )
    assert fake.commands == {}


async def test_bot_endpoints_need_the_bot_token(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bot wrong"}, {"Authorization": "Bearer test-bot-token"}):
        response = await api.get(f"/applications/{APP}/commands", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "401: Unauthorized", "code": 0}
        assert {
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-reset-after",
            "x-ratelimit-bucket",
        } <= set(response.headers)
    assert [c.status for c in fake.calls_to("GET", "/commands")] == [401, 401, 401]


async def test_deferred_response_then_edit_with_a_png_attachment(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    hit = fake.slash("imagine", [{"name": "prompt", "value": "fox"}])
    assert (await api.post(_callback_url(hit), json={"type": 5})).status_code == 204
    loading = (await api.get(_original_url(hit))).json()
    assert loading["flags"] & 128 and loading["content"] == "" and loading["type"] == 20
    assert loading["author"]["id"] == APP and loading["author"]["bot"] is True
    png = _png(3, 2)
    payload = {"content": "Here you go", "attachments": [{"id": 0, "filename": "fox.png", "description": "a fox"}]}
    edited = await api.patch(_original_url(hit), **_multipart(payload, ("upload.png", png, "image/png")))
    assert edited.status_code == 200
    message = edited.json()
    assert message["id"] == loading["id"] and message["content"] == "Here you go" and message["flags"] == 0
    (attachment,) = message["attachments"]
    assert (attachment["filename"], attachment["size"], attachment["width"], attachment["height"]) == (
        "fox.png",
        len(png),
        3,
        2,
    )
    assert attachment["content_type"] == "image/png" and attachment["description"] == "a fox"
    async with httpx.AsyncClient() as cdn:
        served = await cdn.get(attachment["url"])
    assert served.status_code == 200 and served.content == png and served.headers["content-type"] == "image/png"
    assert fake.messages[message["id"]]["attachments"][0]["id"] == attachment["id"]
    assert [m["content"] for m in fake.edits(message["id"])] == ["", "Here you go"]
    assert fake.calls_to("PATCH", "@original")[0].files["files[0]"].content == png
    assert fake.calls_to("PATCH", "@original")[0].json == payload


async def test_a_second_callback_is_already_acknowledged(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    hit = fake.slash("balance")
    first = await api.post(_callback_url(hit), json={"type": 4, "data": {"content": "You have $1", "flags": 64}})
    assert first.status_code == 204
    second = await api.post(_callback_url(hit), json={"type": 4, "data": {"content": "again"}})
    assert second.status_code == 400
    assert second.json() == {"message": "Interaction has already been acknowledged.", "code": 40060}
    assert _original(fake, hit)["content"] == "You have $1" and _original(fake, hit)["flags"] == 64


async def test_a_late_or_unknown_callback_is_an_unknown_interaction(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    hit = fake.slash("imagine")
    fake.age(hit, 3.5)
    late = await api.post(_callback_url(hit), json={"type": 5})
    assert late.status_code == 404
    assert late.json() == {"message": "Unknown interaction", "code": 10062}
    forged = await api.post(f"/interactions/{hit['id']}/not-the-token/callback", json={"type": 5})
    assert forged.json()["code"] == 10062
    assert fake.state_of(hit).acknowledged is False


async def test_the_callback_window_is_configurable_and_tokens_expire() -> None:
    async with FakeDiscord(callback_window=10.0) as fake, httpx.AsyncClient(base_url=f"{fake.root}/api/v10") as api:
        hit = fake.slash("imagine")
        fake.age(hit, 5)
        assert (await api.post(_callback_url(hit), json={"type": 5})).status_code == 204
        fake.age(hit, 900)
        expired = await api.patch(_original_url(hit), json={"content": "too late"})
        assert expired.status_code == 401 and expired.json() == {"message": "Invalid Webhook Token", "code": 50027}


async def test_fail_next_answers_discords_429(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    hit = fake.slash("imagine")
    await api.post(_callback_url(hit), json={"type": 5})
    fake.fail_next("PATCH", "/messages/@original", retry_after=0.25)
    limited = await api.patch(_original_url(hit), json={"content": "50%"})
    assert limited.status_code == 429
    assert limited.json() == {"message": "You are being rate limited.", "retry_after": 0.25, "global": False}
    assert limited.headers["retry-after"] == "1" and limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-scope"] == "user" and float(limited.headers["x-ratelimit-reset-after"]) == 0.25
    assert limited.headers["x-ratelimit-bucket"]
    assert _original(fake, hit)["content"] == ""  # the limited edit did nothing
    assert (await api.patch(_original_url(hit), json={"content": "50%"})).status_code == 200
    fake.fail_next("POST", "/webhooks/", global_=True, retry_after=2.5)
    global_limit = await api.post(f"/webhooks/{APP}/{hit['token']}", json={"content": "followup"})
    assert global_limit.json()["global"] is True and global_limit.headers["x-ratelimit-global"] == "true"
    assert global_limit.headers["retry-after"] == "3" and global_limit.headers["x-ratelimit-scope"] == "global"


async def test_oversized_content_and_embeds_are_invalid_form_bodies(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    hit = fake.slash("imagine")
    refused = await api.post(_callback_url(hit), json={"type": 4, "data": {"content": "x" * 2001}})
    assert refused.status_code == 400 and refused.json()["code"] == 50035
    assert refused.json()["errors"]["data"]["content"]["_errors"][0] == {
        "code": "BASE_TYPE_MAX_LENGTH",
        "message": "Must be 2000 or fewer in length.",
    }
    assert fake.state_of(hit).acknowledged is False  # a refused callback does not acknowledge
    assert (await api.post(_callback_url(hit), json={"type": 4, "data": {"content": "ok"}})).status_code == 204
    embeds = [{"title": "t" * 257}, {"description": "d" * 4096}, {"description": "d" * 2000}]
    bad_edit = (await api.patch(_original_url(hit), json={"content": "y" * 2001, "embeds": embeds})).json()
    assert set(bad_edit["errors"]) == {"content", "embeds"}
    assert bad_edit["errors"]["embeds"]["0"]["title"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert bad_edit["errors"]["embeds"]["_errors"][0]["code"] == "MAX_EMBED_SIZE_EXCEEDED"
    rows = [
        {"type": 1, "components": [{"type": 2, "style": 1, "custom_id": f"b{r}{i}", "label": "go"} for i in range(6)]}
        for r in range(6)
    ]
    too_many = (await api.patch(_original_url(hit), json={"components": rows})).json()
    assert too_many["errors"]["components"]["_errors"][0]["message"] == "Must be 5 or fewer in length."
    assert too_many["errors"]["components"]["0"]["components"]["_errors"][0]["code"] == "BASE_TYPE_BAD_LENGTH"
    assert _original(fake, hit)["content"] == "ok"


async def test_files_over_the_size_limit_are_too_large() -> None:
    async with FakeDiscord(max_file_bytes=1024) as fake, httpx.AsyncClient(base_url=f"{fake.root}/api/v10") as api:
        hit = fake.slash("imagine")
        await api.post(_callback_url(hit), json={"type": 5})
        big = await api.patch(
            _original_url(hit), **_multipart({"content": "big"}, ("big.bin", b"x" * 1025, "application/octet-stream"))
        )
        assert big.status_code == 413 and big.json() == {"message": "Request entity too large", "code": 40005}
        eleven = [(f"f{i}.txt", b"hi", "text/plain") for i in range(11)]
        crowded = await api.patch(_original_url(hit), **_multipart({"content": "many"}, *eleven))
        assert crowded.json()["errors"]["attachments"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
        assert _original(fake, hit)["attachments"] == []


async def test_followups_components_and_delete(fake: FakeDiscord, api: httpx.AsyncClient) -> None:
    hit = fake.slash("imagine")
    await api.post(_callback_url(hit), json={"type": 4, "data": {"content": "queued"}})
    row = {"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "cancel", "label": "Cancel"}]}
    followup = (
        await api.post(f"/webhooks/{APP}/{hit['token']}", json={"content": "50%", "components": [row], "flags": 64})
    ).json()
    assert followup["flags"] == 64 and followup["components"][0]["components"][0]["custom_id"] == "cancel"
    assert [m["id"] for m in fake.followups(hit)] == [followup["id"]]
    edit_url = f"/webhooks/{APP}/{hit['token']}/messages/{followup['id']}"
    assert (await api.patch(edit_url, json={"content": "100%"})).json()["edited_timestamp"] is not None
    click = fake.button("cancel", fake.messages[followup["id"]])
    assert (
        await api.post(_callback_url(click), json={"type": 7, "data": {"content": "Cancelled", "components": []}})
    ).status_code == 204
    assert fake.messages[followup["id"]]["content"] == "Cancelled" and fake.messages[followup["id"]]["components"] == []
    assert (await api.delete(_original_url(hit))).status_code == 204
    gone = await api.get(_original_url(hit))
    assert gone.status_code == 404 and gone.json() == {"message": "Unknown Message", "code": 10008}


async def test_deliver_applies_an_inline_interaction_response(fake: FakeDiscord) -> None:
    verify_key = VerifyKey(bytes.fromhex(fake.public_key_hex))

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()
        stamp = request.headers["x-signature-timestamp"]
        verify_key.verify(stamp.encode() + body, bytes.fromhex(request.headers["x-signature-ed25519"]))
        if json.loads(body)["type"] == 1:
            return JSONResponse({"type": 1})
        return JSONResponse({"type": 4, "data": {"content": "inline hello"}})

    noema = Starlette(routes=[Route("/discord/interactions", endpoint, methods=["POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=noema), base_url="http://noema.test") as client:
        ping = fake.ping()
        assert (await fake.deliver("http://noema.test/discord/interactions", ping, client=client)).json() == {"type": 1}
        hit = fake.slash("imagine")
        await fake.deliver("http://noema.test/discord/interactions", hit, client=client)
    assert fake.state_of(ping).callback_type == 1
    assert _original(fake, hit)["content"] == "inline hello"


async def test_unknown_routes_answer_discords_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/users/@me/guilds", headers=BOT)
    assert response.status_code == 404 and response.json() == {"message": "404: Not Found", "code": 0}
    assert response.headers["x-ratelimit-bucket"]


async def test_an_exhausted_bucket_is_really_limited() -> None:
    async with (
        FakeDiscord(route_limit=2, route_window=30) as fake,
        httpx.AsyncClient(base_url=f"{fake.root}/api/v10") as api,
    ):
        answers = [await api.get(f"/applications/{APP}/commands", headers=BOT) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
        assert answers[2].json()["global"] is False and 0 < answers[2].json()["retry_after"] <= 30
        other_guild = await api.get(f"/applications/{APP}/guilds/9/commands", headers=BOT)
        assert other_guild.status_code == 200  # another route, another bucket


async def test_user_uploads_are_resolved_in_the_command_and_served(fake: FakeDiscord) -> None:
    png = _png(4, 4)
    upload = fake.attachment_url("my photo.png", png, "image/png")
    assert (upload["filename"], upload["size"], upload["width"], upload["content_type"]) == (
        "my_photo.png",
        len(png),
        4,
        "image/png",
    )
    hit = fake.slash("img2img", [{"name": "prompt", "value": "sketch"}], attachments={"image": upload})
    assert hit["data"]["options"][1] == {"name": "image", "type": 11, "value": upload["id"]}
    assert hit["data"]["resolved"]["attachments"][upload["id"]]["url"] == upload["url"]
    async with httpx.AsyncClient() as cdn:
        served = await cdn.get(upload["url"])
        missing = await cdn.get(f"{fake.root}/attachments/{upload['id']}/other.png")
    assert served.content == png and fake.file_bytes(upload) == png
    assert missing.status_code == 404
