"""Points, EXP and levels: how a balance and spending are shown to users."""

from __future__ import annotations

from dataclasses import dataclass

from noema.domain.money import NANOS_PER_POINT

BAR_CELLS = 6


def exp_for_spend(cost_nanos: int) -> int:
    """EXP gained for a spend: the points it cost, rounded to the nearest whole point."""
    return (2 * cost_nanos + NANOS_PER_POINT) // (2 * NANOS_PER_POINT) if cost_nanos > 0 else 0


def _icbrt(n: int) -> int:
    root = round(n ** (1 / 3)) if n > 0 else 0
    while root**3 > n:
        root -= 1
    while (root + 1) ** 3 <= n:
        root += 1
    return root


@dataclass(frozen=True)
class Level:
    level: int
    progress: float  # 0 <= progress < 1 towards the next level

    @property
    def bar(self) -> str:
        """Six cells, filled to the nearest cell for the progress made (one cell from the first EXP, never all six)."""
        filled = round(self.progress * BAR_CELLS)
        if self.progress > 0:
            filled = min(max(filled, 1), BAR_CELLS - 1)
        return "▰" * filled + "▱" * (BAR_CELLS - filled)


def level_of(exp: int) -> Level:
    """Level = floor(cbrt(EXP)); progress = (EXP - L^3) / ((L+1)^3 - L^3)."""
    exp = max(exp, 0)
    lvl = _icbrt(exp)
    span = (lvl + 1) ** 3 - lvl**3
    return Level(lvl, (exp - lvl**3) / span)
