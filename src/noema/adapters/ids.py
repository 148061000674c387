"""The ids Noema makes: time-ordered UUIDs (version 7) from the system clock and the OS's randomness."""

from __future__ import annotations

import os
import threading
import time
import uuid


class TimeOrderedIds:
    """The IdFactory of a running Noema: ids made later sort later, even within one millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (0, 0)  # the last (millisecond, counter) handed out

    def new(self) -> str:
        """A new UUIDv7: 48 bits of Unix milliseconds, a 12-bit counter within the millisecond, 62 random bits."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            last_ms, last_counter = self._last
            if ms <= last_ms:
                ms, counter = last_ms, last_counter + 1
                if counter >= 1 << 12:
                    ms, counter = ms + 1, 0
            else:
                counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # room to count up within the millisecond
            self._last = (ms, counter)
        tail = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | tail
        return str(uuid.UUID(int=value))
