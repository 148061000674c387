"""Answering an interaction: the response to Discord's POST, then edits of the original response.

Discord needs an answer within 3 seconds, so a command is answered at once with a deferred
response (``type 5``: "Noema is thinking…", ephemeral when it concerns only the user) and the
work goes on in the background, ending with an edit of ``@original``. An edit can reach Discord a
moment before Discord has processed our answer to its POST (Unknown Webhook): it is retried briefly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from noema.adapters.platforms.discord import texts
from noema.adapters.platforms.discord.interactions import Interaction
from noema.adapters.platforms.discord.rest import UNKNOWN_WEBHOOK, DiscordApiError, DiscordRest, OutMessage

log = structlog.get_logger(__name__)
PONG, MESSAGE, DEFERRED, AUTOCOMPLETE_RESULT = 1, 4, 5, 8
T = TypeVar("T")
Work = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Answer:
    """The interaction response to return now, and the work to do after it."""

    response: dict[str, Any]
    work: Work | None = None


def deferred(*, ephemeral: bool) -> dict[str, Any]:
    """``DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE``: the user sees that Noema is working on it."""
    return {"type": DEFERRED, "data": {"flags": texts.EPHEMERAL}} if ephemeral else {"type": DEFERRED}


def quick(text: str, *, ephemeral: bool = True) -> dict[str, Any]:
    """An immediate answer (for what needs no database or network)."""
    return {"type": MESSAGE, "data": texts.message(text, ephemeral=ephemeral)}


class Responder:
    """Edits and followups of interaction responses, from the background work."""

    def __init__(self, rest: DiscordRest, *, ack_wait: float = 3.0) -> None:
        self.rest, self.ack_wait = rest, ack_wait

    async def edit(self, ix: Interaction, payload: dict[str, Any]) -> None:
        """Replace the (deferred) original response."""
        await self._acknowledged(lambda: self.rest.edit_original(ix.token, OutMessage(payload)))

    async def private(self, ix: Interaction, text: str) -> None:
        """Tell only the user: drop the public "thinking…" message and answer with an ephemeral one."""
        try:
            await self._acknowledged(lambda: self.rest.delete_original(ix.token))
        except DiscordApiError as exc:
            log.info("discord_original_not_deleted", code=exc.discord_code)
        await self.rest.followup(ix.token, OutMessage(texts.message(text, ephemeral=True)))

    async def _acknowledged(self, call: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_wait
        while True:
            try:
                return await call()
            except DiscordApiError as exc:
                if exc.discord_code != UNKNOWN_WEBHOOK or loop.time() > deadline:
                    raise
            await asyncio.sleep(0.1)
