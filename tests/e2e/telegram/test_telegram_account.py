"""Telegram: /start, /help, /tools, /status, /cancel, /link, /apikey, /account and the result buttons."""

from __future__ import annotations

from pathlib import Path

from noema.domain.accounts import Platform
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.ids import short_id
from noema.domain.linking import CodePurpose
from noema.ports import GenerationFilter
from noema.services import accounts, economy, linking
from tests.e2e.chat_harness import png_bytes, until
from tests.e2e.telegram.harness import TelegramRig, telegram_app
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_api_state import MessageKind, SentMessage

CHAT = 6001


async def _answer(rig: TelegramRig, text: str, chat: int = CHAT, **kwargs: object) -> str:
    message = await rig.say(chat, text, **kwargs)
    replies = rig.replies(chat, message["message_id"])
    assert len(replies) == 1, replies
    return replies[0].text or ""


async def test_start_and_help_explain_the_bot_with_a_real_tool_as_example(rig: TelegramRig) -> None:
    for command in ("/start", "/help"):
        text = await _answer(rig, command)
        assert "/tools" in text and "/status" in text and "Reply to a photo" in text


async def test_tools_lists_every_callable_tool_and_why_one_is_disabled(rig: TelegramRig) -> None:
    text = await _answer(rig, "/tools")
    for command in ("/txt2img", "/img2img", "/animate", "/upscale", "/caption"):
        assert command in text
    assert "/flux_pro" in text and "disabled" in text
    assert "Sandbox" in text  # the sandbox says it is one


async def test_status_shows_points_with_separators_balance_level_bar_and_live_tasks(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "12.5")
    c = rig.container
    await economy.change_exp(c.uow(), c.clock, account, 30)
    text = await _answer(rig, "/status")
    assert "37,091 points" in text  # floor(12.5 / 0.000337)
    assert "$12.50" in text
    assert "Level 3" in text and ("▰" in text or "▱" in text)
    assert "Nothing running." in text


async def test_status_lists_a_running_task_with_its_short_id(db_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    async with telegram_app(db_url, tmp_path, fake, sandbox_run_seconds=30) as rig:
        account = await rig.fund(CHAT, "1")
        await rig.say(CHAT, "/txt2img a slow one")
        (generation,) = await _live(rig, account)
        text = await _answer(rig, "/status")
        assert short_id(generation.id) in text and "/txt2img" in text and "so far" in text


async def _live(rig: TelegramRig, account: str) -> list[Generation]:
    async with rig.container.uow() as uow:
        page = await uow.generations.search(GenerationFilter(account_id=account), limit=10, cursor=None)
    return page.items


async def test_cancel_stops_the_only_running_generation_and_says_what_was_charged(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake, sandbox_run_seconds=30) as rig:
        account = await rig.fund(CHAT, "1")
        await rig.say(CHAT, "/txt2img a slow one")
        text = await _answer(rig, "/cancel")
        assert text.startswith("🛑 Cancelled /txt2img")
        (generation,) = await _live(rig, account)
        assert generation.status is GenerationStatus.CANCELLED
        balance, held = await rig.wallet(account)
        assert held == 0 and balance == 1_000_000_000 - generation.cost_nanos
        assert await _answer(rig, "/cancel") == "Nothing of yours is running right now."


async def test_cancel_with_an_unknown_short_id_says_so(rig: TelegramRig) -> None:
    text = await _answer(rig, "/cancel zzzzz")
    assert "zzzzz" in text and "/status" in text


async def test_link_gives_a_code_that_merges_with_another_platform_and_a_sign_in_link(rig: TelegramRig) -> None:
    tg_account = await rig.fund(CHAT, "2")
    text = await _answer(rig, "/link")
    code = text.split("Your link code: ")[1].split(" ")[0]
    assert len(code) == 9 and code[4] == "-"
    assert "https://noema.test/signin/link/" in text
    c = rig.container
    web = await accounts.find_or_create(c.uow, c.clock, platform=Platform.WEB, platform_id="web-user-1")
    survivor = await linking.redeem_link(c.uow(), c.clock, code, account_id=web.account.id)
    assert survivor.id == tg_account
    found = await accounts.get(c.uow(), tg_account)
    assert {i.platform for i in found.identities} == {Platform.TELEGRAM, Platform.WEB}
    assert found.account.balance_nanos == 2_000_000_000


async def test_link_with_a_code_from_another_platform_joins_this_telegram_to_it(rig: TelegramRig) -> None:
    c = rig.container
    web = await accounts.find_or_create(c.uow, c.clock, platform=Platform.WEB, platform_id="web-user-2")
    issued = await linking.issue(c.uow(), c.clock, web.account.id, CodePurpose.LINK, secrets=c.secrets, platform="web")
    text = await _answer(rig, f"/link {issued.code}")
    assert "Linked" in text
    assert await rig.account_id(CHAT) == web.account.id
    again = await _answer(rig, f"/link {issued.code}")
    assert "not valid or has expired" in again


async def test_link_with_a_malformed_code_explains_the_format(rig: TelegramRig) -> None:
    assert "like K7PQ-2MXD" in await _answer(rig, "/link nope")


async def test_apikey_in_a_private_chat_gives_a_working_key_and_in_a_group_refuses(rig: TelegramRig) -> None:
    text = await _answer(rig, "/apikey")
    key = text.split("<code>")[-1] if "<code>" in text else text.split("\n")[1]
    key = key.strip().split()[0]
    assert key.startswith("nk_")
    me = await rig.client.get("/api/v1/me/status", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    group_text = await _answer(rig, "/apikey", chat=-100777, user_id=CHAT)
    assert "private chat" in group_text and "nk_" not in group_text


async def test_account_shows_the_record_without_secrets(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    text = await _answer(rig, "/account")
    assert "Your account" in text and "telegram" in text and "$1.00" in text
    assert "nk_" not in text and rig.fake.token not in text


async def _result(rig: TelegramRig, chat: int, to: int) -> SentMessage:
    return await until(
        lambda: next((s for s in rig.replies(chat, to) if s.kind is MessageKind.PHOTO), None), what="the photo"
    )


async def test_rerun_button_runs_the_same_inputs_again_and_info_describes_the_run(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/txt2img a blue bird input_seed=7")
    photo = await _result(rig, CHAT, command["message_id"])
    (first,) = await _live(rig, account)
    await rig.press(CHAT, photo.message_id, f"info:{first.id}")
    info = next(s for s in rig.replies(CHAT, photo.message_id) if s.kind is MessageKind.TEXT)
    assert "a blue bird" in (info.text or "") and "input_seed: 7" in (info.text or "") and "Cost:" in (info.text or "")

    await rig.press(CHAT, photo.message_id, f"rerun:{first.id}")
    again = await _result(rig, CHAT, photo.message_id)
    second = next(g for g in await _live(rig, account) if g.id != first.id)
    assert second.inputs["input_text"] == "a blue bird" and second.inputs["input_seed"] == 7
    assert again.content == photo.content  # same prompt and seed: the same picture
    assert rig.fake.calls_to("answerCallbackQuery")


async def test_the_new_seed_button_runs_the_prompt_again_with_another_seed(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/txt2img a green frog input_seed=11")
    photo = await _result(rig, CHAT, command["message_id"])
    (first,) = await _live(rig, account)
    await rig.press(CHAT, photo.message_id, f"reseed:{first.id}")
    again = await _result(rig, CHAT, photo.message_id)
    second = next(g for g in await _live(rig, account) if g.id != first.id)
    assert second.inputs["input_text"] == "a green frog" and second.inputs["input_seed"] != 11
    assert again.content != photo.content


async def test_rerun_of_an_image_tool_downloads_the_same_photo_again(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    source = await rig.say(CHAT, photo=png_bytes(color="olive"))
    command = await rig.say(CHAT, "/upscale", reply_to=source["message_id"])
    photo = await _result(rig, CHAT, command["message_id"])
    (first,) = await _live(rig, account)
    await rig.press(CHAT, photo.message_id, f"rerun:{first.id}")
    again = await _result(rig, CHAT, photo.message_id)
    assert again.content == photo.content
    assert len(rig.fake.calls_to("getFile")) == 2


async def test_someone_elses_rerun_button_does_not_run_their_generation(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    group = -100555
    command = await rig.say(group, "/txt2img a cat", user_id=CHAT)
    photo = await _result(rig, group, command["message_id"])
    owner_gen = (await _live(rig, await rig.account_id(CHAT)))[0]
    await rig.press(group, photo.message_id, f"rerun:{owner_gen.id}", user_id=8888)
    answer = next(s for s in rig.replies(group, photo.message_id) if s.kind is MessageKind.TEXT)
    assert answer.text == "No such generation."
    assert len(await _live(rig, await rig.account_id(CHAT))) == 1


async def test_info_names_the_loras_a_trigger_word_applied_and_the_warnings(rig: TelegramRig) -> None:
    from noema.domain.loras import Family, Lora
    from noema.domain.loras import Visibility as LoraVisibility

    await rig.container.loras.save(
        Lora(
            slug="origami",
            display_name="Origami",
            triggers=("origami",),
            cognates=(),
            default_weight=0.7,
            family=Family.SDXL,
            owner_id=None,
            visibility=LoraVisibility.PUBLIC,
        )
    )
    account = await rig.fund(CHAT, "1")
    command = await rig.say(CHAT, "/txt2img an origami crane <lora:ghost:1>")
    photo = await _result(rig, CHAT, command["message_id"])
    (generation,) = await _live(rig, account)
    assert generation.inputs["input_text"].startswith("an <lora:origami:0.7> origami crane")
    await rig.press(CHAT, photo.message_id, f"info:{generation.id}")
    info = next(s for s in rig.replies(CHAT, photo.message_id) if s.kind is MessageKind.TEXT)
    assert "LoRAs: origami (0.7)" in (info.text or "")
    assert "⚠️" in (info.text or "") and "ghost" in (info.text or "")
