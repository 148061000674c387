"""The per-address throttle: a sliding window per address, and a bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from noema.entrypoints.http.web import throttle
from noema.entrypoints.http.web.throttle import PerAddressThrottle

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_window_slides_per_address_and_says_how_long_to_wait() -> None:
    t = PerAddressThrottle(2, timedelta(hours=1))
    assert t.take("a", T0) is None
    assert t.take("a", T0 + timedelta(minutes=10)) is None
    assert t.take("a", T0 + timedelta(minutes=20)) == timedelta(minutes=40)
    assert t.take("b", T0 + timedelta(minutes=20)) is None
    assert t.take("a", T0 + timedelta(hours=1)) is None  # the first one has left the window
    assert t.take("a", T0 + timedelta(hours=1)) == timedelta(minutes=10)


def test_memory_stays_bounded_however_many_addresses_come() -> None:
    t = PerAddressThrottle(1, timedelta(hours=1))
    for i in range(throttle.MAX_ADDRESSES + 50):
        t.take(f"10.0.{i // 256}.{i % 256}", T0)
    assert len(t._seen) <= throttle.MAX_ADDRESSES
    t.take("late", T0 + timedelta(hours=2))
    assert t.take("late", T0 + timedelta(hours=2)) is not None
