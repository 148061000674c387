"""What the chat platforms' end-to-end tests share: waiting for something to happen, a test image."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any, TypeVar

from PIL import Image

from noema.domain.delivery import DeliveryKind, DeliveryStatus

T = TypeVar("T")


async def until(check: Callable[[], T | None], *, seconds: float = 20, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def png_bytes(width: int = 320, height: int = 240, color: str = "teal") -> bytes:
    """A plain PNG of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


async def drained_chat_messages(container: Any, generation_ids: list[str], *, seconds: float = 60) -> list[Any]:
    """The result/failure outbox rows of these generations once all are sent (or ``seconds`` pass)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        async with container.uow() as uow:
            messages = [
                d
                for gid in generation_ids
                for d in await uow.deliveries.for_generation(gid)
                if d.kind is not DeliveryKind.PROGRESS
            ]
        if all(d.status is DeliveryStatus.SENT for d in messages) or asyncio.get_running_loop().time() > deadline:
            return messages
        await asyncio.sleep(0.25)


def assert_told_once(telegram: Any, asked: dict[int, int]) -> None:
    """Each chat got exactly one message per generation it asked for (``asked``: chat -> generations)."""
    for chat, count in asked.items():
        sent = [(s.method, s.text or s.caption) for s in telegram.sent_to(chat)]
        assert len(sent) == count == len(set(sent)), (chat, count, sent)
