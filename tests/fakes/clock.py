"""A clock the test moves by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from noema.ports import Clock


class FakeClock(Clock):
    """Starts at a fixed instant; ``advance`` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The current fake time."""
        return self.current

    def advance(self, **kwargs: float) -> datetime:
        """Move forward by a timedelta's arguments."""
        self.current += timedelta(**kwargs)
        return self.current
