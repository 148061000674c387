"""A scripted GPU backend and quiet metrics, for running the generation use case at unit speed.

The backend lists the deployments it is given, hands out run ids in order, and raises the errors a
test queues for a deployment; it remembers every run it queued (what the test asserts on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from noema.domain.errors import ExternalServiceError
from noema.domain.runs import (
    DeploymentInfo,
    InputSpec,
    MachineInfo,
    RunStatus,
    RunUpdate,
    UploadedFile,
    WorkflowInfo,
    WorkflowVersionInfo,
)
from noema.ports import Backend, Metrics

MACHINES = [MachineInfo(id="m-a10g", name="a10g", gpu="A10G"), MachineInfo(id="m-h100", name="h100", gpu="H100")]


def text_deployment(name: str, *, machine_id: str = "m-a10g") -> DeploymentInfo:
    """A text-to-image deployment called ``name`` (its tool's command) with one text input."""
    spec = InputSpec(input_id="input_text", class_type="ComfyUIDeployExternalText")
    return DeploymentInfo(
        id=f"dep-{name}",
        name=name,
        machine_id=machine_id,
        input_types=(spec,),
        output_types=("ComfyDeployOutputImage",),
    )


@dataclass
class QueuedRun:
    """One run the backend accepted."""

    run_id: str
    deployment_id: str
    inputs: dict[str, Any]
    webhook_url: str | None


class ScriptedBackend(Backend):
    """Deployments to list, errors to raise, runs remembered."""

    label = "scripted"

    def __init__(self, deployments: list[DeploymentInfo]) -> None:
        self.deployments = deployments
        self.failures: dict[str, list[ExternalServiceError]] = {}  #: deployment id -> errors, raised in order
        self.runs: list[QueuedRun] = []
        self.cancelled: list[str] = []

    def fail_next(self, deployment_id: str, error: ExternalServiceError) -> None:
        """Make the next queue_run of ``deployment_id`` raise ``error``."""
        self.failures.setdefault(deployment_id, []).append(error)

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """A new run id, or the error queued for this deployment."""
        if self.failures.get(deployment_id):
            raise self.failures[deployment_id].pop(0)
        run = QueuedRun(f"run-{len(self.runs) + 1}", deployment_id, dict(inputs), webhook_url)
        self.runs.append(run)
        return run.run_id

    async def get_run(self, run_id: str) -> RunUpdate:
        """Every run it took is still queued."""
        return RunUpdate(run_id=run_id, status=RunStatus.QUEUED)

    async def cancel_run(self, run_id: str) -> None:
        """Remember the cancel."""
        self.cancelled.append(run_id)

    async def list_deployments(self) -> list[DeploymentInfo]:
        """The deployments it was given."""
        return list(self.deployments)

    async def list_machines(self) -> list[MachineInfo]:
        """An A10G and an H100."""
        return list(MACHINES)

    async def list_workflows(self) -> list[WorkflowInfo]:
        """None."""
        return []

    async def list_workflow_versions(self, workflow_id: str) -> list[WorkflowVersionInfo]:
        """None."""
        return []

    async def upload_file(self, *, filename: str, content: bytes, content_type: str) -> UploadedFile:
        """A made-up URL."""
        return UploadedFile(file_id=filename, url=f"https://files.test/{filename}")


@dataclass
class CountingMetrics(Metrics):
    """Counts what the services report, by name."""

    counts: dict[str, int] = field(default_factory=dict)

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def generation_status(self, status: str) -> None:
        """Count a status reached."""
        self._count(f"status:{status}")

    def webhook_applied(self, seconds: float) -> None:
        """Count a webhook."""
        self._count("webhook")

    def delivery(self, platform: str, outcome: str) -> None:
        """Count a delivery outcome."""
        self._count(f"delivery:{outcome}")

    def backend_error(self, kind: str) -> None:
        """Count a backend error by kind."""
        self._count(f"backend_error:{kind}")
