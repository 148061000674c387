"""Typed outbox payloads and delivery targets read and write the JSON earlier versions stored, key for key."""

from __future__ import annotations

from typing import Any

import pytest

from noema.adapters.platforms.discord.interactions import MAX_ATTACHMENT_BYTES, Interaction, InteractionType
from noema.adapters.platforms.discord.target import TOKEN_LIFETIME, DiscordTarget
from noema.adapters.platforms.telegram.target import TelegramTarget
from noema.domain.delivery import DeliveryPayload
from noema.domain.generation import GenerationStatus
from noema.domain.ids import short_id
from tests.fakes.generations import make_generation

#: A result row as the outbox has always written it.
STORED_PAYLOAD: dict[str, Any] = {
    "status": "succeeded",
    "progress": 1.0,
    "liveStatus": None,
    "tool": "txt2img",
    "shortId": "0cc17",
    "costUsd": "0.003370000",
    "estimatedCostUsd": "0.010110000",
    "outputs": [{"kind": "image", "url": "https://files.test/out.png", "filename": "out.png"}],
    "failureReason": None,
    "shortfallUsd": "0.000000000",
}
#: Targets as the Telegram handlers and Discord runs stored them.
STORED_TELEGRAM: list[dict[str, Any]] = [
    {"chat_id": 5, "message_id": 11, "progress_message_id": 12},
    {"chat_id": -100123, "message_id": 11, "progress_message_id": 12, "image_file_id": "AgACAgQ"},
]
STORED_DISCORD: list[dict[str, Any]] = [
    {
        "application_id": "app-1",
        "interaction_id": "ix-1",
        "token": "tok",
        "expires_at": 1767270000.5,
        "channel_id": "c-1",
        "guild_id": None,
        "user_id": "u-1",
        "size_limit": 8 * 2**20,
    },
    {
        "application_id": "app-1",
        "interaction_id": "ix-2",
        "token": "tok",
        "expires_at": 1767270000.0,
        "channel_id": "c-1",
        "guild_id": "g-1",
        "user_id": "u-1",
        "size_limit": 25 * 2**20,
        "image_url": "https://cdn.discordapp.com/attachments/1/2/fox.png",
    },
]


def test_a_payload_is_written_as_the_json_the_outbox_always_stored() -> None:
    g = make_generation(
        GenerationStatus.SUCCEEDED,
        id="g-1",
        progress=1.0,
        cost_nanos=3_370_000,
        outputs=[{"kind": "image", "url": "https://files.test/out.png", "filename": "out.png"}],
    )
    written = DeliveryPayload.of(g).to_json()
    assert list(written) == list(STORED_PAYLOAD)  # the same keys, in the same order
    assert written == {**STORED_PAYLOAD, "shortId": short_id("g-1")}


def test_a_stored_payload_reads_back_and_writes_again_unchanged() -> None:
    payload = DeliveryPayload.from_json(STORED_PAYLOAD)
    assert (payload.status, payload.tool, payload.cost_usd, payload.outputs[0]["filename"]) == (
        "succeeded",
        "txt2img",
        "0.003370000",
        "out.png",
    )
    assert payload.to_json() == STORED_PAYLOAD
    assert DeliveryPayload.from_json(payload.to_json()) == payload


def test_an_older_payload_without_some_keys_reads_as_the_defaults() -> None:
    payload = DeliveryPayload.from_json({"status": "running", "tool": "txt2img"})
    assert payload == DeliveryPayload(status="running", tool="txt2img")
    assert payload.progress == 0.0 and payload.outputs == () and payload.short_id is None


@pytest.mark.parametrize("stored", STORED_TELEGRAM)
def test_a_telegram_target_reads_and_writes_its_stored_json_unchanged(stored: dict[str, Any]) -> None:
    target = TelegramTarget.parse(stored)
    assert target is not None and target.chat_id == stored["chat_id"]
    assert target.to_json() == stored and TelegramTarget.parse(target.to_json()) == target


@pytest.mark.parametrize("stored", STORED_DISCORD)
def test_a_discord_target_reads_and_writes_its_stored_json_unchanged(stored: dict[str, Any]) -> None:
    target = DiscordTarget.parse(stored)
    assert target is not None and target.token == "tok"
    assert target.to_json() == stored and DiscordTarget.parse(target.to_json()) == target


def test_a_discord_target_is_made_from_its_interaction() -> None:
    ix = Interaction(
        InteractionType.APPLICATION_COMMAND, id="1300000000000000000", application_id="app-1", token="tok",
        user_id="u-1", channel_id="c-1",
    )  # fmt: skip
    target = DiscordTarget.of(ix).with_image("https://cdn.discordapp.com/x.png")
    assert target.expires_at == ix.created_at + TOKEN_LIFETIME and target.size_limit == MAX_ATTACHMENT_BYTES
    assert target.to_json()["image_url"] == "https://cdn.discordapp.com/x.png" and "tok" not in repr(target)
    assert target.token_alive(ix.created_at) and not target.token_alive(target.expires_at - 1)


@pytest.mark.parametrize(
    "stored", [{}, {"chat_id": "5"}, {"chat_id": True}, {"token": "tok"}, {"webhook": "https://x.test"}]
)
def test_a_target_of_another_platform_is_no_telegram_chat(stored: dict[str, Any]) -> None:
    assert TelegramTarget.parse(stored) is None


@pytest.mark.parametrize("stored", [{}, {"token": ""}, {"token": 5}, {"chat_id": 5}])
def test_a_target_without_an_interaction_token_is_no_discord_target(stored: dict[str, Any]) -> None:
    assert DiscordTarget.parse(stored) is None
