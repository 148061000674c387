"""Fold websocket events into per-prompt state: a pure function, no I/O, easy to table-test.

Progress comes from the latest ``progress`` event (a sampler's steps) when there is one, otherwise
from nodes done out of nodes in the graph (cached nodes count as done). ``executing`` with node null
marks the prompt done: ComfyUI always sends it last, after success, error and interrupt alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from noema.adapters.backends.comfyui.events import (
    Event,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    Progress,
)
from noema.adapters.backends.comfyui.models import PromptStatus


@dataclass(frozen=True)
class PromptState:
    """What the socket has told about one prompt so far."""

    prompt_id: str
    node_count: int  #: nodes in the submitted graph
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: PromptStatus | None = None  #: set by execution_success / _error / _interrupted
    error: str | None = None
    current: str | None = None  #: the node running now
    seen: frozenset[str] = frozenset()  #: nodes that began (and cached ones)
    steps: tuple[float, float] | None = None  #: the latest ``progress`` (value, max)
    done: bool = False  #: ``executing`` with node null arrived

    @property
    def running(self) -> bool:
        """The prompt has left the queue and is not finished."""
        return self.started_at is not None and not self.done and self.outcome is None

    @property
    def nodes_done(self) -> int:
        """Nodes finished or reused (a node counts once the next one begins)."""
        if self.done or self.outcome is PromptStatus.SUCCESS:
            return self.node_count
        finished = self.seen - {self.current} if self.current is not None else self.seen
        return min(len(finished), self.node_count)

    @property
    def progress(self) -> float:
        """0..1: sampler steps when a node reports them, else the share of nodes done."""
        if self.done or self.outcome is PromptStatus.SUCCESS:
            return 1.0
        if self.steps is not None:
            value, top = self.steps
            return max(0.0, min(1.0, value / top))
        if self.node_count <= 0:
            return 0.0
        return self.nodes_done / self.node_count


def apply_event(state: PromptState, event: Event) -> PromptState:
    """The state after one event of this prompt (events of other prompts leave it unchanged)."""
    if getattr(event, "prompt_id", state.prompt_id) != state.prompt_id or state.done:
        return state
    match event:
        case ExecutionStart(at=at):
            return replace(state, started_at=at or state.started_at)
        case ExecutionCached(nodes=nodes):
            return replace(state, seen=state.seen | frozenset(nodes))
        case Executing(node=None):
            return replace(state, done=True, current=None)
        case Executing(node=node) if node is not None:
            # A new node: a previous node's sampler steps no longer describe the run.
            return replace(state, current=node, seen=state.seen | {node}, steps=None)
        case Progress(value=value, max=top):
            return replace(state, steps=(value, top))
        case ExecutionSuccess(at=at):
            return replace(state, outcome=PromptStatus.SUCCESS, ended_at=at)
        case ExecutionError(at=at, error=error):
            return replace(state, outcome=PromptStatus.ERROR, ended_at=at, error=error)
        case ExecutionInterrupted(at=at):
            return replace(state, outcome=PromptStatus.INTERRUPTED, ended_at=at)
    return state


def fold_events(states: Mapping[str, PromptState], event: Event) -> dict[str, PromptState]:
    """Apply one event to the tracked prompts it concerns; prompts nobody tracks are ignored."""
    prompt_id = getattr(event, "prompt_id", None)
    updated = dict(states)
    if isinstance(prompt_id, str) and prompt_id in updated:
        updated[prompt_id] = apply_event(updated[prompt_id], event)
    return updated
