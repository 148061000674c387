"""The flood limiter keeps about one message a second per chat, through python-telegram-bot to the fake server."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from telegram.ext import ExtBot

from noema.adapters.platforms.telegram.limiter import ChatRateLimiter
from tests.fakes.telegram_api import FakeTelegram


async def test_a_burst_to_one_chat_is_spread_to_one_message_a_second_after_a_small_burst() -> None:
    async with FakeTelegram() as fake:
        root = fake.url
        bot = ExtBot(
            fake.token,
            base_url=f"{root}/bot",
            base_file_url=f"{root}/file/bot",
            rate_limiter=ChatRateLimiter(per_chat=1.0, chat_burst=2),
        )
        async with bot:
            await asyncio.gather(*(bot.send_message(42, f"m{i}") for i in range(5)))
            await bot.send_message(43, "another chat is not held back")
        times = [c.time for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 42]
        assert len(times) == 5
        gaps = [b - a for a, b in itertools.pairwise(sorted(times))]
        # Two go at once (the burst); each later one waits for the budget to refill at 1/s.
        assert sum(gaps) >= 2.5, gaps


async def test_a_short_flood_wait_is_retried_once_and_a_long_one_is_raised() -> None:
    from telegram.error import RetryAfter

    async with FakeTelegram() as fake:
        root = fake.url
        bot = ExtBot(
            fake.token,
            base_url=f"{root}/bot",
            base_file_url=f"{root}/file/bot",
            rate_limiter=ChatRateLimiter(max_inline_wait=2),
        )
        async with bot:
            fake.fail_next("sendMessage", retry_after=1)
            sent = await bot.send_message(42, "after a short wait")
            assert sent.text == "after a short wait"
            fake.fail_next("sendMessage", retry_after=30)
            with pytest.raises(RetryAfter, match="30"):
                await bot.send_message(42, "too long to wait here")
        assert [c.status for c in fake.calls_to("sendMessage")] == [429, 200, 429]
