"""Fixtures of the Discord tests: one fake Discord server per module (reset per test), Noema pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.discord.harness import DiscordRig, discord_app, serving
from tests.fakes.discord_api import FakeDiscord


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDiscord]:
    """The fake server, started once per module: a server per test would cost a fifth of a second each."""
    yield from serving()


@pytest.fixture
def fake(server: FakeDiscord) -> FakeDiscord:
    """The module's fake server, emptied for this test."""
    server.reset()
    return server


@pytest.fixture
async def rig(db_url: str, tmp_path: Path, fake: FakeDiscord) -> AsyncIterator[DiscordRig]:
    """Noema with Discord against ``fake``."""
    async with discord_app(db_url, tmp_path, fake) as r:
        yield r
