"""Discord: running tools from slash commands, from the deferred answer to the result in the original response."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from PIL import Image

from noema.domain.generation import GenerationStatus
from noema.domain.ids import short_id
from noema.domain.inputs import MAX_UPLOAD_BYTES
from noema.domain.money import display_usd
from tests.e2e.chat_harness import png_bytes, until
from tests.e2e.discord.harness import DiscordRig, discord_app
from tests.fakes.discord_api import FakeDiscord


def _prompt(text: str) -> list[dict[str, Any]]:
    return [{"name": "prompt", "value": text}]


def _done(rig: DiscordRig, hit: dict[str, Any]) -> dict[str, Any] | None:
    """The original response once it shows the result (or a failure)."""
    original = rig.fake.original(hit)
    titles = [e.get("title", "") for e in (original or {}).get("embeds", [])]
    return original if any(t.startswith(("✅", "❌", "🛑", "⌛")) for t in titles) else None


async def _result(rig: DiscordRig, hit: dict[str, Any], seconds: float = 20) -> dict[str, Any]:
    return await until(lambda: _done(rig, hit), seconds=seconds, what="the result")


def _file_patches(rig: DiscordRig, hit: dict[str, Any]) -> list[Any]:
    return [c for c in rig.fake.calls_to("PATCH", hit["token"]) if c.files]


async def test_txt2img_is_deferred_at_once_then_answered_with_the_png_in_an_embed_with_cost_id_and_buttons(
    rig: DiscordRig,
) -> None:
    account = await rig.fund("1")
    hit = rig.fake.slash("txt2img", _prompt("a red fox in the snow"))
    started = time.monotonic()
    response = await rig.post(hit)
    assert time.monotonic() - started < 3.0 and response.json() == {"type": 5}  # deferred, in time
    assert rig.fake.state_of(hit).deferred is True
    message = await _result(rig, hit)
    (generation,) = await rig.generations(account)
    assert generation.status is GenerationStatus.SUCCEEDED and generation.cost_nanos > 0
    (attachment,) = message["attachments"]
    assert Image.open(io.BytesIO(rig.fake.file_bytes(attachment))).format == "PNG"
    (embed,) = message["embeds"]
    assert embed["title"] == "✅ /txt2img"
    assert (
        display_usd(generation.cost_nanos) in embed["description"] and short_id(generation.id) in embed["description"]
    )
    assert embed["image"]["url"] == attachment["url"]  # the picture is shown in the embed
    buttons = [b["custom_id"] for row in message["components"] for b in row["components"]]
    assert buttons == [f"rerun:{generation.id}", f"info:{generation.id}"]
    assert not message["flags"] & 64  # a result is for the channel to see
    assert await rig.wallet(account) == (1_000_000_000 - generation.cost_nanos, 0)
    assert len(_file_patches(rig, hit)) == 1 and rig.fake.followups(hit) == []


async def test_run_with_a_tool_prompt_options_and_typed_options_passes_them_as_inputs(rig: DiscordRig) -> None:
    account = await rig.fund("1")
    hit = await rig.slash("run", [{"name": "tool", "value": "txt2img"}, *_prompt("a lighthouse steps=12 input_seed=7")])
    await rig.slash("txt2img", [*_prompt("a barn"), {"name": "width", "value": 768}])
    first, second = sorted(await rig.generations(account), key=lambda g: g.requested_at)
    assert (first.inputs["input_text"], first.inputs["steps"], first.inputs["input_seed"]) == ("a lighthouse", 12, 7)
    assert (second.inputs["input_text"], second.inputs["width"]) == ("a barn", 768)
    assert first.idempotency_key == f"discord:{hit['id']}"


async def test_img2img_downloads_the_attachment_uploads_it_without_any_discord_url_and_rerun_fetches_it_again(
    rig: DiscordRig,
) -> None:
    account = await rig.fund("1")
    upload = rig.fake.attachment_url("my photo.png", png_bytes(color="navy"), "image/png")
    hit = await rig.slash("img2img", _prompt("make it a watercolor"), attachments={"image": upload})
    message = await _result(rig, hit)
    assert message["attachments"] and message["embeds"][0]["title"] == "✅ /img2img"
    assert [c.status for c in rig.fake.calls_to("GET", f"/attachments/{upload['id']}/")] == [200]
    (generation,) = await rig.generations(account)
    sent = str(generation.inputs)
    assert rig.fake.root not in sent and "discord" not in sent.lower()
    assert str(generation.inputs["input_image"]).startswith("https://noema.test/sandbox/")
    again = await rig.press(f"rerun:{generation.id}", message)
    await _result(rig, again)
    assert len(rig.fake.calls_to("GET", f"/attachments/{upload['id']}/")) == 2
    second = next(g for g in await rig.generations(account) if g.id != generation.id)
    assert second.status is GenerationStatus.SUCCEEDED and rig.fake.root not in str(second.inputs)


async def test_an_oversize_attachment_is_refused_in_plain_words_and_nothing_is_fetched_or_held(
    rig: DiscordRig,
) -> None:
    account = await rig.fund("1")
    upload = rig.fake.attachment_url("huge.png", b"\0" * (MAX_UPLOAD_BYTES + 1), "image/png")
    hit = await rig.slash("upscale", attachments={"image": upload})
    original = rig.fake.original(hit)
    assert original is not None and original["flags"] & 64 and "larger than 20 MB" in original["content"]
    assert rig.fake.calls_to("GET", f"/attachments/{upload['id']}/") == []
    assert await rig.generations(account) == [] and await rig.wallet(account) == (1_000_000_000, 0)


async def test_a_file_that_is_not_an_image_is_refused_privately(rig: DiscordRig) -> None:
    account = await rig.fund("1")
    declared = rig.fake.attachment_url("notes.txt", b"hello", "text/plain")
    hit = await rig.slash("upscale", attachments={"image": declared})
    assert "not an image" in rig.reply_text(hit)
    disguised = rig.fake.attachment_url("fake.png", b"not a picture at all", "image/png")
    hit = await rig.slash("upscale", attachments={"image": disguised})
    (answer,) = rig.fake.followups(hit)
    assert answer["flags"] & 64 and "not an image" in answer["content"]
    assert rig.fake.original(hit) is None  # the public "thinking…" message was removed
    assert await rig.generations(account) == []


async def test_animate_answers_with_a_gif_attachment(rig: DiscordRig) -> None:
    await rig.fund("1")
    hit = await rig.slash("animate", _prompt("a spinning top"))
    message = await _result(rig, hit)
    (attachment,) = message["attachments"]
    assert attachment["filename"].endswith(".gif") and attachment["content_type"] == "image/gif"
    assert Image.open(io.BytesIO(rig.fake.file_bytes(attachment))).format == "GIF"
    assert message["embeds"][0]["image"]["url"] == attachment["url"]


async def test_caption_answers_with_its_text_output_as_text(rig: DiscordRig) -> None:
    await rig.fund("1")
    upload = rig.fake.attachment_url("red.png", png_bytes(color="red"), "image/png")
    hit = await rig.slash("caption", attachments={"image": upload})
    message = await _result(rig, hit)
    assert len(message["content"]) > 30 and message["attachments"] == []
    assert message["embeds"][0]["title"] == "✅ /caption" and message["components"]


async def test_what_is_missing_or_disabled_is_said_at_once_and_privately(rig: DiscordRig) -> None:
    account = await rig.fund("1")
    cases = {
        "img2img": ("img2img", _prompt("a watercolor"), "needs an image"),
        "run-no-prompt": ("run", [{"name": "tool", "value": "txt2img"}], "needs a prompt"),
        "disabled": ("run", [{"name": "tool", "value": "flux_pro"}, *_prompt("a castle")], "price"),
        "unknown tool": ("run", [{"name": "tool", "value": "nope"}], "no tool called 'nope'"),
        "image for txt2img": ("txt2img", _prompt("x"), "does not take an image"),
    }
    upload = rig.fake.attachment_url("a.png", png_bytes(), "image/png")
    for label, (name, options, words) in cases.items():
        attachments = {"image": upload} if label == "image for txt2img" else None
        hit = await rig.slash(name, options, attachments=attachments)
        original = rig.fake.original(hit)
        assert original is not None and original["flags"] & 64, label
        assert words in original["content"].lower() or words in original["content"], (label, original["content"])
    assert await rig.generations(account) == []


async def test_insufficient_funds_is_told_privately_with_the_balance_and_estimate(rig: DiscordRig) -> None:
    account = await rig.fund("0")
    hit = await rig.slash("txt2img", _prompt("a fox"))
    (answer,) = rig.fake.followups(hit)
    assert answer["flags"] & 64
    assert "Your balance is $0.00" in answer["content"] and "estimated at $" in answer["content"]
    assert "Add funds" in answer["content"]
    assert await rig.generations(account) == []


async def test_an_input_out_of_range_is_explained_and_nothing_is_held(rig: DiscordRig) -> None:
    account = await rig.fund("1")
    hit = await rig.slash("txt2img", _prompt("a fox width=99999"))
    assert "must be between" in rig.reply_text(hit)
    assert await rig.wallet(account) == (1_000_000_000, 0)


async def test_steps_out_of_range_as_typed_text_or_an_option_are_refused_naming_the_bounds(rig: DiscordRig) -> None:
    account = await rig.fund("1")
    steps = {o["name"]: o for o in rig.fake.commands[(None, "txt2img")]["options"]}["steps"]
    assert (steps["type"], steps["min_value"], steps["max_value"]) == (4, 1, 100)
    typed = await rig.slash("txt2img", _prompt("a fox steps=99999999"))
    # Discord enforces min/max in its client; a crafted interaction past them still meets Noema's check.
    option = await rig.slash("txt2img", [*_prompt("a fox"), {"name": "steps", "value": -5}])
    for hit in (typed, option):
        assert "must be between 1 and 100" in rig.reply_text(hit)
    assert await rig.wallet(account) == (1_000_000_000, 0)
    assert await rig.generations(account) == []


async def test_a_result_file_over_the_channels_upload_limit_is_named_with_where_to_find_it(rig: DiscordRig) -> None:
    await rig.fund("1")
    hit = rig.fake.slash("txt2img", _prompt("a big picture"))
    hit["attachment_size_limit"] = 1024  # a channel that takes only tiny files
    assert (await rig.post(hit)).json() == {"type": 5}
    await rig.discord.idle()
    message = await _result(rig, hit)
    assert message["attachments"] == [] and "image" not in message["embeds"][0]
    assert "over Discord's 1 KB limit" in message["embeds"][0]["description"]
    assert "https://noema.test/app" in message["embeds"][0]["description"]


async def test_a_failed_run_says_why_in_the_original_and_that_nothing_was_charged(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, sandbox_faults="run_fail=1") as rig:
        account = await rig.fund("1")
        hit = await rig.slash("txt2img", _prompt("a doomed fox"))
        message = await _result(rig, hit)
        (embed,) = message["embeds"]
        (generation,) = await rig.generations(account)
        assert embed["title"] == "❌ Failed · /txt2img" and short_id(generation.id) in embed["footer"]["text"]
        assert "CUDA out of memory" in embed["description"]
        charged = "Nothing was charged." if not generation.cost_nanos else display_usd(generation.cost_nanos)
        assert charged in embed["description"]
        assert await rig.wallet(account) == (1_000_000_000 - generation.cost_nanos, 0)
        assert message["components"] == [] and message["attachments"] == []
