"""``NOEMA_SANDBOX_FAULTS``: the misbehaviours of the real service the embedded sandbox reproduces on purpose."""

from __future__ import annotations

import math
from enum import StrEnum


class Fault(StrEnum):
    """A misbehaviour of the real service that the sandbox can reproduce on purpose."""

    WEBHOOK_DUPLICATE = "webhook_duplicate"  #: a webhook post is delivered twice
    WEBHOOK_REORDER = "webhook_reorder"  #: a status post is held back and sent after the next one
    WEBHOOK_DROP = "webhook_drop"  #: a webhook post is never sent
    SUBMIT_ERROR = "submit_error"  #: queueing answers 500 or 429 and creates nothing
    RUN_FAIL = "run_fail"  #: the run fails part-way through


FAULT_NAMES = tuple(fault.value for fault in Fault)


def check_probability(name: str, value: float) -> float:
    """The probability of a known fault, a number in [0, 1]; ValueError names what is wrong."""
    if name not in FAULT_NAMES:
        raise ValueError(f"Unknown sandbox fault {name!r}; known faults: {', '.join(FAULT_NAMES)}.")
    if isinstance(value, bool) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"Sandbox fault {name!r} needs a probability between 0 and 1, got {value!r}.")
    return float(value)


def parse_faults(raw: str) -> dict[str, float]:
    """Parse ``"webhook_drop=0.2,run_fail=0.1"`` into ``{name: probability}``; ValueError names bad items."""
    faults: dict[str, float] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"Sandbox fault item {item!r} must look like name=probability.")
        try:
            value = float(number.strip())
        except ValueError:
            raise ValueError(f"Sandbox fault item {item!r}: {number.strip()!r} is not a number.") from None
        faults[name] = check_probability(name, value)
    return faults
