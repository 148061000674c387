"""The sandbox's run timelines: every status change, and a bounded number of progress updates for long runs."""

from __future__ import annotations

import math

import pytest

from noema.adapters.backends.sandbox import CATALOG
from noema.adapters.backends.sandbox.timeline import (
    FAULT_MESSAGE,
    LONG_RUN_PROGRESS_UPDATES,
    LONG_RUN_SECONDS,
    Step,
    build_timeline,
    timeline_for,
)
from noema.domain.runs import RunStatus

TXT2IMG = CATALOG.deployment_by_name("txt2img").execution_order()


def _progress_only(steps: list[Step]) -> list[Step]:
    return [step for step in steps if step.status is None]


@pytest.mark.parametrize("name", [d.name for d in CATALOG.deployments])
@pytest.mark.parametrize("run_seconds", [LONG_RUN_SECONDS, 600.0])
def test_a_long_run_reports_progress_a_bounded_number_of_times_and_every_status(name: str, run_seconds: float) -> None:
    order = CATALOG.deployment_by_name(name).execution_order()
    steps = build_timeline(order, run_seconds=run_seconds)
    progress = _progress_only(steps)
    assert len(progress) == min(len(order), LONG_RUN_PROGRESS_UPDATES)
    assert [s.status for s in steps if s.status] == [
        RunStatus.QUEUED,
        RunStatus.STARTED,
        RunStatus.RUNNING,
        RunStatus.SUCCESS,
    ]
    # Rising, in time order, and the last one reports every node done, as the last node does.
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    figures = [s.progress for s in progress if s.progress is not None]
    assert len(figures) == len(progress) and figures == sorted(figures)
    assert progress[-1].progress == 1.0
    assert progress[-1].live_status == f"Executing {order[-1]}"


def test_a_short_run_reports_every_node() -> None:
    steps = build_timeline(TXT2IMG, run_seconds=LONG_RUN_SECONDS - 0.5)
    progress = _progress_only(steps)
    assert [s.live_status for s in progress] == [f"Executing {c}" for c in TXT2IMG]
    assert len(progress) > LONG_RUN_PROGRESS_UPDATES


def test_a_long_run_that_fails_part_way_reports_few_nodes_and_its_failure() -> None:
    steps = build_timeline(TXT2IMG, run_seconds=600, failure=FAULT_MESSAGE)
    progress = _progress_only(steps)
    assert 0 < len(progress) <= LONG_RUN_PROGRESS_UPDATES
    executed = math.ceil(len(TXT2IMG) / 2)  # the fault strikes half-way through the nodes
    assert progress[-1].progress == round(executed / len(TXT2IMG), 2)
    assert steps[-1].status is RunStatus.FAILED and steps[-1].live_status == FAULT_MESSAGE


def test_runs_of_one_shape_share_one_timeline() -> None:
    first = timeline_for(tuple(TXT2IMG), 600.0, None, False)
    assert timeline_for(tuple(TXT2IMG), 600.0, None, False) is first
    assert list(first) == build_timeline(TXT2IMG, run_seconds=600.0)
