"""A run's timeline: which status, progress and live status it has at which moment after creation.

The timeline is a pure function of the run's deployment, duration and planned failure, anchored
at the run's creation time, so a restarted server resumes every run exactly where it should be.
Runs of the same shape share one timeline (``timeline_for`` caches it), so a run in flight costs
its record and one timer, not a list of steps of its own.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from noema.domain.runs import RunStatus

QUEUED_AT = 0.05
STARTED_AT = 0.15
RUNNING_AT = 0.25
#: the last node finishes here; the rest of the run is "uploading" the outputs
LAST_NODE_AT = 0.95
FAULT_MESSAGE = "Error: CUDA out of memory (sandbox fault)"
#: A run at least this long reports its progress a bounded number of times, not at every node.
LONG_RUN_SECONDS = 20.0
#: How many progress-only updates a long run makes (after a quarter, half, three quarters and all of
#: the nodes it executes); status changes and the end are always reported.
LONG_RUN_PROGRESS_UPDATES = 4


@dataclass(frozen=True)
class Step:
    """One moment of a run. ``status`` None means a progress-only update."""

    at: float  #: seconds after the run's creation
    status: RunStatus | None = None
    progress: float | None = None
    live_status: str | None = None
    #: render the outputs now; the step's status is success if that works
    finish: bool = False


def build_timeline(
    class_types: list[str] | tuple[str, ...],
    *,
    run_seconds: float,
    failure: str | None = None,
    fail_early: bool = False,
) -> list[Step]:
    """The steps of a run executing ``class_types``: success, or failed with ``failure`` as live status.

    Every node gets a progress step, as ComfyDeploy reports them, except in a run of
    ``LONG_RUN_SECONDS`` or more: there only ``LONG_RUN_PROGRESS_UPDATES`` evenly spread nodes are
    reported, each step carrying the latest node's progress and live status (``coalesce``).
    """
    steps = [
        Step(QUEUED_AT * run_seconds, RunStatus.QUEUED, progress=0.0),
        Step(STARTED_AT * run_seconds, RunStatus.STARTED),
    ]
    if failure is not None and fail_early:
        # ComfyUI refuses a prompt with bad inputs before it executes anything.
        steps.append(Step(RUNNING_AT * run_seconds, RunStatus.FAILED, live_status=failure))
        return steps
    steps.append(Step(RUNNING_AT * run_seconds, RunStatus.RUNNING, progress=0.0))
    total = len(class_types)
    executed = math.ceil(total / 2) if failure is not None else total
    span = (LAST_NODE_AT - RUNNING_AT) * run_seconds
    nodes = []
    for index in range(executed):
        at = RUNNING_AT * run_seconds + span * (index + 1) / (total + 1)
        # ComfyDeploy's node reports progress as the share of nodes seen, to two decimals.
        nodes.append(Step(at, progress=round((index + 1) / total, 2), live_status=f"Executing {class_types[index]}"))
    if run_seconds >= LONG_RUN_SECONDS:
        nodes = coalesce(nodes, LONG_RUN_PROGRESS_UPDATES)
    steps += nodes
    if failure is not None:
        at = RUNNING_AT * run_seconds + span * (executed + 1) / (total + 1)
        steps.append(Step(at, RunStatus.FAILED, live_status=failure))
        return steps
    steps.append(Step(run_seconds, RunStatus.SUCCESS, progress=1.0, finish=True))
    return steps


def coalesce(nodes: list[Step], updates: int) -> list[Step]:
    """At most ``updates`` of the progress-only ``nodes``, evenly spread, always with the last one.

    Each kept step reports the node reached by then, so nothing is lost but the steps in between.
    """
    if len(nodes) <= updates:
        return nodes
    kept = sorted({math.ceil(len(nodes) * (n + 1) / updates) - 1 for n in range(updates)})
    return [nodes[index] for index in kept]


@functools.lru_cache(maxsize=256)
def timeline_for(
    class_types: tuple[str, ...], run_seconds: float, failure: str | None, fail_early: bool
) -> tuple[Step, ...]:
    """``build_timeline``, shared by every run of the same shape (the steps are immutable)."""
    return tuple(build_timeline(class_types, run_seconds=run_seconds, failure=failure, fail_early=fail_early))
