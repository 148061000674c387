"""Fixtures of the Telegram tests: a fake Bot API server per test, and Noema pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.telegram.harness import TelegramRig, telegram_app
from tests.fakes.telegram_api import FakeTelegram


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server, over real HTTP."""
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def rig(db_url: str, tmp_path: Path, fake: FakeTelegram) -> AsyncIterator[TelegramRig]:
    """Noema with Telegram in webhook mode against ``fake``."""
    async with telegram_app(db_url, tmp_path, fake) as r:
        yield r
