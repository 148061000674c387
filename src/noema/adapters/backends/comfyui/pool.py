"""The servers of a self-hosted ComfyUI pool: what Noema knows of each, and which one gets the next run.

``choose_server`` is pure: the able, up server with a free slot and the fewest prompts queued or
running (its own queue counted, not only Noema's), ties broken in turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from noema.adapters.backends.comfyui.client import ComfyUIClient
from noema.domain.comfyui_workflows import ObjectInfoSummary


@dataclass(frozen=True)
class Candidate:
    """One server as the choice sees it."""

    up: bool
    able: bool  #: has every node class and model file the workflow needs
    ours: int  #: prompts Noema has on it, not yet ended
    queued: int  #: prompts queued or running on it (everyone's), as its ``/queue`` last said


def choose_server(candidates: Sequence[Candidate], *, slots: int, turn: int) -> int | None:
    """The index of the server for the next run, or None when every able, up server is full.

    Among the able, up servers with fewer than ``slots`` of Noema's prompts, the one with the fewest
    prompts queued or running wins; equal ones take turns: the first at or after ``turn`` (cyclic).
    """
    best: tuple[int, int] | None = None
    chosen: int | None = None
    count = len(candidates)
    for index, c in enumerate(candidates):
        if not (c.up and c.able) or c.ours >= slots:
            continue
        load = max(c.queued, c.ours)
        rank = (load, (index - turn) % count)
        if best is None or rank < best:
            best, chosen = rank, index
    return chosen


@dataclass
class Server:
    """One ComfyUI server of the pool and what its health checks found."""

    url: str
    gpu: str | None
    client: ComfyUIClient
    rate: int | None = None  #: its GPU's price in nanos per second (None: unpriced); a run here is charged at it
    up: bool = False
    checked: bool = False
    reason: str = "not checked yet"
    summary: ObjectInfoSummary = field(default_factory=ObjectInfoSummary)
    queued: int = 0
    socket_open: bool = False
    ours: set[str] = field(default_factory=set)  #: run ids Noema has on it, not yet ended
    #: done when the last run sent here has reached its queue (or given up): the next one waits for it
    last_send: asyncio.Future[None] | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """How messages name the server."""
        return f"the GPU server {self.url}"
