"""Backend port fakes: a real backend behind a gate, for races the real one cannot be made to lose."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from noema.domain.runs import (
    DeploymentInfo,
    MachineInfo,
    RunUpdate,
    UploadedFile,
    WorkflowInfo,
    WorkflowVersionInfo,
)
from noema.ports import Backend


class PassThroughBackend(Backend):
    """Passes every call to ``inner``; subclasses change the calls a test is about."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.label = inner.label

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """As the real backend."""
        return await self.inner.queue_run(deployment_id=deployment_id, inputs=inputs, webhook_url=webhook_url)

    async def get_run(self, run_id: str) -> RunUpdate:
        """As the real backend."""
        return await self.inner.get_run(run_id)

    async def cancel_run(self, run_id: str) -> None:
        """As the real backend."""
        await self.inner.cancel_run(run_id)

    async def list_deployments(self) -> list[DeploymentInfo]:
        """As the real backend."""
        return await self.inner.list_deployments()

    async def list_machines(self) -> list[MachineInfo]:
        """As the real backend."""
        return await self.inner.list_machines()

    async def list_workflows(self) -> list[WorkflowInfo]:
        """As the real backend."""
        return await self.inner.list_workflows()

    async def list_workflow_versions(self, workflow_id: str) -> list[WorkflowVersionInfo]:
        """As the real backend."""
        return await self.inner.list_workflow_versions(workflow_id)

    async def upload_file(self, *, filename: str, content: bytes, content_type: str) -> UploadedFile:
        """As the real backend."""
        return await self.inner.upload_file(filename=filename, content=content, content_type=content_type)


class SlowSubmitBackend(PassThroughBackend):
    """``queue_run`` makes the run at the real backend, then holds its answer until ``answer`` is set.

    That is a submit whose response is slow (a large upload, a congested link): the backend has
    the run while Noema still thinks the generation is pending.
    """

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.run_made = asyncio.Event()
        self.answer = asyncio.Event()
        self.run_ids: list[str] = []

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """Queue at the real backend, then wait for the test before answering."""
        run_id = await self.inner.queue_run(deployment_id=deployment_id, inputs=inputs, webhook_url=webhook_url)
        self.run_ids.append(run_id)
        self.run_made.set()
        await self.answer.wait()
        return run_id
