"""A per-address limit on how often something may happen: here, sandbox accounts made per hour.

Kept in this process's memory on purpose: the sandbox first run exists only with the sandbox
backend (a demo or development Noema, one process), and a restart forgetting the counts costs
at most one more window of free sandbox credit, which is not real money. A Noema run as several
replicas counts per replica.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

#: Addresses remembered at most; past it, addresses whose window has passed are forgotten first.
MAX_ADDRESSES = 10_000


class PerAddressThrottle:
    """At most ``limit`` events per address in any ``window``."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[datetime]] = {}

    def take(self, address: str, now: datetime) -> timedelta | None:
        """Count one event for ``address`` and return None, or return how long until one is allowed.

        Checking and counting are one synchronous step, so concurrent requests cannot both slip in.
        """
        times = self._seen.setdefault(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return times[0] + self.window - now
        times.append(now)
        if len(self._seen) > MAX_ADDRESSES:
            self._forget(now)
        return None

    def _forget(self, now: datetime) -> None:
        for address in [a for a, t in self._seen.items() if not t or t[-1] <= now - self.window]:
            del self._seen[address]
        while len(self._seen) > MAX_ADDRESSES:  # all still counting: drop the oldest addresses
            del self._seen[next(iter(self._seen))]
