"""Identifiers: UUIDs for everything, and the short id users see."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid

from noema.domain.errors import InvalidInput

_lock = threading.Lock()
_last = [0, 0]  # the last (millisecond, counter) handed out


def new_id() -> str:
    """A new time-ordered UUID (version 7): ids made later sort later, even within one millisecond.

    Lists are ordered by (created_at, id); two entries of one transaction share created_at, and a
    random id would list them in random order.
    """
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms, counter = _last[0], _last[1] + 1
            if counter >= 1 << 12:
                ms, counter = ms + 1, 0
        else:
            counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # room to count up within the millisecond
        _last[0], _last[1] = ms, counter
    tail = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | tail
    return str(uuid.UUID(int=value))


def parse_id(raw: str, *, what: str = "id") -> str:
    """A canonical UUID string, or InvalidInput naming what was expected."""
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        raise InvalidInput(f"{what} must be a UUID such as 3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59.") from None


def short_id(any_id: str) -> str:
    """The 5-hex-digit id shown to users: the start of sha256(id)."""
    return hashlib.sha256(any_id.encode()).hexdigest()[:5]
