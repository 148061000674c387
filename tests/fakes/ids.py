"""Deterministic ids for tests: the IdFactory the in-memory unit of work and test-made rows use."""

from __future__ import annotations

import itertools
import uuid

from noema.ports import IdFactory


class SequentialIds(IdFactory):
    """Version-7-shaped UUIDs from a counter: the n-th id is the same in every run, and later ones sort later."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def new(self) -> str:
        """The next id: 00000000-0000-7000-8000-<n as 12 hex digits>."""
        return str(uuid.UUID(int=0x7 << 76 | 0b10 << 62 | next(self._counter)))


#: For tests that make rows themselves: one sequence for the whole test process, so no two collide.
new_id = SequentialIds().new
