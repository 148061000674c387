"""Sessions and events: periods of activity of one account on one platform, and what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any


class EndReason(str, Enum):
    TIMEOUT = "session_timeout_inactive"
    USER = "user_ended"
    ADMIN = "admin_ended"
    MERGED = "account_merged"


@dataclass(eq=False)
class Session:
    """Active until ``timeout`` without activity; one active session per account and platform."""

    id: str
    account_id: str
    platform: str
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def is_active(self) -> bool:
        """Not ended yet (it may still be past its timeout until the expiry task ends it)."""
        return self.ended_at is None

    def is_expired(self, now: datetime, timeout: timedelta) -> bool:
        """Inactive for longer than the timeout."""
        return self.is_active and now - self.last_activity_at >= timeout

    def touch(self, now: datetime) -> None:
        """Record activity; time never runs backwards."""
        if now > self.last_activity_at:
            self.last_activity_at = now

    def end(self, now: datetime, reason: str) -> bool:
        """End the session once; returns False when it had already ended."""
        if not self.is_active:
            return False
        self.ended_at = max(now, self.started_at)
        self.end_reason = reason
        return True


@dataclass(eq=False)
class Event:
    """An append-only record of something that happened."""

    id: str
    event_type: str
    created_at: datetime
    account_id: str | None = None
    session_id: str | None = None
    source_platform: str | None = None
    event_data: dict[str, Any] = field(default_factory=dict)
