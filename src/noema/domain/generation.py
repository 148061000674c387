"""A generation: one run of one tool for one account, and the rules of its lifecycle.

``Generation.apply`` is the state machine. Statuses only move forward; a terminal status absorbs
every later update (duplicates, late ``running`` after ``success``), so replays change nothing.
How long a finished run is billed for is decided here too (``billable_ms``), from persisted
timestamps only: the backend's own, when it confirmed them, else the moments Noema saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from noema.domain.errors import InvalidTransition
from noema.domain.pricing import PriceSnapshot
from noema.domain.progress_words import humane, is_progress_text
from noema.domain.runs import RunOutput, RunStatus, RunUpdate
from noema.domain.tools import Tool


class GenerationStatus(str, Enum):
    PENDING = "pending"  #: row created, not yet accepted by the backend
    SUBMITTED = "submitted"  #: backend returned a run id
    QUEUED = "queued"
    STARTED = "started"
    RUNNING = "running"  #: first seen running -> started_at is set
    UPLOADING = "uploading"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        """Succeeded, failed, cancelled and timed out are final."""
        return self in TERMINAL

    @property
    def rank(self) -> int:
        """Position in the lifecycle; every terminal status shares the last rank."""
        return _RANK[self]


TERMINAL = frozenset(
    {GenerationStatus.SUCCEEDED, GenerationStatus.FAILED, GenerationStatus.CANCELLED, GenerationStatus.TIMED_OUT}
)
LIVE = frozenset(GenerationStatus) - TERMINAL
_RANK = {s: i for i, s in enumerate(list(GenerationStatus)[:6])} | {s: 6 for s in TERMINAL}

#: How a backend status maps onto ours (``not-started`` means no news beyond "submitted").
FROM_RUN_STATUS = {
    RunStatus.NOT_STARTED: GenerationStatus.SUBMITTED,
    RunStatus.QUEUED: GenerationStatus.QUEUED,
    RunStatus.STARTED: GenerationStatus.STARTED,
    RunStatus.RUNNING: GenerationStatus.RUNNING,
    RunStatus.UPLOADING: GenerationStatus.UPLOADING,
    RunStatus.SUCCESS: GenerationStatus.SUCCEEDED,
    RunStatus.FAILED: GenerationStatus.FAILED,
    RunStatus.CANCELLED: GenerationStatus.CANCELLED,
    RunStatus.TIMEOUT: GenerationStatus.TIMED_OUT,
}


class Change(str, Enum):
    """What an update did to a generation (the events of ``apply``)."""

    STATUS = "status"
    PROGRESS = "progress"
    STARTED_RUNNING = "started_running"
    TERMINAL = "terminal"
    RUN_ID_LEARNED = "run_id_learned"


@dataclass(eq=False)
class Generation:
    """One run of one tool for one account."""

    id: str
    account_id: str
    tool_id: str
    tool_command: str
    deployment_id: str
    inputs: dict[str, Any]
    rate_nanos_per_second: int
    estimated_cost_nanos: int
    hold_nanos: int
    webhook_token_hash: str
    requested_at: datetime
    updated_at: datetime
    status: GenerationStatus = GenerationStatus.PENDING
    progress: float = 0.0
    live_status: str | None = None
    run_id: str | None = None
    gpu: str | None = None
    submitted_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_update_at: datetime | None = None
    next_poll_at: datetime | None = None
    max_runtime_seconds: float = 900.0
    price_multiplier: float = 1.0
    flat_price_nanos: int | None = None
    cost_nanos: int = 0
    shortfall_nanos: int = 0
    exp_gained: int = 0
    settled_at: datetime | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    failure_reason: str | None = None
    cancel_requested: bool = False
    platform: str = "api"
    delivery: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: the backend's own timestamps of the run on the GPU (only from its answers, never a webhook body)
    run_started_at: datetime | None = None
    run_ended_at: datetime | None = None
    #: Noema stopped the run because its cost reached the hold (it is charged the hold, at most)
    stopped_at_hold: bool = False

    @classmethod
    def for_tool(
        cls,
        tool: Tool,
        now: datetime,
        *,
        id: str,
        account_id: str,
        inputs: dict[str, Any],
        estimated_cost_nanos: int,
        hold_nanos: int,
        webhook_token_hash: str,
        **fields: Any,
    ) -> Generation:
        """A new pending generation of ``tool``, requested ``now``; ``fields`` set the rest (platform, delivery ...)."""
        generation = cls(
            id=id,
            account_id=account_id,
            tool_id="",  # set with the rest of what it takes from the tool, in _point_at
            tool_command="",
            deployment_id="",
            inputs=inputs,
            rate_nanos_per_second=0,
            estimated_cost_nanos=estimated_cost_nanos,
            hold_nanos=hold_nanos,
            webhook_token_hash=webhook_token_hash,
            requested_at=now,
            updated_at=now,
            **fields,
        )
        generation._point_at(tool)
        return generation

    @property
    def is_terminal(self) -> bool:
        """The run is over and settled or about to be."""
        return self.status.is_terminal

    @property
    def price(self) -> PriceSnapshot:
        """What the run is billed by, frozen from its tool (the rate may since be the machine's that ran it)."""
        return PriceSnapshot(
            rate_nanos_per_second=self.rate_nanos_per_second,
            price_multiplier=self.price_multiplier,
            flat_price_nanos=self.flat_price_nanos,
            max_runtime_seconds=self.max_runtime_seconds,
        )

    @price.setter
    def price(self, price: PriceSnapshot) -> None:
        self.rate_nanos_per_second, self.price_multiplier = price.rate_nanos_per_second, price.price_multiplier
        self.flat_price_nanos, self.max_runtime_seconds = price.flat_price_nanos, price.max_runtime_seconds

    def retarget(self, tool: Tool, now: datetime) -> None:
        """Point a pending generation at another tool (a fallback): its deployment, GPU and price.

        Only while no backend has its run, so the price it is charged at is always that of the
        deployment that ran it.
        """
        if self.status is not GenerationStatus.PENDING or self.run_id is not None:
            raise InvalidTransition("Only a generation no backend has taken yet may move to another tool.")
        self._point_at(tool)
        self.updated_at = now

    def _point_at(self, tool: Tool) -> None:
        self.tool_id, self.tool_command, self.deployment_id = tool.id, tool.command, tool.deployment_id
        self.gpu = tool.gpu
        self.price = PriceSnapshot.of(tool)

    @property
    def budget_ms(self) -> int | None:
        """GPU milliseconds after which the run has cost its whole hold; None for a flat price (the hold covers it)."""
        return self.price.covered_ms(self.hold_nanos)

    def check_at(self) -> datetime:
        """When the run must be looked at whatever its webhooks say: its time limit, or when it uses up its hold."""
        since = self.started_at or self.submitted_at or self.requested_at
        limit = timedelta(seconds=self.max_runtime_seconds)
        budget = self.budget_ms
        if self.started_at is not None and budget is not None:
            limit = min(limit, timedelta(milliseconds=budget))
        return since + limit

    def over_time(self, now: datetime) -> bool:
        """Live past the tool's maximum runtime (a timeout: never charged)."""
        since = self.started_at or self.submitted_at or self.requested_at
        return (now - since).total_seconds() > self.max_runtime_seconds

    def over_budget(self, now: datetime) -> bool:
        """Running long enough that its cost (priced as it will be billed) has reached its hold."""
        if self.started_at is None or self.flat_price_nanos is not None or self.rate_nanos_per_second <= 0:
            return False
        return self.price.used(max(0, (now - self.started_at) // _MS)) >= self.hold_nanos

    def stop_at_hold(self, now: datetime, *, reason: str) -> list[Change]:
        """End a run whose cost reached its hold: cancelled, charged what it used up to the hold."""
        changes = self.finish(GenerationStatus.CANCELLED, now, reason=reason)
        if changes:
            self.stopped_at_hold = True
        return changes

    def mark_submitted(self, run_id: str, now: datetime) -> list[Change]:
        """The backend accepted the run; a webhook may already have moved us further."""
        changes = self._learn_run_id(run_id)
        if self.submitted_at is None:
            self.submitted_at = now
        if self.status is GenerationStatus.PENDING:
            self.status = GenerationStatus.SUBMITTED
            changes.append(Change.STATUS)
        self.updated_at = now
        return changes

    def apply(self, update: RunUpdate, now: datetime) -> list[Change]:
        """Apply one backend observation; monotonic, and a no-op once terminal."""
        if self.is_terminal:
            return []
        if self.run_id is not None and update.run_id != self.run_id:
            raise InvalidTransition(f"Update for run {update.run_id[:40]} does not belong to this generation.")
        changes = self._learn_run_id(update.run_id)
        self.last_update_at = now
        self.updated_at = now
        if update.confirmed:  # only the backend's own answer may set the times the run is billed by
            self.run_started_at = update.started_at or self.run_started_at
            self.run_ended_at = update.ended_at or self.run_ended_at
            if update.rate_nanos_per_second is not None and update.rate_nanos_per_second > 0:
                # Held at the dearest machine able to run it; charged at the one that did.
                self.rate_nanos_per_second = update.rate_nanos_per_second
        if update.gpu:
            self.gpu = update.gpu
        if update.live_status and not self.is_terminal:
            self.live_status = humane(update.live_status)[:500]
        target = FROM_RUN_STATUS.get(update.status) if update.status else None
        if target is not None and target.rank > self.status.rank:
            changes += self._move(target, update, now)
        if update.progress is not None and not self.is_terminal and update.progress > self.progress:
            self.progress = min(max(update.progress, 0.0), 1.0)
            changes.append(Change.PROGRESS)
        return changes

    def is_news(self, update: RunUpdate) -> bool:
        """Whether ``apply`` would change anything a person or the bill sees.

        That is a later status, more progress, another live status, a GPU, the run id, or the backend's own times.

        A webhook that repeats what is known is not news: applying it would only restamp the row.
        """
        if self.is_terminal:
            return False
        if update.run_id != self.run_id or update.confirmed:
            return True  # learns the run id (or is refused by ``apply``); a backend answer may set times
        target = FROM_RUN_STATUS.get(update.status) if update.status else None
        if target is not None and target.rank > self.status.rank:
            return True
        if update.progress is not None and update.progress > self.progress:
            return True
        if update.live_status and humane(update.live_status)[:500] != self.live_status:
            return True
        return bool(update.gpu) and update.gpu != self.gpu

    def finish(self, status: GenerationStatus, now: datetime, *, reason: str | None = None) -> list[Change]:
        """End the generation from our side (submit failed, cancelled, timed out); no-op if already over."""
        if not status.is_terminal:
            raise InvalidTransition(f"{status.value} is not a final status.")
        if self.is_terminal:
            return []
        return self._move(status, RunUpdate(run_id=self.run_id or "", error=reason), now)

    def _learn_run_id(self, run_id: str) -> list[Change]:
        if self.run_id is None and run_id:
            self.run_id = run_id
            return [Change.RUN_ID_LEARNED]
        return []

    def _move(self, target: GenerationStatus, update: RunUpdate, now: datetime) -> list[Change]:
        changes = [Change.STATUS]
        self.status = target
        if target is GenerationStatus.QUEUED and self.queued_at is None:
            self.queued_at = now
        if target in _PROVES_IT_RAN:
            changes += self._seen_running(now)
        if target.is_terminal:
            self.finished_at = now
            changes.append(Change.TERMINAL)
            if target is GenerationStatus.SUCCEEDED:
                self.progress = 1.0
                self.outputs = merge_outputs(self.outputs, update.outputs)
            else:
                last_words = None if is_progress_text(self.live_status) else self.live_status
                self.failure_reason = (update.error or last_words or _DEFAULT_REASON[target])[:500]
            self.live_status = None  # the run is over: its status and result (or failure reason) say the rest
        return changes

    def _seen_running(self, now: datetime) -> list[Change]:
        if self.started_at is not None:
            return []
        # The running webhook may have been lost: a run that reached a later status did run, so
        # it is charged from the earliest moment we can prove it was on a GPU (never free, bug §12.1).
        if self.status is GenerationStatus.RUNNING:
            self.started_at = now
        else:
            self.started_at = self.queued_at or self.submitted_at or now
        return [Change.STARTED_RUNNING]


_MS = timedelta(milliseconds=1)  # whole milliseconds by integer division: no float rounding
_PROVES_IT_RAN = frozenset({GenerationStatus.RUNNING, GenerationStatus.UPLOADING, GenerationStatus.SUCCEEDED})

_DEFAULT_REASON = {
    GenerationStatus.FAILED: "The workflow failed on the GPU backend.",
    GenerationStatus.CANCELLED: "Cancelled.",
    GenerationStatus.TIMED_OUT: "The run took longer than this tool's time limit.",
    GenerationStatus.SUCCEEDED: "",
}


def merge_outputs(known: list[dict[str, Any]], new: tuple[RunOutput, ...]) -> list[dict[str, Any]]:
    """Every output once: webhooks repeat all outputs so far, ``run.output`` events carry one each."""
    merged = list(known)
    seen = {(o.get("url"), o.get("text")) for o in merged}
    for output in new:
        key = (output.url, output.text)
        if key not in seen:
            seen.add(key)
            merged.append(output.to_json())
    return merged


def billable_ms(generation: Generation) -> int:
    """The GPU milliseconds a finished run is charged for (zero unless it succeeded or was cancelled).

    The backend's own start and end, when it confirmed both, else when Noema saw the run running
    and ending: never a mix of the two clocks.
    """
    if generation.status not in (GenerationStatus.SUCCEEDED, GenerationStatus.CANCELLED):
        return 0  # failures and timeouts are never charged
    window = gpu_window(generation)
    if window is None:
        return 0  # never seen on a GPU
    return max(0, (window[1] - window[0]) // _MS)


def gpu_window(generation: Generation) -> tuple[datetime, datetime] | None:
    """When the run started and ended on the GPU: the backend's clock if it told us both, else Noema's."""
    if generation.run_started_at is not None and generation.run_ended_at is not None:
        return generation.run_started_at, generation.run_ended_at
    if generation.started_at is not None and generation.finished_at is not None:
        return generation.started_at, generation.finished_at
    return None
