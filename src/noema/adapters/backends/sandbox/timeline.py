"""A run's timeline: which status, progress and live status it has at which moment after creation.

The timeline is a pure function of the run's deployment, duration and planned failure, anchored
at the run's creation time, so a restarted server resumes every run exactly where it should be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from noema.domain.runs import RunStatus

QUEUED_AT = 0.05
STARTED_AT = 0.15
RUNNING_AT = 0.25
#: the last node finishes here; the rest of the run is "uploading" the outputs
LAST_NODE_AT = 0.95
FAULT_MESSAGE = "Error: CUDA out of memory (sandbox fault)"


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
    class_types: list[str], *, run_seconds: float, failure: str | None = None, fail_early: bool = False
) -> list[Step]:
    """The steps of a run executing ``class_types``: success, or failed with ``failure`` as live status."""
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
    for index in range(executed):
        at = RUNNING_AT * run_seconds + span * (index + 1) / (total + 1)
        # ComfyDeploy's node reports progress as the share of nodes seen, to two decimals.
        steps.append(Step(at, progress=round((index + 1) / total, 2), live_status=f"Executing {class_types[index]}"))
    if failure is not None:
        at = RUNNING_AT * run_seconds + span * (executed + 1) / (total + 1)
        steps.append(Step(at, RunStatus.FAILED, live_status=failure))
        return steps
    steps.append(Step(run_seconds, RunStatus.SUCCESS, progress=1.0, finish=True))
    return steps
