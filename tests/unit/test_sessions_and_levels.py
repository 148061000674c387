"""Sessions expire after inactivity; levels grow with the cube root of EXP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from noema.domain.economy import exp_for_spend, level_of
from noema.domain.sessions import Session

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMEOUT = timedelta(minutes=30)


def _session() -> Session:
    return Session(id="s", account_id="a", platform="telegram", started_at=T0, last_activity_at=T0)


@pytest.mark.parametrize(("idle_minutes", "expired"), [(0, False), (29, False), (30, True), (31, True)])
def test_a_session_expires_after_the_inactivity_timeout(idle_minutes: int, expired: bool) -> None:
    assert _session().is_expired(T0 + timedelta(minutes=idle_minutes), TIMEOUT) is expired


def test_touch_moves_activity_forward_only() -> None:
    s = _session()
    s.touch(T0 + timedelta(minutes=10))
    s.touch(T0 + timedelta(minutes=5))
    assert s.last_activity_at == T0 + timedelta(minutes=10)
    assert not s.is_expired(T0 + timedelta(minutes=39), TIMEOUT)


def test_a_session_ends_once() -> None:
    s = _session()
    assert s.end(T0 + timedelta(minutes=1), "session_timeout_inactive") is True
    assert s.end(T0 + timedelta(minutes=2), "user_ended") is False
    assert (s.ended_at, s.end_reason, s.is_active) == (
        T0 + timedelta(minutes=1),
        "session_timeout_inactive",
        False,
    )
    assert not s.is_expired(T0 + timedelta(days=1), TIMEOUT)


@pytest.mark.parametrize(
    ("exp", "level", "progress", "bar"),
    [
        (0, 0, 0.0, "▱▱▱▱▱▱"),
        (1, 1, 0.0, "▱▱▱▱▱▱"),
        (2, 1, 1 / 7, "▰▱▱▱▱▱"),  # 14% is one cell, not an empty bar
        (4, 1, 3 / 7, "▰▰▰▱▱▱"),
        (7, 1, 6 / 7, "▰▰▰▰▰▱"),
        (8, 2, 0.0, "▱▱▱▱▱▱"),
        (26, 2, 18 / 19, "▰▰▰▰▰▱"),
        (27, 3, 0.0, "▱▱▱▱▱▱"),
        (1000, 10, 0.0, "▱▱▱▱▱▱"),
        (999, 9, 270 / 271, "▰▰▰▰▰▱"),
        (10**12, 10_000, 0.0, "▱▱▱▱▱▱"),
    ],
)
def test_level_is_the_cube_root_of_exp(exp: int, level: int, progress: float, bar: str) -> None:
    result = level_of(exp)
    assert (result.level, result.bar) == (level, bar)
    assert result.progress == pytest.approx(progress)


@pytest.mark.parametrize(("cost", "exp"), [(0, 0), (168_499, 0), (168_500, 1), (337_000, 1), (3_370_000, 10)])
def test_exp_gained_is_the_points_spent_rounded(cost: int, exp: int) -> None:
    assert exp_for_spend(cost) == exp
