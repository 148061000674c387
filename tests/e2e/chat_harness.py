"""What the chat platforms' end-to-end tests share: waiting for something to happen, a test image."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import TypeVar

from PIL import Image

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
