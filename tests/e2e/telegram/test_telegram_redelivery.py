"""Telegram sends an update again when it missed our answer to its POST: Noema answers it only once."""

from __future__ import annotations

from noema.ports import GenerationFilter
from tests.e2e.chat_harness import until
from tests.e2e.telegram.harness import TelegramRig
from tests.fakes.telegram_api_state import MessageKind

CHAT = 6101


async def _deliver_twice(rig: TelegramRig, update: dict[str, object]) -> None:
    for _ in range(2):
        response = await rig.post(update)
        assert response.status_code == 200, response.text


async def test_a_command_delivered_again_after_it_was_answered_sends_nothing_again(rig: TelegramRig) -> None:
    update = rig.fake.user_message(CHAT, "/help")
    await _deliver_twice(rig, update)
    assert len(rig.fake.sent_to(CHAT)) == 1


async def test_a_tool_run_delivered_again_is_acknowledged_and_delivered_once(rig: TelegramRig) -> None:
    account = await rig.fund(CHAT, "1")
    update = rig.fake.user_message(CHAT, "/txt2img a lighthouse")
    await _deliver_twice(rig, update)
    photo = await until(
        lambda: next((s for s in rig.fake.sent_to(CHAT) if s.kind is MessageKind.PHOTO), None), what="the result"
    )
    await _deliver_twice(rig, update)  # and again, after the result
    kinds = [s.kind for s in rig.fake.sent_to(CHAT)]
    assert kinds == [MessageKind.TEXT, MessageKind.PHOTO], kinds  # one acknowledgement, one result
    assert photo.reply_to_message_id == update["message"]["message_id"]
    async with rig.container.uow() as uow:
        page = await uow.generations.search(GenerationFilter(account_id=account), limit=10, cursor=None)
    assert len(page.items) == 1


async def test_a_button_press_delivered_again_is_answered_once(rig: TelegramRig) -> None:
    await rig.fund(CHAT, "1")
    first = rig.fake.user_message(CHAT, "/status")
    await _deliver_twice(rig, first)
    (status,) = rig.fake.sent_to(CHAT)
    press = rig.fake.callback_query(CHAT, status.message["message_id"], "topup:")
    await _deliver_twice(rig, press)
    assert len(rig.fake.sent_to(CHAT)) == 2
