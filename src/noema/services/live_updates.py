"""In-process fan-out of generation updates to open Server-Sent-Event streams.

The hub is a low-latency path only: a stream also re-reads the generation from the database, so
a replica that did not process an update (or a reconnecting client) still sees the truth.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from noema.domain.delivery import Delivery
from noema.domain.generation import Generation


class LiveUpdates:
    """Subscribers per generation id; publishing never blocks (a slow reader drops stale frames)."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def subscribe(self, generation_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every update of the generation from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=50)
        self._subscribers[generation_id].add(queue)
        return queue

    def unsubscribe(self, generation_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop receiving."""
        subscribers = self._subscribers.get(generation_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[generation_id]

    def publish(self, generation_id: str, message: dict[str, Any]) -> int:
        """Give the message to every subscriber; returns how many there were."""
        queues = list(self._subscribers.get(generation_id, ()))
        for queue in queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)
        return len(queues)

    def wake(self, generation_id: str) -> None:
        """Tell the generation's streams it changed (they re-read it from the database)."""
        self.publish(generation_id, {"kind": "changed"})


class LiveUpdatesNotifier:
    """The notifier of the API and the web page: publishes deliveries to open SSE streams."""

    def __init__(self, hub: LiveUpdates) -> None:
        self.hub = hub

    async def send(self, delivery: Delivery, generation: Generation) -> None:
        """Publish; with no stream open there is nobody to tell, and the state stays readable over the API."""
        self.hub.publish(generation.id, {"kind": delivery.kind.value, **delivery.payload.to_json()})
