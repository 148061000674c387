"""Telegram: running tools from a chat, from the command to the result, through the fake Bot API."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from PIL import Image

from noema.adapters.platforms.telegram.handlers import BUILTINS
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.ids import short_id
from noema.domain.money import display_usd
from noema.ports import GenerationFilter
from tests.e2e.chat_harness import png_bytes, until
from tests.e2e.telegram.harness import SECRET, TelegramRig, telegram_app
from tests.fakes.sandbox_catalog import copy_of, publish
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_api_state import MessageKind, SentMessage

CHAT = 5001  # a private chat: the chat id is the user's id


def _media(rig: TelegramRig, chat: int, to: int, kind: MessageKind) -> SentMessage | None:
    return next((s for s in rig.replies(chat, to) if s.kind is kind), None)


async def _generations(rig: TelegramRig, account_id: str) -> list[Generation]:
    async with rig.container.uow() as uow:
        page = await uow.generations.search(GenerationFilter(account_id=account_id), limit=50, cursor=None)
    return page.items


async def test_startup_registers_the_webhook_with_the_secret_and_publishes_the_menu(rig: TelegramRig) -> None:
    webhook = rig.fake.state.webhook
    assert webhook.url == "https://noema.test/api/webhook/telegram"
    assert webhook.secret_token == SECRET
    menu = rig.fake.calls_to("setMyCommands")[-1].params["commands"]
    names = [c["command"] for c in menu]
    assert names[:3] == ["start", "help", "tools"] and "txt2img" in names and "img2img" in names
    assert "flux_pro" not in names  # the tool on an unpriced GPU is disabled, so not offered in the menu
    assert len(names) <= 100


async def test_txt2img_acknowledges_shows_progress_and_replies_with_the_photo_and_charges_once(
    rig: TelegramRig,
) -> None:
    account = await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/txt2img a red fox in the snow")
    ack = rig.replies(CHAT, command["message_id"])[0]
    assert ack.kind is MessageKind.TEXT and "/txt2img received" in (ack.text or "")

    photo = await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.PHOTO), what="the photo")
    assert photo.content is not None and Image.open(io.BytesIO(photo.content)).format == "PNG"
    (generation,) = await _generations(rig, account)
    assert generation.status is GenerationStatus.SUCCEEDED
    caption = photo.caption or ""
    assert "/txt2img" in caption and short_id(generation.id) in caption
    assert display_usd(generation.cost_nanos) in caption
    buttons = [b["callback_data"] for row in (photo.reply_markup or {})["inline_keyboard"] for b in row]
    assert buttons == [f"rerun:{generation.id}", f"reseed:{generation.id}", f"info:{generation.id}"]
    # The acknowledgement is the progress message: it ends as the summary.
    await until(lambda: (ack.text or "").startswith("✅ /txt2img"), what="the summary")
    assert await rig.wallet(account) == (1_000_000_000 - generation.cost_nanos, 0)
    assert generation.cost_nanos > 0
    # Exactly one photo for the one command.
    assert [s.kind for s in rig.replies(CHAT, command["message_id"])].count(MessageKind.PHOTO) == 1


async def test_progress_is_one_message_edited_at_most_every_three_seconds(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake, sandbox_run_seconds=8) as rig:
        await rig.fund(CHAT, "1")
        command = await rig.say(CHAT, "/txt2img a slow sunrise")
        ack = rig.replies(CHAT, command["message_id"])[0]
        await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.PHOTO), seconds=30, what="result")
        edits = [c for c in fake.calls_to("editMessageText") if c.params.get("message_id") == ack.message_id]
        texts = [str(c.params.get("text")) for c in edits]
        assert any("%" in t and "Running" in t for t in texts), texts
        progress_edits = [c.time for c in edits if not str(c.params.get("text")).startswith("✅")]
        gaps = [b - a for a, b in itertools.pairwise(progress_edits)]
        assert all(gap >= 2.9 for gap in gaps), gaps
        assert len(rig.replies(CHAT, command["message_id"])) == 2  # the progress message and the photo


async def test_img2img_replying_to_a_photo_uploads_the_image_without_the_bot_token(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    photo = await rig.say(CHAT, photo=png_bytes(color="navy"))
    command = await rig.say(CHAT, "/img2img make it a watercolor", reply_to=photo["message_id"])

    result = await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.PHOTO), what="the result")
    assert result.content and Image.open(io.BytesIO(result.content)).format == "PNG"
    assert rig.fake.calls_to("getFile"), "the image was fetched through the Bot API"
    (generation,) = await _generations(rig, account)
    assert generation.status is GenerationStatus.SUCCEEDED
    sent = str(generation.inputs)
    assert rig.fake.token not in sent and "/file/bot" not in sent and rig.fake.url not in sent
    assert any(str(v).startswith("https://noema.test/sandbox/") for v in generation.inputs.values())


async def test_a_photo_whose_caption_is_the_command_is_the_image_input(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, photo=png_bytes(), caption="/upscale")
    result = await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.PHOTO), what="the upscale")
    assert result.media[-1]["width"] > 320


async def test_an_image_sent_as_a_document_is_taken_too(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    document = await rig.say(CHAT, document=("scan.png", png_bytes(), "image/png"))
    command = await rig.say(CHAT, "/upscale", reply_to=document["message_id"])
    await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.PHOTO), what="the upscale")


async def test_animate_arrives_as_an_animation(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/animate a spinning top")
    animation = await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.ANIMATION), what="the GIF")
    assert animation.content and Image.open(io.BytesIO(animation.content)).format == "GIF"
    assert animation.mime_type == "image/gif"


async def test_caption_tool_answers_with_its_text_output(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    photo = await rig.say(CHAT, photo=png_bytes(color="red"))
    command = await rig.say(CHAT, "/caption", reply_to=photo["message_id"])

    def text_result() -> SentMessage | None:
        return next(
            (s for s in rig.replies(CHAT, command["message_id"]) if "✅" in (s.text or "") and s.history == []), None
        )

    answer = await until(text_result, what="the caption text")
    assert "/caption" in (answer.text or "") and len(answer.text or "") > 30
    assert answer.reply_markup is not None


async def test_a_tool_that_needs_an_image_without_one_says_what_to_send(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/img2img a watercolor")
    (answer,) = rig.replies(CHAT, command["message_id"])
    assert "needs an image" in (answer.text or "") and "reply to a photo" in (answer.text or "")
    assert await _generations(rig, account) == []
    assert await rig.wallet(account) == (1_000_000_000, 0)


async def test_a_text_tool_without_a_prompt_says_to_write_one_with_an_example(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/txt2img")
    (answer,) = rig.replies(CHAT, command["message_id"])
    assert "needs a prompt" in (answer.text or "") and "Example: /txt2img a red fox" in (answer.text or "")


async def test_a_non_image_file_is_refused_with_a_reason_and_nothing_is_held(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    document = await rig.say(CHAT, document=("notes.png", b"not an image at all", "image/png"))
    command = await rig.say(CHAT, "/upscale", reply_to=document["message_id"])
    (answer,) = rig.replies(CHAT, command["message_id"])
    assert "not an image" in (answer.text or "")
    assert await rig.wallet(account) == (1_000_000_000, 0)


async def test_an_option_out_of_range_is_explained_and_nothing_is_held(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/txt2img a fox width=99999")
    await until(lambda: "must be" in (rig.replies(CHAT, command["message_id"])[0].text or ""), what="the refusal")
    assert await rig.wallet(account) == (1_000_000_000, 0)
    assert await _generations(rig, account) == []


@pytest.mark.parametrize("steps", ["99999999", "-5", "1000000000000"])
async def test_steps_out_of_range_are_refused_naming_the_bounds(rig: TelegramRig, steps: str) -> None:
    account = await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, f"/txt2img a fox steps={steps}")
    (answer,) = rig.replies(CHAT, command["message_id"])
    assert "must be between 1 and 100" in (answer.text or "")
    assert await rig.wallet(account) == (1_000_000_000, 0)
    assert await _generations(rig, account) == []


async def test_insufficient_funds_says_the_balance_the_estimate_and_how_to_add_funds(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "0")
    command = await rig.say(CHAT, "/txt2img a fox")
    (answer,) = rig.replies(CHAT, command["message_id"])
    text = answer.text or ""
    assert "Your balance is $0.00" in text and "estimated at $" in text and "Add funds" in text
    assert await _generations(rig, account) == []


async def test_a_disabled_tool_says_why(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/flux_pro a castle")
    (answer,) = rig.replies(CHAT, command["message_id"])
    assert "price" in (answer.text or "").lower() or "disabled" in (answer.text or "").lower()


async def test_an_unknown_command_in_a_private_chat_points_to_tools(rig: TelegramRig) -> None:
    command = await rig.say(CHAT, "/nosuchtool hello")
    (answer,) = rig.replies(CHAT, command["message_id"])
    assert "/nosuchtool" in (answer.text or "") and "/tools" in (answer.text or "")


async def test_in_a_group_commands_work_with_our_botname_and_others_are_ignored(rig: TelegramRig) -> None:
    group, user = -100123, 7007
    await rig.fund(user, "1")
    ours = await rig.say(group, f"/txt2img@{rig.fake.bot_username} a lighthouse", user_id=user)
    theirs = await rig.say(group, "/txt2img@some_other_bot a lighthouse", user_id=user)
    unknown = await rig.say(group, "/nosuchtool hi", user_id=user)
    await until(lambda: _media(rig, group, ours["message_id"], MessageKind.PHOTO), what="the group result")
    assert rig.replies(group, theirs["message_id"]) == []
    assert rig.replies(group, unknown["message_id"]) == []


async def test_the_menu_is_published_again_when_the_catalog_changes(rig: TelegramRig) -> None:
    from noema.domain.tools import ToolOverride

    catalog = rig.container.catalog
    before = len(rig.fake.calls_to("setMyCommands"))
    catalog.overrides["txt2img"] = ToolOverride(command="imagine", priority=50)
    await catalog.refresh()
    await until(lambda: len(rig.fake.calls_to("setMyCommands")) > before, what="the new menu")
    names = [c["command"] for c in rig.fake.calls_to("setMyCommands")[-1].params["commands"]]
    assert "imagine" in names and "txt2img" not in names
    assert names.index("imagine") == len(BUILTINS)  # right after the built-in commands: the highest priority
    await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/imagine a renamed fox")
    await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.PHOTO), what="the renamed tool's photo")


def _sandbox_with_many_tools(rig: TelegramRig, extra: int) -> None:
    """The sandbox backend deploys ``extra`` more copies of txt2img."""
    sandbox = rig.container.sandbox
    assert sandbox is not None
    publish(sandbox, *(copy_of(sandbox, "txt2img", as_name=f"style-{i:03d}") for i in range(extra)))


async def test_with_more_than_100_tools_the_menu_holds_100_commands_and_every_tool_stays_callable(
    rig: TelegramRig,
) -> None:
    _sandbox_with_many_tools(rig, 120)
    await rig.container.catalog.refresh()
    await until(lambda: len(rig.fake.calls_to("setMyCommands")[-1].params["commands"]) == 100, what="a full menu")
    names = [c["command"] for c in rig.fake.calls_to("setMyCommands")[-1].params["commands"]]
    assert len(set(names)) == 100
    tools = [t.command for t in await rig.container.catalog.tools()]
    left_out = sorted(t for t in set(tools) - set(names) if t.startswith("style_"))
    assert len(left_out) > 20
    await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, f"/{left_out[-1]} a tool not in the menu")
    await until(lambda: _media(rig, CHAT, command["message_id"], MessageKind.PHOTO), what="the unlisted tool's photo")
    listing = await rig.say(CHAT, "/tools")
    pages = [r.text or "" for r in rig.replies(CHAT, listing["message_id"])]
    assert len(pages) >= 2 and all(len(p) <= 4096 for p in pages)  # too long for one message
    everything = "\n".join(pages)
    assert all(f"/{name}" in everything for name in tools)


async def test_a_30_mb_image_is_refused_with_the_limit_and_nothing_is_held(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    big = b"\x89PNG\r\n\x1a\n" + bytes(30 * 1024 * 1024)
    document = await rig.say(CHAT, document=("huge.png", big, "image/png"))
    command = await rig.say(CHAT, "/upscale", reply_to=document["message_id"])
    (answer,) = rig.replies(CHAT, command["message_id"])
    assert "larger than 20 MB" in (answer.text or "")
    assert await rig.wallet(account) == (1_000_000_000, 0)
    assert await _generations(rig, account) == []


async def test_a_failed_run_says_why_in_plain_words_and_that_nothing_was_charged(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake, sandbox_faults="run_fail=1.0") as rig:
        account = await rig.fund(CHAT, "1")
        command = await rig.say(CHAT, "/txt2img a doomed painting")
        ack = rig.replies(CHAT, command["message_id"])[0]
        await until(lambda: (ack.text or "").startswith("❌ Failed"), what="the failure message")
        assert "Nothing was charged." in (ack.text or "")
        assert "[object Object]" not in (ack.text or "") and len((ack.text or "").splitlines()) == 3
        (generation,) = await _generations(rig, account)
        assert generation.status is GenerationStatus.FAILED and generation.failure_reason
        assert generation.failure_reason[:40] in (ack.text or "")
        assert await rig.wallet(account) == (1_000_000_000, 0)
        assert [s.kind for s in rig.replies(CHAT, command["message_id"])] == [MessageKind.TEXT]


async def test_a_backend_that_refuses_the_submit_fails_the_run_and_releases_the_hold(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake, sandbox_faults="submit_error=1.0") as rig:
        account = await rig.fund(CHAT, "1")
        command = await rig.say(CHAT, "/txt2img a refused request")
        ack = rig.replies(CHAT, command["message_id"])[0]
        await until(lambda: (ack.text or "").startswith("❌ Failed"), seconds=30, what="the failure message")
        assert "could not start the run" in (ack.text or "") and "Nothing was charged." in (ack.text or "")
        assert await rig.wallet(account) == (1_000_000_000, 0)


async def test_a_preset_is_a_command_and_a_feature_takes_the_photo_replied_to(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    presets = tmp_path / "presets.toml"
    presets.write_text(
        '[presets.make]\ntools = ["txt2img"]\ndefaults = { steps = 31 }\n'
        '[presets.make.features]\nstyle = "input_image"\n[presets.make.variants]\nstyle = ["img2img"]\n'
    )
    async with telegram_app(db_url, tmp_path, fake, presets_file=str(presets)) as rig:
        account = await rig.fund(CHAT, "1")
        plain = await rig.say(CHAT, "/make a harbour at dawn")
        await until(lambda: _media(rig, CHAT, plain["message_id"], MessageKind.PHOTO), what="the preset's photo")
        photo = await rig.say(CHAT, photo=png_bytes(color="maroon"))
        styled = await rig.say(CHAT, "/make +style a harbour", reply_to=photo["message_id"])
        await until(lambda: _media(rig, CHAT, styled["message_id"], MessageKind.PHOTO), what="the variant's photo")
        runs = {g.tool_command: g for g in await _generations(rig, account)}
        assert set(runs) == {"txt2img", "img2img"}
        assert runs["txt2img"].inputs["steps"] == 31 and runs["img2img"].inputs["input_text"] == "a harbour"
        unknown = await rig.say(CHAT, "/make +canny a harbour")
        assert "no feature 'canny'" in (rig.replies(CHAT, unknown["message_id"])[0].text or "")
        lonely = await rig.say(CHAT, "/make +style a harbour")
        assert "needs an image" in (rig.replies(CHAT, lonely["message_id"])[0].text or "")
