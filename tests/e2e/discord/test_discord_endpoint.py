"""Discord: the interactions endpoint — signatures, PING, bad bodies, unknown commands, autocomplete, registration."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey

from noema.adapters.platforms.discord.signature import MAX_SKEW_SECONDS
from noema.domain.errors import AccountNotFound
from noema.domain.tools import ToolOverride
from tests.e2e.chat_harness import until
from tests.e2e.discord.harness import DiscordRig, discord_app
from tests.fakes.discord_api import FakeDiscord


async def test_a_ping_is_answered_with_a_pong(rig: DiscordRig) -> None:
    ping = rig.fake.ping()
    response = await rig.post(ping)
    assert response.status_code == 200 and response.json() == {"type": 1}
    assert rig.fake.state_of(ping).callback_type == 1


async def test_a_missing_wrong_or_stale_signature_is_refused_with_401_and_changes_nothing(rig: DiscordRig) -> None:
    hit = rig.fake.slash("status")
    body, headers = rig.fake.signed(hit)
    stranger = SigningKey.generate()
    stamp = headers["X-Signature-Timestamp"]
    forged = stranger.sign(stamp.encode() + body).signature.hex()
    attempts = [
        {"Content-Type": "application/json"},
        {**headers, "X-Signature-Ed25519": forged},
        {**headers, "X-Signature-Ed25519": "zz" * 64},
        {**headers, "X-Signature-Ed25519": headers["X-Signature-Ed25519"][:-2]},
        {k: v for k, v in headers.items() if k != "X-Signature-Timestamp"},
    ]
    calls_before = len(rig.fake.calls)
    for attempt in attempts:
        response = await rig.raw(body, attempt)
        assert response.status_code == 401, response.text
    tampered = await rig.raw(body.replace(b"status", b"apikey"), headers)
    assert tampered.status_code == 401
    # A replay of an old request, or a clock far off: well past the window, since the server checks a
    # moment after the stamp is made (at +301 a second's delay on a loaded machine brought it back in).
    for skew in (-(MAX_SKEW_SECONDS + 30), MAX_SKEW_SECONDS + 30):
        assert (
            await rig.raw(body, {**headers, **rig.fake.sign(body, str(int(time.time()) + skew))})
        ).status_code == 401
    await rig.discord.idle()
    assert len(rig.fake.calls) == calls_before and rig.fake.state_of(hit).acknowledged is False
    with pytest.raises(AccountNotFound):
        await rig.account_id()  # nobody was let in
    ping = json.dumps({"type": 1, "id": "1", "application_id": "1", "token": "t"}).encode()
    fresh = {"Content-Type": "application/json", **rig.fake.sign(ping, str(int(time.time()) - 60))}
    assert (await rig.raw(ping, fresh)).json() == {"type": 1}  # a minute of clock skew is fine


async def test_a_signed_body_that_is_not_an_interaction_gets_400_and_no_traceback(rig: DiscordRig) -> None:
    envelope = '"id": "1", "application_id": "1", "token": "t"'
    bodies = [
        b"{not json",
        b"[]",
        b'{"type": 99, ' + envelope.encode() + b"}",
        b'{"type": true, ' + envelope.encode() + b"}",
        b'{"type": 2, ' + envelope.encode() + b', "data": {"name": "status"}}',  # nobody sent it
        b'{"type": 2, "id": "x", "application_id": "1", "token": "t", "user": {"id": "5"}, "data": {"name": "status"}}',
        b'{"type": 2, ' + envelope.encode() + b', "user": {"id": "5"}, "data": {"options": 3}}',
        b'{"type": 2, ' + envelope.encode() + b', "user": {"id": "5"}, "data": {"name": "run", "options": [{"v": 1}]}}',
        b'{"type": 3, ' + envelope.encode() + b', "user": {"id": "5"}, "data": {}}',
    ]
    for body in bodies:
        response = await rig.raw(body, {"Content-Type": "application/json", **rig.fake.sign(body)})
        assert response.status_code == 400, (body, response.text)
        assert "Traceback" not in response.text and response.json()["error"]["code"] == "INVALID_INPUT"
    await rig.discord.idle()
    assert rig.fake.calls_to("POST", "/webhooks/") == [] and rig.fake.calls_to("PATCH", "/webhooks/") == []


async def test_an_unknown_command_gets_a_private_answer_pointing_to_tools(rig: DiscordRig) -> None:
    hit = await rig.slash("nosuchtool", [{"name": "prompt", "value": "hi"}])
    original = rig.fake.original(hit)
    assert original is not None and original["flags"] & 64
    assert "/nosuchtool" in original["content"] and "/tools" in original["content"]


async def test_autocomplete_suggests_enabled_tools_matching_what_was_typed(rig: DiscordRig) -> None:
    typed = rig.fake.autocomplete("run", [{"name": "tool", "value": "img"}], focused="tool")
    response = await rig.post(typed)
    assert response.json()["type"] == 8
    values = [c["value"] for c in response.json()["data"]["choices"]]
    assert values == ["img2img", "txt2img"]  # what starts with it first, then what contains it
    animate = await rig.post(rig.fake.autocomplete("run", [{"name": "tool", "value": "/Anim"}], focused="tool"))
    assert [c["value"] for c in animate.json()["data"]["choices"]] == ["animate"]
    everything = await rig.post(rig.fake.autocomplete("run", [{"name": "tool", "value": ""}], focused="tool"))
    offered = {c["value"] for c in everything.json()["data"]["choices"]}
    assert {"txt2img", "img2img", "animate", "upscale", "caption"} <= offered and "flux_pro" not in offered
    assert rig.fake.state_of(typed).callback_type == 8


async def test_start_up_registers_the_built_in_commands_and_one_per_tool(rig: DiscordRig) -> None:
    names = {name for (scope, name) in rig.fake.commands if scope is None}
    assert {"run", "tools", "status", "cancel", "link", "apikey"} <= names
    assert {"txt2img", "img2img", "animate", "upscale", "caption"} <= names and "flux_pro" not in names
    run = rig.fake.commands[(None, "run")]
    tool = next(o for o in run["options"] if o["name"] == "tool")
    assert tool["autocomplete"] is True and tool["required"] is True
    assert next(o for o in run["options"] if o["name"] == "image")["type"] == 11
    txt2img = {o["name"]: o for o in rig.fake.commands[(None, "txt2img")]["options"]}
    assert txt2img["prompt"]["required"] is True
    assert (txt2img["width"]["type"], txt2img["width"]["min_value"], txt2img["width"]["max_value"]) == (4, 256, 1536)
    assert txt2img["sampler"]["choices"][0] == {"name": "euler", "value": "euler"}
    img2img = {o["name"]: o for o in rig.fake.commands[(None, "img2img")]["options"]}
    assert img2img["image"]["type"] == 11 and img2img["image"]["required"] is True
    assert img2img["prompt"]["required"] is False


async def test_a_catalog_change_registers_the_commands_again(rig: DiscordRig) -> None:
    puts = len(rig.fake.calls_to("PUT", "/commands"))
    await rig.container.catalog.refresh()  # nothing changed: nothing sent
    await rig.discord.idle()
    assert len(rig.fake.calls_to("PUT", "/commands")) == puts
    rig.container.catalog.overrides["caption"] = ToolOverride(command="describe")
    await rig.container.catalog.refresh()
    await until(lambda: (None, "describe") in rig.fake.commands, what="the new command")
    assert (None, "caption") not in rig.fake.commands
    assert len(rig.fake.calls_to("PUT", "/commands")) == puts + 1


async def test_with_guild_ids_the_commands_are_registered_in_each_guild(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, discord_guild_ids="42,43"):
        assert ("42", "txt2img") in fake.commands and ("43", "run") in fake.commands
        assert not [key for key in fake.commands if key[0] is None]
        assert [c.json for c in fake.calls_to("PUT", f"/applications/{fake.application_id}/commands")] == [[]]


async def test_the_endpoint_is_not_found_when_discord_is_off(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/webhook/discord", content=b"{}")
    assert response.status_code == 404
