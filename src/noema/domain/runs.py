"""What a GPU backend tells Noema: deployments, machines, workflows, runs and their outputs.

These are the backend-neutral shapes every backend adapter translates its wire format into.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class RunStatus(str, Enum):
    """A run's status as the backend reports it (ComfyDeploy's names)."""

    NOT_STARTED = "not-started"
    QUEUED = "queued"
    STARTED = "started"
    RUNNING = "running"
    UPLOADING = "uploading"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def is_terminal(self) -> bool:
        """Success, failed, cancelled and timeout are final."""
        return self in TERMINAL_RUN_STATUSES


TERMINAL_RUN_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT})


class OutputKind(str, Enum):
    IMAGE = "image"
    ANIMATION = "animation"
    VIDEO = "video"
    AUDIO = "audio"
    TEXT = "text"
    FILE = "file"


@dataclass(frozen=True)
class RunOutput:
    """One output of a run: a media file at a URL, or a text."""

    kind: OutputKind
    url: str | None = None
    filename: str | None = None
    mime_type: str | None = None
    text: str | None = None
    node_id: str | None = None
    output_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A plain dict for storage."""
        return {k: v.value if isinstance(v, Enum) else v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOutput:
        """The inverse of ``to_json``."""
        return cls(**{**data, "kind": OutputKind(data["kind"])})


@dataclass(frozen=True)
class RunUpdate:
    """One observation of a run: from a webhook or from polling the backend."""

    run_id: str
    status: RunStatus | None = None
    progress: float | None = None
    live_status: str | None = None
    outputs: tuple[RunOutput, ...] = ()
    gpu: str | None = None
    error: str | None = None
    #: the backend's own clock: when the run started on the GPU and when it ended (GET only)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: the backend itself said this (our GET), not a webhook body anyone with the URL could send
    confirmed: bool = False
    #: the GPU rate of the machine that ran it, when machines of one tool differ (a self-hosted pool)
    rate_nanos_per_second: int | None = None


@dataclass(frozen=True)
class InputSpec:
    """One external input of a workflow, as the backend describes it."""

    input_id: str
    class_type: str
    type: str | None = None
    default_value: Any = None
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None
    display_name: str | None = None
    description: str | None = None
    enum_options: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployed workflow version on a machine: what becomes a tool."""

    id: str
    name: str
    workflow_id: str | None = None
    workflow_version_id: str | None = None
    machine_id: str | None = None
    environment: str | None = None
    description: str | None = None
    input_types: tuple[InputSpec, ...] | None = None
    output_types: tuple[str, ...] = ()  # class types of the output nodes
    #: why no server can run it (self-hosted ComfyUI): the tool is listed disabled with this reason
    problem: str | None = None
    expected_seconds: float | None = None  #: the workflow's own estimate, if it gives one
    max_seconds: float | None = None  #: the workflow's own time limit, if it gives one
    backend_label: str | None = None  #: which backend has it, when Noema joins two (else the catalog's label)
    #: the deployment this one stands in for when that one cannot take a run (the same name on own servers)
    stands_in_for: str | None = None


@dataclass(frozen=True)
class MachineInfo:
    """A machine and the GPU it runs on (the price key)."""

    id: str
    name: str
    gpu: str | None = None


@dataclass(frozen=True)
class WorkflowInfo:
    id: str
    name: str


@dataclass(frozen=True)
class WorkflowVersionInfo:
    """A workflow version: its UI graph (for Note nodes) and API graph (for inputs and outputs)."""

    id: str
    workflow_id: str
    version: int | None = None
    workflow: dict[str, Any] = field(default_factory=dict)
    workflow_api: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadedFile:
    """A file stored at the backend, usable as an input value."""

    file_id: str
    url: str
