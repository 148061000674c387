"""Telegram's flood limits, kept on our side: about one message a second per chat, 30 a second overall.

python-telegram-bot's own ``AIORateLimiter`` limits groups per minute but not private chats per
second, so this one (on the same aiolimiter) does both. A 429 ``retry_after`` of a few seconds is
waited out and retried once here; a longer one goes back to the caller (the delivery worker then
schedules the row for after the wait instead of holding a worker).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

_UNLIMITED = frozenset({"getMe", "getFile", "getUpdates", "setWebhook", "deleteWebhook", "answerCallbackQuery"})
_CHATS_KEPT = 10_000


def retry_seconds(exc: RetryAfter) -> float:
    """How long Telegram asked to wait (int or timedelta, depending on PTB's opt-in; read quietly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wait: Any = exc.retry_after
    return float(wait.total_seconds() if hasattr(wait, "total_seconds") else wait)


class ChatRateLimiter(BaseRateLimiter[None]):
    """Throttles every outgoing call per chat and overall; retries a short 429 once."""

    def __init__(
        self, *, per_chat: float = 1.0, chat_burst: int = 3, overall: float = 30.0, max_inline_wait: float = 5.0
    ) -> None:
        self._per_chat, self._chat_burst = per_chat, chat_burst
        self._overall = AsyncLimiter(overall, 1.0)
        self._chats: dict[Any, AsyncLimiter] = {}
        self._max_inline_wait = max_inline_wait

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    def _chat(self, chat_id: Any) -> AsyncLimiter:
        limiter = self._chats.get(chat_id)
        if limiter is None:
            if len(self._chats) >= _CHATS_KEPT:
                self._chats.clear()  # idle limiters carry no debt worth keeping
            limiter = self._chats[chat_id] = AsyncLimiter(self._chat_burst, self._chat_burst / self._per_chat)
        return limiter

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for room in the chat's and the overall budget, then call; retry one short 429."""
        for attempt in (1, 2):
            if endpoint not in _UNLIMITED:
                chat_id = data.get("chat_id")
                if chat_id is not None:
                    await self._chat(chat_id).acquire()
                await self._overall.acquire()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                if attempt == 2 or wait > self._max_inline_wait:
                    raise
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")
