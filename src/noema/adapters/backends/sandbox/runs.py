"""Run records: what the sandbox knows about each run, persisted as one JSON file per run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from noema.domain.runs import RunStatus

logger = logging.getLogger(__name__)

_TIME_FIELDS = ("created_at", "updated_at", "queued_at", "started_at", "ended_at")


def iso(moment: datetime | None) -> str | None:
    """ComfyDeploy's time format: UTC with milliseconds and a Z."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str | None) -> datetime | None:
    """The inverse of ``iso``."""
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def utcnow() -> datetime:
    """The current time, UTC, timezone-aware."""
    return datetime.now(UTC)


@dataclass(slots=True)
class RunRecord:
    """One run: its public fields (``to_api``) plus what the sandbox needs to carry it on.

    Slotted: thousands of runs in flight each hold one, so it carries no per-instance dict.
    """

    id: str
    deployment_id: str
    workflow_id: str
    workflow_version_id: str
    machine_id: str
    gpu: str
    workflow_inputs: dict[str, Any]
    webhook: str | None
    webhook_intermediate_status: bool
    number: int
    created_at: datetime
    #: the run's own duration, fixed at creation so a restart with another config resumes it as planned
    run_seconds: float
    #: why the run will fail (a fault or a bad input), decided at creation
    planned_failure: str | None = None
    #: fail before executing any node (bad inputs) rather than part-way through (a fault)
    fail_early: bool = False
    #: how many timeline steps have been applied (kept in memory only: a resumed run is placed by the clock)
    step: int = 0
    status: RunStatus = RunStatus.NOT_STARTED
    updated_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    live_status: str | None = None
    progress: float = 0.0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    run_duration: float = 0.0
    cold_start_duration: float = 0.0
    gpu_event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    modal_function_call_id: str = field(default_factory=lambda: f"fc-sandbox-{uuid.uuid4().hex[:20]}")

    @property
    def is_terminal(self) -> bool:
        """Success, failed, cancelled and timeout are final."""
        return self.status.is_terminal

    def finish(self, status: RunStatus, *, at: datetime) -> None:
        """Move to a terminal status and fill the durations ComfyDeploy reports."""
        self.status = status
        self.ended_at = self.updated_at = at
        self.duration = round((at - self.created_at).total_seconds(), 3)
        if self.started_at is not None:
            self.run_duration = round(max(0.0, (at - self.started_at).total_seconds()), 3)

    def to_api(self) -> dict[str, Any]:
        """The run as ``GET /api/run/{run_id}`` returns it (reference §A.4), except ``webhook``.

        The webhook URL carries the per-generation token that authenticates its posts: whoever reads a
        run must never learn it, so the field is left out (no client of ours reads it).
        """
        return {
            "id": self.id,
            "workflow_version_id": self.workflow_version_id,
            "workflow_inputs": self.workflow_inputs,
            "workflow_id": self.workflow_id,
            "machine_id": self.machine_id,
            "origin": "api",
            "status": self.status.value,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at or self.created_at),
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "gpu_event_id": self.gpu_event_id,
            "gpu": self.gpu,
            "machine_version": None,
            "machine_type": "comfy-deploy-serverless",
            "modal_function_call_id": self.modal_function_call_id,
            "user_id": "user_sandbox",
            "org_id": None,
            "live_status": self.live_status,
            "progress": self.progress,
            "is_realtime": False,
            "webhook_status": None,
            "webhook_intermediate_status": self.webhook_intermediate_status,
            "number": self.number,
            "duration": self.duration,
            "cold_start_duration": self.cold_start_duration,
            "cold_start_duration_total": self.cold_start_duration,
            "run_duration": self.run_duration,
            "queue_position": None,
            "outputs": self.outputs,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything but the step counter, for the run's file."""
        data = asdict(self)
        del data["step"]
        data["status"] = self.status.value
        for name in _TIME_FIELDS:
            data[name] = iso(getattr(self, name))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The inverse of ``to_json``; unknown keys are ignored so old files keep loading."""
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for name in _TIME_FIELDS:
            values[name] = parse_iso(values.get(name))
        values["status"] = RunStatus(values["status"])
        return cls(**values)


class RunStore:
    """Every run written to ``<directory>/<run id>.json`` atomically; only unfinished runs stay in memory.

    A run's file is written when it is created (what it was asked to do) and when it ends (its result),
    never in between: where a live run is in its timeline follows from its creation time, so a restarted
    server places it by the clock. A finished run is read back from its file when asked for, so memory
    holds the runs in flight, not every run the sandbox ever made.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._runs: dict[str, RunRecord] = {}
        self._last_number = 0
        directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(directory.glob("*.json")):
            record = self._read(path)
            if record is None:
                continue
            self._last_number = max(self._last_number, record.number)
            if not record.is_terminal:
                self._runs[record.id] = record

    @staticmethod
    def _read(path: Path) -> RunRecord | None:
        try:
            return RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("sandbox skipped an unreadable run file %s: %r", path.name, exc)
            return None

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id (a finished one from its file); None for an id that is not a run id."""
        record = self._runs.get(run_id)
        if record is not None:
            return record
        try:
            canonical = str(uuid.UUID(run_id))
        except ValueError:
            return None  # never a path: ids come from URLs
        return self._read(self._directory / f"{canonical}.json") if canonical == run_id else None

    def live(self, run_id: str) -> RunRecord | None:
        """The run if it is in memory (unfinished, or finished and being written), never read from disk."""
        return self._runs.get(run_id)

    def in_memory(self) -> int:
        """How many runs are held in memory (the unfinished ones)."""
        return len(self._runs)

    def add(self, record: RunRecord) -> None:
        """A new run: held in memory and its file written before anyone learns its id."""
        self._runs[record.id] = record
        self._write(record.id, record.to_json())

    async def save_finished(self, record: RunRecord) -> None:
        """Write a finished run's file (off the event loop), then drop it from memory.

        Until the file is written the run is still answered from memory, so a read never sees
        the older file.
        """
        await asyncio.to_thread(self._write, record.id, record.to_json())
        if self._runs.get(record.id) is record:
            del self._runs[record.id]

    def _write(self, run_id: str, data: dict[str, Any]) -> None:
        """Write a run's file (temp file + rename, so a crash never leaves half a record)."""
        descriptor, temp_name = tempfile.mkstemp(dir=self._directory, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(temp_name, self._directory / f"{run_id}.json")
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def unfinished(self) -> list[RunRecord]:
        """Runs that have not reached a terminal status, oldest first."""
        return sorted((r for r in self._runs.values() if not r.is_terminal), key=lambda r: r.created_at)

    def next_number(self) -> int:
        """The next run number (ComfyDeploy numbers runs 1, 2, 3, …)."""
        self._last_number += 1
        return self._last_number
