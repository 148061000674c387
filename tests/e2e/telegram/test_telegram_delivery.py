"""Telegram delivery: the webhook's secret, flood limits, restarts, albums and parts sent exactly once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from noema.domain.delivery import Delivery, DeliveryKind, DeliveryPayload, DeliveryStatus
from noema.domain.errors import NotifierError
from noema.domain.generation import Generation, GenerationStatus
from noema.ports import GenerationFilter, Notifier
from tests.e2e.chat_harness import png_bytes, until
from tests.e2e.telegram.harness import TelegramRig, telegram_app
from tests.fakes.generations import T0, make_generation
from tests.fakes.media_host import media_host
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_api_state import MessageKind, SentMessage

CHAT = 7001


def _notifier(rig: TelegramRig) -> Notifier:
    """The app's Telegram notifier (these tests run with Telegram configured)."""
    telegram = rig.container.telegram
    assert telegram is not None
    return telegram.notifier


def _photos(rig: TelegramRig, to: int) -> list[SentMessage]:
    return [s for s in rig.replies(CHAT, to) if s.kind is MessageKind.PHOTO]


async def _only_generation(rig: TelegramRig, account: str) -> Generation:
    async with rig.container.uow() as uow:
        page = await uow.generations.search(GenerationFilter(account_id=account), limit=5, cursor=None)
    (generation,) = page.items
    return generation


async def test_an_update_without_the_secret_token_is_refused_and_changes_nothing(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        for secret in (None, "wrong-secret-0123456789"):
            response = await rig.post(fake.user_message(CHAT, "/status"), secret=secret)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "FORBIDDEN"
        assert fake.sent_to(CHAT) == []
        with pytest.raises(Exception, match="No account"):
            await rig.account_id(CHAT)


async def test_a_body_that_is_not_an_update_gets_400_and_changes_nothing(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        headers = {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-0123456789", "Content-Type": "application/json"}
        for body in (b"{not json", b"[1, 2]", b'{"message": {"text": "/status"}}'):
            response = await rig.client.post("/api/webhook/telegram", content=body, headers=headers)
            assert response.status_code == 400, (body, response.text)
            assert "Telegram update" in response.json()["error"]["message"]
        assert fake.sent_to(CHAT) == []


async def test_a_flood_limit_on_the_photo_is_waited_out_and_the_photo_arrives_once(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        await rig.fund(CHAT, "1")
        fake.fail_next("sendPhoto", times=2, retry_after=1)
        command = await rig.say(CHAT, "/txt2img a flooded street")
        await until(lambda: _photos(rig, command["message_id"]), seconds=30, what="the photo after 429s")
        refused = [c for c in fake.calls_to("sendPhoto") if c.status == 429]
        assert len(refused) == 2
        assert len(_photos(rig, command["message_id"])) == 1


async def test_a_long_flood_wait_reschedules_the_delivery_instead_of_blocking(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        account = await rig.fund(CHAT, "1")
        fake.fail_next("sendPhoto", times=1, retry_after=8)
        command = await rig.say(CHAT, "/txt2img a patient cat")
        generation = await until_terminal(rig, account)
        (result,) = [d for d in await deliveries(rig, generation.id) if d.kind.value == "result"]
        await until(lambda: fake.calls_to("sendPhoto"), what="the first try")
        assert len(_photos(rig, command["message_id"])) == 0
        await until(lambda: _photos(rig, command["message_id"]), seconds=30, what="the photo after the wait")
        after = await sent_result(rig, generation.id)
        assert after.attempts >= 1 and result.id == after.id
        assert len(_photos(rig, command["message_id"])) == 1


async def until_terminal(rig: TelegramRig, account: str, seconds: float = 20) -> Generation:
    import asyncio

    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        async with rig.container.uow() as uow:
            page = await uow.generations.search(GenerationFilter(account_id=account), limit=5, cursor=None)
        if page.items and page.items[0].is_terminal:
            return page.items[0]
        assert asyncio.get_running_loop().time() < deadline, "the generation did not end"
        await asyncio.sleep(0.05)


async def sent_result(rig: TelegramRig, generation_id: str) -> Delivery:
    """The generation's result delivery once it is marked sent."""
    import asyncio

    for _ in range(200):
        (result,) = [d for d in await deliveries(rig, generation_id) if d.kind.value == "result"]
        if result.status is DeliveryStatus.SENT:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"the result delivery is still {result.status}")


async def deliveries(rig: TelegramRig, generation_id: str) -> list[Delivery]:
    async with rig.container.uow() as uow:
        return await uow.deliveries.for_generation(generation_id)


async def test_a_restart_between_the_result_and_its_delivery_delivers_it_exactly_once(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake, workers_enabled=False) as rig:
        account = await rig.fund(CHAT, "1")
        command = await rig.say(CHAT, "/txt2img a phoenix")
        generation = await until_terminal(rig, account)
        assert generation.status is GenerationStatus.SUCCEEDED
        assert _photos(rig, command["message_id"]) == []  # settled, queued, not yet sent: then the process stops
    for _restart in range(2):
        async with telegram_app(db_url, tmp_path, fake) as rig:
            await until(lambda: _photos(rig, command["message_id"]), what="the photo after the restart")
            result = await sent_result(rig, generation.id)
    assert len(_photos(rig, command["message_id"])) == 1
    assert result.status is DeliveryStatus.SENT


async def _outputs(rig: TelegramRig, *files: tuple[str, bytes, str]) -> list[dict[str, object]]:
    outputs: list[dict[str, object]] = []
    for name, content, mime in files:
        uploaded = await rig.container.backend.upload_file(filename=name, content=content, content_type=mime)
        kind = "image" if mime.startswith("image/") else "file"
        outputs.append({"kind": kind, "url": uploaded.url, "filename": name, "mime_type": mime})
    return outputs


def _delivery(generation: Generation, kind: str = "result") -> Delivery:
    return Delivery(
        id=f"d-{generation.id}",
        generation_id=generation.id,
        account_id=generation.account_id,
        kind=DeliveryKind(kind),
        platform="telegram",
        key=f"{generation.id}:{kind}",
        created_at=T0,
        next_attempt_at=T0,
        target=dict(generation.delivery),
        payload=DeliveryPayload.of(generation),
    )


async def _send_result(rig: TelegramRig, gid: str, outputs: list[dict[str, object]], reply_to: int) -> None:
    """Hand the Telegram notifier the result of a succeeded run with these outputs, as the outbox would."""
    generation = make_generation(
        GenerationStatus.SUCCEEDED, id=gid, outputs=outputs, delivery={"chat_id": CHAT, "message_id": reply_to}
    )
    await _notifier(rig).send(_delivery(generation), generation)


async def test_several_images_arrive_as_one_album_and_the_summary_carries_the_buttons(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        command = fake.user_message(CHAT, "/txt2img three foxes")["message"]
        outputs = await _outputs(
            rig, *[(f"fox{i}.png", png_bytes(color=c), "image/png") for i, c in enumerate(("red", "green", "blue"))]
        )
        await _send_result(rig, "gen-album", outputs, command["message_id"])
        album = [s for s in rig.replies(CHAT, command["message_id"]) if s.kind is MessageKind.MEDIA_GROUP]
        assert len(album) == 3 and len({s.media_group_id for s in album}) == 1
        assert "/txt2img" in (album[0].caption or "") and "1/1" not in (album[0].caption or "")
        colours = [Image.open(io.BytesIO(s.content or b"")).getpixel((5, 5)) for s in album]
        assert colours == [(255, 0, 0), (0, 128, 0), (0, 0, 255)]


async def test_an_image_too_large_for_a_photo_goes_as_a_document(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        command = fake.user_message(CHAT, "/txt2img a panorama")["message"]
        outputs = await _outputs(rig, ("wide.png", png_bytes(width=6000, height=200), "image/png"))
        await _send_result(rig, "gen-wide", outputs, command["message_id"])
        (document,) = rig.replies(CHAT, command["message_id"])
        assert document.kind is MessageKind.DOCUMENT and document.file_name == "wide.png"
        assert document.reply_markup is not None


async def test_a_part_sent_before_a_failure_is_not_sent_again_on_the_retry(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        command = fake.user_message(CHAT, "/caption")["message"]
        outputs = await _outputs(rig, ("a.png", png_bytes(), "image/png"))
        outputs.append({"kind": "text", "text": "A teal rectangle on nothing at all."})
        generation = make_generation(
            GenerationStatus.SUCCEEDED,
            id="gen-parts",
            outputs=outputs,
            delivery={"chat_id": CHAT, "message_id": command["message_id"]},
        )
        notifier = _notifier(rig)
        fake.fail_next("sendMessage", error_code=500, description="Internal Server Error")
        with pytest.raises(NotifierError) as failed:
            await notifier.send(_delivery(generation), generation)
        assert failed.value.retryable
        await notifier.send(_delivery(generation), generation)
        kinds = [s.kind for s in rig.replies(CHAT, command["message_id"])]
        assert kinds == [MessageKind.PHOTO, MessageKind.TEXT]


async def test_a_user_who_blocked_the_bot_is_a_final_failure_not_a_retry_loop(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        generation = make_generation(
            GenerationStatus.FAILED, id="gen-blocked", failure_reason="boom", delivery={"chat_id": CHAT}
        )
        fake.fail_next("sendMessage", error_code=403)
        with pytest.raises(NotifierError) as failed:
            await _notifier(rig).send(_delivery(generation, "failure"), generation)
        assert not failed.value.retryable


async def test_polling_mode_answers_commands_without_a_webhook(db_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    async with telegram_app(db_url, tmp_path, fake, telegram_mode="polling", telegram_webhook_secret=None) as rig:
        assert fake.state.webhook.url == ""
        message = fake.user_message(CHAT, "/help")["message"]
        reply = await until(lambda: rig.replies(CHAT, message["message_id"]), what="the polled reply")
        assert "/tools" in (reply[0].text or "")


async def test_a_video_output_arrives_as_a_video(db_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    async with telegram_app(db_url, tmp_path, fake) as rig:
        command = fake.user_message(CHAT, "/txt2img a short film")["message"]
        clip = b"\x00\x00\x00\x18ftypmp42" + bytes(2048)  # an MP4 header: not an image, typed by name and MIME
        outputs = await _outputs(rig, ("clip.mp4", clip, "video/mp4"))
        await _send_result(rig, "gen-video", outputs, command["message_id"])
        (video,) = rig.replies(CHAT, command["message_id"])
        assert video.kind is MessageKind.VIDEO and video.content == clip
        assert "/txt2img" in (video.caption or "") and video.reply_markup is not None


def _foreign_image(url: str) -> list[dict[str, object]]:
    return [{"kind": "image", "url": url, "filename": "fox.png", "mime_type": "image/png"}]


async def test_a_result_on_a_host_that_is_not_the_backends_is_never_fetched_and_the_user_is_told(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    with media_host() as host:
        async with telegram_app(db_url, tmp_path, fake) as rig:
            command = fake.user_message(CHAT, "/txt2img a fox")["message"]
            await _send_result(rig, "gen-foreign", _foreign_image(host.url("/fox.png")), command["message_id"])
            replies = rig.replies(CHAT, command["message_id"])
    assert host.hits == []
    assert [s.kind for s in replies] == [MessageKind.TEXT]
    assert "could not be fetched" in (replies[0].text or "")
    assert "127.0.0.1" not in (replies[0].text or "")


async def test_a_media_host_the_operator_allows_is_fetched(db_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    with media_host() as host:
        async with telegram_app(db_url, tmp_path, fake, media_hosts=f"127.0.0.1:{host.port}") as rig:
            command = fake.user_message(CHAT, "/txt2img a fox")["message"]
            await _send_result(rig, "gen-allowed", _foreign_image(host.url("/fox.png")), command["message_id"])
            kinds = [s.kind for s in rig.replies(CHAT, command["message_id"])]
    assert host.hits == ["/fox.png"]
    assert kinds == [MessageKind.PHOTO]
