"""The delivery outbox: what must reach a user about a generation, retried until it does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from noema.domain.generation import Generation
from noema.domain.ids import short_id
from noema.domain.money import format_usd


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


@dataclass(frozen=True)
class DeliveryPayload:
    """What a message about a generation says, frozen when its outbox row is written (or rolled forward).

    Stored as the row's JSON object (``to_json``, camelCase keys); ``from_json`` reads any stored
    row back, one missing keys as the defaults.
    """

    status: str | None = None
    progress: float = 0.0
    live_status: str | None = None
    tool: str = ""
    short_id: str | None = None
    cost_usd: str | None = None
    estimated_cost_usd: str | None = None
    outputs: tuple[Mapping[str, Any], ...] = ()  #: the run's outputs as JSON (``RunOutput.to_json``)
    failure_reason: str | None = None
    shortfall_usd: str | None = None

    @classmethod
    def of(cls, generation: Generation) -> DeliveryPayload:
        """The generation as it is now."""
        return cls(
            status=generation.status.value,
            progress=generation.progress,
            live_status=generation.live_status,
            tool=generation.tool_command,
            short_id=short_id(generation.id),
            cost_usd=format_usd(generation.cost_nanos),
            estimated_cost_usd=format_usd(generation.estimated_cost_nanos),
            outputs=tuple(generation.outputs),
            failure_reason=generation.failure_reason,
            shortfall_usd=format_usd(generation.shortfall_nanos),
        )

    def to_json(self) -> dict[str, Any]:
        """As stored (and as the live streams send it)."""
        return {
            "status": self.status,
            "progress": self.progress,
            "liveStatus": self.live_status,
            "tool": self.tool,
            "shortId": self.short_id,
            "costUsd": self.cost_usd,
            "estimatedCostUsd": self.estimated_cost_usd,
            "outputs": [dict(output) for output in self.outputs],
            "failureReason": self.failure_reason,
            "shortfallUsd": self.shortfall_usd,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DeliveryPayload:
        """A stored payload."""
        outputs = raw.get("outputs")
        return cls(
            status=_text(raw.get("status")),
            progress=float(raw.get("progress") or 0.0),
            live_status=_text(raw.get("liveStatus")),
            tool=str(raw.get("tool", "")),
            short_id=_text(raw.get("shortId")),
            cost_usd=_text(raw.get("costUsd")),
            estimated_cost_usd=_text(raw.get("estimatedCostUsd")),
            outputs=tuple(o for o in outputs if isinstance(o, Mapping)) if isinstance(outputs, list) else (),
            failure_reason=_text(raw.get("failureReason")),
            shortfall_usd=_text(raw.get("shortfallUsd")),
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


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
    payload: DeliveryPayload = field(default_factory=DeliveryPayload)
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
