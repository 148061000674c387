"""Telegram on the real ComfyUI peer: ``/blur`` replying to a photo, the animate example, progress seen."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from noema.domain.generation import GenerationStatus
from noema.ports import GenerationFilter
from tests.e2e.chat_harness import png_bytes, until
from tests.e2e.telegram.harness import TelegramRig, telegram_app
from tests.fakes.comfyui_peer import Server
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_api_state import MessageKind, SentMessage

pytestmark = pytest.mark.comfyui
EXAMPLES = Path(__file__).parents[3] / "examples" / "workflows"
CHAT = 6001


def _media(rig: TelegramRig, to: int, kind: MessageKind) -> SentMessage | None:
    return next((s for s in rig.replies(CHAT, to) if s.kind is kind), None)


def _comfy(tmp_path: Path, server: Server) -> dict[str, Any]:
    return {
        "backend": "comfyui",
        "comfyui_servers": f"{server.url}=A10G",
        "comfyui_workflows_dir": str(EXAMPLES),
        "media_dir": str(tmp_path / "media"),
    }


async def test_blur_replying_to_a_photo_delivers_the_blurred_picture_with_progress_on_the_real_comfyui(
    db_url: str, tmp_path: Path, fake: FakeTelegram, real_comfyui: Server
) -> None:
    async with telegram_app(db_url, tmp_path, fake, **_comfy(tmp_path, real_comfyui)) as rig:
        account = await rig.fund(CHAT, "1")
        sharp = Image.new("RGB", (64, 48))
        sharp.putdata([((x // 4 % 2) * 255, (y // 4 % 2) * 255, 0) for y in range(48) for x in range(64)])
        out = io.BytesIO()
        sharp.save(out, format="PNG")
        photo = await rig.say(CHAT, photo=out.getvalue())
        command = await rig.say(CHAT, "/blur", reply_to=photo["message_id"])
        ack = rig.replies(CHAT, command["message_id"])[0]
        assert ack.kind is MessageKind.TEXT and "/blur received" in (ack.text or "")

        result = await until(lambda: _media(rig, command["message_id"], MessageKind.PHOTO), seconds=90, what="blur")
        assert result.content is not None
        blurred = Image.open(io.BytesIO(result.content)).convert("RGB")
        assert blurred.size == (64, 48)
        # A blurred checkerboard has colours between its two: the picture really went through ImageBlur.
        assert any(0 < v < 255 for v in blurred.getchannel("R").tobytes())
        await until(lambda: (ack.text or "").startswith("✅ /blur"), seconds=30, what="the summary")
        edits = [c for c in fake.calls_to("editMessageText") if c.params.get("message_id") == ack.message_id]
        assert edits, "the acknowledgement was edited as the run went on"
        async with rig.container.uow() as tx:
            (generation,) = (
                await tx.generations.search(GenerationFilter(account_id=account), limit=5, cursor=None)
            ).items
        assert generation.status is GenerationStatus.SUCCEEDED and generation.cost_nanos > 0
        assert await rig.wallet(account) == (1_000_000_000 - generation.cost_nanos, 0)


async def test_the_animate_example_arrives_as_an_animation_on_the_real_comfyui(
    db_url: str, tmp_path: Path, fake: FakeTelegram, real_comfyui: Server
) -> None:
    async with telegram_app(db_url, tmp_path, fake, **_comfy(tmp_path, real_comfyui)) as rig:
        await rig.fund(CHAT, "1")
        photo = await rig.say(CHAT, photo=png_bytes(color="navy"))
        command = await rig.say(CHAT, "/animate", reply_to=photo["message_id"])
        animation = await until(
            lambda: _media(rig, command["message_id"], MessageKind.ANIMATION), seconds=90, what="the animation"
        )
        assert animation.content
        assert getattr(Image.open(io.BytesIO(animation.content)), "n_frames", 1) > 1
