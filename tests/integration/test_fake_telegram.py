"""The fake Bot API server behaves like Telegram for python-telegram-bot's real ``telegram.Bot`` over HTTP."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, Conflict, RetryAfter

from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_api_state import MessageKind

CHAT = 4242


def png(width: int = 400, height: int = 300, color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def gif() -> bytes:
    frames = [Image.new("RGB", (64, 48), color) for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=500, loop=0)
    return buffer.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with fake.bot() as ptb_bot:
        yield ptb_bot


async def test_get_me_answers_the_bot_user(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.username, me.is_bot) == (123456, "noema_test_bot", True)
    assert me.can_join_groups is True
    assert all(call.ok for call in fake.calls_to("getMe"))


async def test_send_message_parses_html_and_replies_to_the_user(fake: FakeTelegram, bot: Bot) -> None:
    asked = fake.user_message(CHAT, "/start@noema_test_bot hello")["message"]

    sent = await bot.send_message(
        CHAT,
        "😀 <b>bold</b> &amp; <a href='https://example.com'>link</a>",
        parse_mode="HTML",
        reply_parameters=ReplyParameters(asked["message_id"]),
    )

    assert sent.text == "😀 bold & link"
    assert sent.entities == (
        MessageEntity(MessageEntity.BOLD, offset=3, length=4),
        MessageEntity(MessageEntity.TEXT_LINK, offset=10, length=4, url="https://example.com"),
    )
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.message_id == asked["message_id"]
    assert sent.message_id == asked["message_id"] + 1
    [record] = fake.sent_to(CHAT)
    assert record.reply_to_message_id == asked["message_id"]
    assert fake.calls_to("sendMessage")[0].params["reply_parameters"] == {"message_id": asked["message_id"]}


async def test_edit_changes_the_text_and_the_same_edit_is_refused(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "queued")

    edited = await bot.edit_message_text("running 50%", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("running 50%", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("lost", chat_id=CHAT, message_id=999)

    assert isinstance(edited, Message)  # True comes back only for an inline message
    assert (edited.text, edited.edit_date is not None) == ("running 50%", True)
    [record] = fake.sent_to(CHAT)
    assert record.text == "running 50%"
    assert [old["text"] for old in record.history] == ["queued"]
    refused = fake.calls_to("editMessageText")[1]
    assert (refused.status, refused.response["description"]) == (
        400,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the "
        "same as a content and reply markup of the current message",
    )


async def test_uploaded_photo_downloads_with_the_same_bytes(fake: FakeTelegram, bot: Bot) -> None:
    original = png(1600, 900)

    message = await bot.send_photo(CHAT, original, caption="<i>done</i>", parse_mode="HTML")
    file = await message.photo[-1].get_file()
    downloaded = await file.download_as_bytearray()

    assert [(size.width, size.height) for size in message.photo] == [
        (90, 51),
        (320, 180),
        (800, 450),
        (1280, 720),
        (1600, 900),
    ]
    assert message.caption == "done"
    assert message.caption_entities[0].type == MessageEntity.ITALIC
    assert file.file_path is not None and file.file_path.startswith(f"{fake.url}/file/bot{fake.token}/photos/")
    assert bytes(downloaded) == original
    assert fake.sent_to(CHAT)[0].content == original


async def test_send_animation_of_a_gif_shows_animation_and_document(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_animation(CHAT, gif(), filename="result.gif")

    assert message.animation is not None and message.document is not None
    assert message.document.file_id == message.animation.file_id
    assert (message.animation.width, message.animation.height) == (64, 48)
    assert message.animation.mime_type == "image/gif"
    [record] = fake.sent_to(CHAT)
    assert (record.kind, record.media["duration"], record.file_name) == (MessageKind.ANIMATION, 2, "result.gif")


async def test_media_group_of_three_photos_is_one_album(fake: FakeTelegram, bot: Bot) -> None:
    colors = ("red", "green", "blue")

    messages = await bot.send_media_group(CHAT, [InputMediaPhoto(png(color=color), caption=color) for color in colors])

    assert len(messages) == 3
    assert len({message.media_group_id for message in messages}) == 1 and messages[0].media_group_id
    assert [message.caption for message in messages] == list(colors)
    assert [message.message_id for message in messages] == [1, 2, 3]
    assert all(record.kind is MessageKind.MEDIA_GROUP for record in fake.sent_to(CHAT))
    [call] = fake.calls_to("sendMediaGroup")
    assert [item["media"].removeprefix("attach://") for item in call.params["media"]] == list(call.files)


async def test_more_than_100_commands_are_refused_and_the_menu_stays(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])

    with pytest.raises(BadRequest, match=r"(?i)bot_commands_too_much"):
        await bot.set_my_commands([BotCommand(f"tool_{n}", f"Tool {n}") for n in range(101)])
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Upper", "Capitals are refused")])

    assert [command.command for command in await bot.get_my_commands()] == ["start", "help"]
    assert fake.calls_to("setMyCommands")[1].response["description"] == "Bad Request: BOT_COMMANDS_TOO_MUCH"


async def test_get_updates_returns_a_user_photo_as_an_update(fake: FakeTelegram, bot: Bot) -> None:
    photo = png(640, 480)
    made = fake.user_message(-1001234567890, photo=photo, caption="/upscale@noema_test_bot x2", user_id=77)

    [update] = await bot.get_updates(timeout=1)

    assert isinstance(update, Update) and update.update_id == made["update_id"]
    message = update.effective_message
    assert message is not None and message.from_user is not None
    assert (message.from_user.id, message.chat.type) == (77, "supergroup")
    assert (message.photo[-1].width, message.photo[-1].height) == (640, 480)
    assert message.caption_entities[0].type == MessageEntity.BOT_COMMAND
    downloaded = await (await bot.get_file(message.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == photo
    assert await bot.get_updates(offset=update.update_id + 1) == ()


async def test_a_long_poll_wakes_up_for_a_new_update(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.sleep(0.2)
    fake.user_message(CHAT, "hello")

    updates = await asyncio.wait_for(poll, timeout=5)

    [update] = updates
    assert update.message is not None and update.message.text == "hello"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # int retry_after is deprecated
async def test_fail_next_429_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", retry_after=7)

    with pytest.raises(RetryAfter) as refused:
        await bot.send_message(CHAT, "first try")
    retried = await bot.send_message(CHAT, "second try")

    delay = refused.value.retry_after
    assert (delay.total_seconds() if isinstance(delay, timedelta) else delay) == 7
    assert [call.status for call in fake.calls_to("sendMessage")] == [429, 200]
    assert fake.calls_to("sendMessage")[0].response["parameters"] == {"retry_after": 7}
    assert [record.text for record in fake.sent_to(CHAT)] == [retried.text] == ["second try"]


async def test_get_updates_conflicts_with_an_active_webhook(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.set_webhook("https://noema.example/telegram/webhook", secret_token="s3cret") is True

    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates()
    info = await bot.get_webhook_info()
    assert info.url == "https://noema.example/telegram/webhook"
    assert fake.webhook_headers()["X-Telegram-Bot-Api-Secret-Token"] == "s3cret"
    assert fake.calls_to("setWebhook")[0].response["description"] == "Webhook was set"
    assert fake.calls_to("getUpdates")[0].status == 409

    assert await bot.delete_webhook() is True
    assert await bot.get_updates() == ()


async def test_inline_button_press_is_answered_once(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data="cancel:1")]])
    sent = await bot.send_message(CHAT, "running", reply_markup=keyboard)
    fake.callback_query(CHAT, sent.message_id, "cancel:1")

    [update] = await bot.get_updates()
    query = update.callback_query
    assert query is not None and query.message is not None
    assert query.data == "cancel:1"
    assert query.message.message_id == sent.message_id
    assert await query.answer("Cancelled") is True
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer("again")
    with pytest.raises(ValueError, match="no inline button"):
        fake.callback_query(CHAT, sent.message_id, "forged")


async def test_files_over_20_mb_cannot_be_fetched(fake: FakeTelegram, bot: Bot) -> None:
    big = fake.user_message(CHAT, document=("big.bin", bytes(20 * 1024 * 1024 + 1), "application/octet-stream"))

    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(big["message"]["document"]["file_id"])


async def test_wrong_token_unknown_method_and_unknown_file_path(fake: FakeTelegram) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        wrong = await client.post("/bot999:wrong-token/getMe")
        unknown = await client.post(f"/bot{fake.token}/getSomethingElse")
        missing = await client.get(f"/file/bot{fake.token}/photos/nothing.jpg")

    assert (wrong.status_code, wrong.json()) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    assert (unknown.status_code, unknown.json()) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    assert missing.status_code == 404
    assert [call.status for call in fake.calls] == [401, 404]
