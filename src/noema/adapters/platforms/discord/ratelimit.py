"""Discord's REST rate limits, as its response headers describe them.

Every response names its bucket (``X-RateLimit-Bucket``), what is left in it (``-Remaining``) and
when it refills (``-Reset-After``). Buckets are per route and per top-level resource (a channel, a
guild, an interaction webhook), so the state is kept per (bucket, resource). A request to an empty
bucket waits for the refill instead of earning a 429; a global 429 pauses every route.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

_KEPT = 10_000  #: bucket states kept before the oldest are forgotten (interaction tokens are many)


class Buckets:
    """What is known of each bucket: requests left and when it refills (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._bucket_of: dict[str, str] = {}
        self._state: dict[str, tuple[int, float]] = {}
        self._global_until = 0.0

    def _key(self, route: str, major: str) -> str:
        return f"{self._bucket_of.get(route, route)}:{major}"

    def delay(self, route: str, major: str) -> float:
        """Seconds to wait before a request on ``route`` for ``major`` may go out."""
        now = self._clock()
        wait = max(0.0, self._global_until - now)
        remaining, reset_at = self._state.get(self._key(route, major), (1, 0.0))
        if remaining <= 0 and reset_at > now:
            wait = max(wait, reset_at - now)
        return wait

    def spend(self, route: str, major: str) -> None:
        """Count a request going out (so concurrent senders do not all take the last slot)."""
        key = self._key(route, major)
        remaining, reset_at = self._state.get(key, (1, 0.0))
        if key in self._state and reset_at > self._clock():
            self._state[key] = (remaining - 1, reset_at)

    def update(self, route: str, major: str, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers."""
        bucket = headers.get("x-ratelimit-bucket")
        if bucket:
            self._bucket_of[route] = bucket[:64]
        remaining, reset_after = (
            _number(headers.get("x-ratelimit-remaining")),
            _number(headers.get("x-ratelimit-reset-after")),
        )
        if remaining is None or reset_after is None:
            return
        if len(self._state) >= _KEPT:
            self._state.clear()  # idle buckets carry no debt worth keeping
        self._state[self._key(route, major)] = (int(remaining), self._clock() + reset_after)

    def hold(self, route: str, major: str, seconds: float, *, is_global: bool) -> None:
        """A 429: nothing more on this bucket (or anywhere, if global) for ``seconds``."""
        until = self._clock() + seconds
        if is_global:
            self._global_until = max(self._global_until, until)
        else:
            self._state[self._key(route, major)] = (0, until)


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 86_400 else None
