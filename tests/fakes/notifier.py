"""A notifier whose failures the test scripts, recording every message it was asked to send."""

from __future__ import annotations

import asyncio

from noema.domain.delivery import Delivery
from noema.domain.errors import NotifierError
from noema.domain.generation import Generation
from noema.ports import Notifier


class ScriptedNotifier(Notifier):
    """Fails with the scripted errors first, then succeeds; ``delay`` makes a send take time."""

    def __init__(self, *failures: NotifierError, delay: float = 0.0) -> None:
        self.failures = list(failures)
        self.delay = delay
        self.sent: list[tuple[str, str]] = []  # (generation id, kind) of each successful send
        self.attempts = 0

    async def send(self, delivery: Delivery, generation: Generation) -> None:
        """Fail if a failure is scripted, else record the message."""
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((generation.id, delivery.kind.value))
