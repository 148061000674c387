"""The generation state machine: every status × every backend update, and what a run costs."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

import pytest

from noema.domain.errors import InvalidTransition
from noema.domain.generation import TERMINAL, Change, Generation, GenerationStatus, billable_ms, merge_outputs
from noema.domain.runs import OutputKind, RunOutput, RunStatus, RunUpdate
from tests.fakes.generations import T0, make_generation

S = GenerationStatus
R = RunStatus


# What each backend status does from each of our statuses: the resulting status (None = unchanged).
EXPECTED: dict[GenerationStatus, dict[RunStatus, GenerationStatus | None]] = {
    S.PENDING: {
        R.NOT_STARTED: S.SUBMITTED,
        R.QUEUED: S.QUEUED,
        R.STARTED: S.STARTED,
        R.RUNNING: S.RUNNING,
        R.UPLOADING: S.UPLOADING,
        R.SUCCESS: S.SUCCEEDED,
        R.FAILED: S.FAILED,
        R.CANCELLED: S.CANCELLED,
        R.TIMEOUT: S.TIMED_OUT,
    },
    S.SUBMITTED: {
        R.NOT_STARTED: None,
        R.QUEUED: S.QUEUED,
        R.STARTED: S.STARTED,
        R.RUNNING: S.RUNNING,
        R.UPLOADING: S.UPLOADING,
        R.SUCCESS: S.SUCCEEDED,
        R.FAILED: S.FAILED,
        R.CANCELLED: S.CANCELLED,
        R.TIMEOUT: S.TIMED_OUT,
    },
    S.QUEUED: {
        R.NOT_STARTED: None,
        R.QUEUED: None,
        R.STARTED: S.STARTED,
        R.RUNNING: S.RUNNING,
        R.UPLOADING: S.UPLOADING,
        R.SUCCESS: S.SUCCEEDED,
        R.FAILED: S.FAILED,
        R.CANCELLED: S.CANCELLED,
        R.TIMEOUT: S.TIMED_OUT,
    },
    S.STARTED: {
        R.NOT_STARTED: None,
        R.QUEUED: None,
        R.STARTED: None,
        R.RUNNING: S.RUNNING,
        R.UPLOADING: S.UPLOADING,
        R.SUCCESS: S.SUCCEEDED,
        R.FAILED: S.FAILED,
        R.CANCELLED: S.CANCELLED,
        R.TIMEOUT: S.TIMED_OUT,
    },
    S.RUNNING: {
        R.NOT_STARTED: None,
        R.QUEUED: None,
        R.STARTED: None,
        R.RUNNING: None,
        R.UPLOADING: S.UPLOADING,
        R.SUCCESS: S.SUCCEEDED,
        R.FAILED: S.FAILED,
        R.CANCELLED: S.CANCELLED,
        R.TIMEOUT: S.TIMED_OUT,
    },
    S.UPLOADING: {
        R.NOT_STARTED: None,
        R.QUEUED: None,
        R.STARTED: None,
        R.RUNNING: None,
        R.UPLOADING: None,
        R.SUCCESS: S.SUCCEEDED,
        R.FAILED: S.FAILED,
        R.CANCELLED: S.CANCELLED,
        R.TIMEOUT: S.TIMED_OUT,
    },
    **{terminal: dict.fromkeys(RunStatus) for terminal in TERMINAL},
}


@pytest.mark.parametrize("start", list(GenerationStatus))
@pytest.mark.parametrize("update", list(RunStatus))
def test_every_status_against_every_update(start: GenerationStatus, update: RunStatus) -> None:
    g = make_generation(start, started_at=T0 if start.rank >= S.RUNNING.rank else None)
    changes = g.apply(RunUpdate(run_id="run-1", status=update), T0 + timedelta(seconds=10))
    expected = EXPECTED[start][update]
    assert g.status is (expected or start)
    assert (Change.STATUS in changes) is (expected is not None)
    if start.is_terminal:
        assert changes == []


def test_the_first_running_sets_started_at_once() -> None:
    g = make_generation(S.QUEUED)
    g.apply(RunUpdate(run_id="run-1", status=R.RUNNING), T0 + timedelta(seconds=5))
    g.apply(RunUpdate(run_id="run-1", status=R.RUNNING), T0 + timedelta(seconds=9))
    assert g.started_at == T0 + timedelta(seconds=5)


def test_a_success_without_a_running_webhook_is_charged_from_when_it_was_queued() -> None:
    g = make_generation(S.SUBMITTED)
    g.apply(RunUpdate(run_id="run-1", status=R.QUEUED), T0 + timedelta(seconds=2))
    g.apply(RunUpdate(run_id="run-1", status=R.SUCCESS), T0 + timedelta(seconds=12))
    assert g.started_at == T0 + timedelta(seconds=2)
    assert billable_ms(g) == 10_000


def test_a_cancel_while_queued_is_not_treated_as_having_run() -> None:
    g = make_generation(S.QUEUED, queued_at=T0)
    g.apply(RunUpdate(run_id="run-1", status=R.CANCELLED), T0 + timedelta(seconds=30))
    assert g.started_at is None and billable_ms(g) == 0


def test_a_late_running_after_success_changes_nothing() -> None:
    g = make_generation(S.RUNNING, started_at=T0)
    out = (RunOutput(kind=OutputKind.IMAGE, url="https://x/a.png"),)
    g.apply(RunUpdate(run_id="run-1", status=R.SUCCESS, outputs=out), T0 + timedelta(seconds=8))
    finished = g.finished_at
    assert g.apply(RunUpdate(run_id="run-1", status=R.RUNNING, progress=0.2), T0 + timedelta(seconds=9)) == []
    assert (g.status, g.finished_at, g.progress, len(g.outputs)) == (S.SUCCEEDED, finished, 1.0, 1)


def test_progress_only_moves_forward_and_stays_within_0_and_1() -> None:
    g = make_generation(S.RUNNING, started_at=T0)
    assert Change.PROGRESS in g.apply(RunUpdate(run_id="run-1", progress=0.5, live_status="Executing KSampler"), T0)
    assert g.apply(RunUpdate(run_id="run-1", progress=0.3), T0) == []
    g.apply(RunUpdate(run_id="run-1", progress=7.0), T0)
    assert g.progress == 1.0 and g.live_status == "Sampling"


def test_an_update_for_another_run_is_refused() -> None:
    g = make_generation(S.RUNNING)
    with pytest.raises(InvalidTransition):
        g.apply(RunUpdate(run_id="run-2", status=R.SUCCESS), T0)
    assert g.status is S.RUNNING


def test_an_early_webhook_teaches_a_pending_generation_its_run_id() -> None:
    g = make_generation(S.PENDING, run_id=None, submitted_at=None)
    changes = g.apply(RunUpdate(run_id="run-9", status=R.QUEUED), T0)
    assert g.run_id == "run-9" and Change.RUN_ID_LEARNED in changes
    g.mark_submitted("run-9", T0 + timedelta(seconds=1))
    assert g.status is S.QUEUED  # marking submitted late never moves it backwards


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (R.FAILED, "CUDA out of memory", "CUDA out of memory"),
        (R.FAILED, None, "The workflow failed on the GPU backend."),
        (R.TIMEOUT, None, "The run took longer than this tool's time limit."),
    ],
)
def test_failures_keep_a_readable_reason(status: RunStatus, reason: str | None, expected: str) -> None:
    g = make_generation(S.RUNNING, started_at=T0)
    g.apply(RunUpdate(run_id="run-1", status=status, error=reason), T0 + timedelta(seconds=3))
    assert g.failure_reason == expected
    assert billable_ms(g) == 0  # failures are never charged


def test_finish_ends_a_live_generation_once() -> None:
    g = make_generation(S.RUNNING, started_at=T0)
    assert Change.TERMINAL in g.finish(S.CANCELLED, T0 + timedelta(seconds=4), reason="Cancelled by you.")
    assert g.finish(S.FAILED, T0 + timedelta(seconds=9)) == []
    assert (g.status, billable_ms(g), g.failure_reason) == (S.CANCELLED, 4000, "Cancelled by you.")
    with pytest.raises(InvalidTransition):
        make_generation().finish(S.RUNNING, T0)


def test_outputs_are_merged_without_duplicates() -> None:
    a = RunOutput(kind=OutputKind.IMAGE, url="https://x/a.png")
    b = RunOutput(kind=OutputKind.TEXT, text="a cat")
    merged = merge_outputs(merge_outputs([], (a,)), (a, b))
    assert [o.get("url") or o.get("text") for o in merged] == ["https://x/a.png", "a cat"]


_RESTAMPED = {"updated_at", "last_update_at"}


def _seen(g: Generation) -> dict[str, object]:
    return {k: v for k, v in dataclasses.asdict(g).items() if k not in _RESTAMPED}


_SEEN_FIELDS = [
    (None, None, None),
    (0.5, "Executing KSampler", None),
    (0.4, None, None),
    (0.6, None, None),
    (None, "Executing VAEDecode", None),
    (None, None, "A10G"),
    (None, None, "H100"),
]


@pytest.mark.parametrize("start", list(GenerationStatus))
def test_an_update_is_news_exactly_when_applying_it_changes_more_than_its_time_stamps(
    start: GenerationStatus,
) -> None:
    # Every backend status (or none) with every kind of field, from this status, in a loop: as
    # separate test cases they were 700 and made the unit lane a minute slower.
    for update, (progress, live_status, gpu) in itertools.product([None, *RunStatus], _SEEN_FIELDS):
        g = make_generation(start, started_at=T0 if start.rank >= S.RUNNING.rank else None, progress=0.5, gpu="A10G")
        g.live_status = "Sampling"  # what "Executing KSampler" reads as
        seen = RunUpdate(run_id="run-1", status=update, progress=progress, live_status=live_status, gpu=gpu)
        news = g.is_news(seen)
        before = _seen(g)
        g.apply(seen, T0 + timedelta(seconds=10))
        assert news is (_seen(g) != before), (update, progress, live_status, gpu)


def test_an_update_for_another_run_or_from_the_backend_itself_is_always_news() -> None:
    g = make_generation(S.RUNNING, started_at=T0)
    assert g.is_news(RunUpdate(run_id="run-2"))
    assert g.is_news(RunUpdate(run_id="run-1", confirmed=True))
    assert not g.is_news(RunUpdate(run_id="run-1"))
