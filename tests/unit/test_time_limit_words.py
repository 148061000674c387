"""How the reconciler words a tool's time limit when it stops a run (never "0 minutes")."""

from __future__ import annotations

import pytest

from noema.services.reconcile import limit_in_words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (2, "2 seconds"),
        (1, "1 second"),
        (0.4, "1 second"),
        (90, "90 seconds"),
        (60, "1 minute"),
        (900, "15 minutes"),
    ],
)
def test_a_time_limit_is_said_in_whole_minutes_when_it_is_some_else_in_seconds(seconds: float, words: str) -> None:
    assert limit_in_words(seconds) == words
