"""The delivery outbox: what must reach a user about a generation, retried until it does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any


class DeliveryKind(str, Enum):
    RESULT = "result"
    FAILURE = "failure"
    PROGRESS = "progress"


class DeliveryStatus(str, Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  #: gave up after MAX_ATTEMPTS; logged and counted, never silent
    SKIPPED = "skipped"  #: nobody to tell (e.g. a superseded progress edit)


MAX_ATTEMPTS = 12

#: Platforms whose people watch a generation live (Server-Sent Events) rather than being sent messages:
#: they get no outbox rows.
LIVE_PLATFORMS = frozenset({"api", "web"})


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 2, 4, 8 … seconds, at most 10 minutes."""
    return timedelta(seconds=min(600, 2 ** max(1, attempts)))


def dedupe_key(generation_id: str, kind: DeliveryKind) -> str:
    """One result, one failure and one (rolling) progress row per generation."""
    return f"{generation_id}:{kind.value}"


@dataclass(eq=False)
class Delivery:
    """One notification about a generation for one platform target."""

    id: str
    generation_id: str
    account_id: str
    kind: DeliveryKind
    platform: str
    key: str
    created_at: datetime
    next_attempt_at: datetime
    target: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def lane(self) -> str:
        """The conversation it goes to: rows of one lane are sent one at a time, in order.

        A chat (Telegram ``chat_id``, Discord ``channel_id``) is one lane, so progress edits never
        overtake a result and two results' parts never interleave; a target without one is its own.
        """
        where = self.target.get("chat_id") or self.target.get("channel_id") or self.generation_id
        return f"{self.platform}:{where}"

    def succeeded(self, now: datetime) -> None:
        """It reached the user."""
        self.status, self.sent_at, self.updated_at, self.last_error = DeliveryStatus.SENT, now, now, None

    def failed_attempt(self, now: datetime, error: str, *, retryable: bool = True) -> bool:
        """Schedule another try, or give up after MAX_ATTEMPTS (or at once if the error is final); True if given up."""
        self.last_error = error[:500]
        self.updated_at = now
        if not retryable or self.attempts >= MAX_ATTEMPTS:
            self.status = DeliveryStatus.FAILED
            return True
        self.next_attempt_at = now + backoff(self.attempts)
        return False
