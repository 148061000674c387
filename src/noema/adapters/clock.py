"""The real clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """UTC now from the operating system."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)
