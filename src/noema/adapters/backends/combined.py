"""Two backends at once: the operator's own ComfyUI servers and a cloud (ComfyDeploy, or the sandbox).

The catalogs are joined: each tool runs on the backend that has it. A cloud deployment with the
name of a workflow on the own servers stands in for it (hidden, as ``NAME_cloud``): the own servers
run the tool, the cloud takes the run when they are down or full. Files given as inputs are kept
in Noema's media store until the run's backend is known; the cloud gets its own upload then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from noema.adapters.backends.comfyui.backend import ComfyUIBackend
from noema.adapters.backends.comfyui.runs import RUN_PREFIX
from noema.adapters.media_store import INLINE_TYPES
from noema.domain.catalog_names import command_name
from noema.domain.runs import DeploymentInfo, MachineInfo, RunUpdate, UploadedFile, WorkflowInfo, WorkflowVersionInfo
from noema.ports import Backend

STAND_IN_SUFFIX = "_cloud"


class CombinedBackend:
    """Own ComfyUI servers first, a cloud beside them, as one ``Backend``."""

    def __init__(self, own: ComfyUIBackend, cloud: Backend) -> None:
        self.own, self.cloud = own, cloud
        self.label = f"{own.label} + {cloud.label}"

    def _owns(self, deployment_id: str) -> bool:
        return deployment_id in self.own.workflows

    def _for_run(self, run_id: str) -> Backend:
        return self.own if run_id.startswith(RUN_PREFIX) else self.cloud

    async def has_room(self, deployment_id: str) -> bool:
        """Own servers: whether the run would start now; the cloud always takes it."""
        return await self.own.has_room(deployment_id) if self._owns(deployment_id) else True

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """Queue on the backend that has the deployment (the cloud gets its own copy of stored files)."""
        if self._owns(deployment_id):
            return await self.own.queue_run(deployment_id=deployment_id, inputs=inputs, webhook_url=webhook_url)
        values = {name: await self._to_cloud(value) for name, value in inputs.items()}
        return await self.cloud.queue_run(deployment_id=deployment_id, inputs=values, webhook_url=webhook_url)

    async def _to_cloud(self, value: Any) -> Any:
        stored = await self.own.store.read(value) if isinstance(value, str) else None
        if stored is None:
            return value
        name, content = stored
        mime = INLINE_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream").split(";")[0]
        uploaded = await self.cloud.upload_file(filename=name, content=content, content_type=mime)
        return uploaded.url

    async def get_run(self, run_id: str) -> RunUpdate:
        """From the backend that made the run (own run ids carry their own prefix)."""
        return await self._for_run(run_id).get_run(run_id)

    async def cancel_run(self, run_id: str) -> None:
        """At the backend that made the run."""
        await self._for_run(run_id).cancel_run(run_id)

    async def upload_file(self, *, filename: str, content: bytes, content_type: str) -> UploadedFile:
        """Kept in Noema's media store: the run's backend is not chosen yet."""
        return await self.own.upload_file(filename=filename, content=content, content_type=content_type)

    async def list_deployments(self) -> list[DeploymentInfo]:
        """Both catalogs; a cloud deployment named like an own workflow stands in for it."""
        own = [replace(d, backend_label=self.own.label) for d in await self.own.list_deployments()]
        names = {command_name(d.name): d.id for d in own}
        cloud = []
        for d in await self.cloud.list_deployments():
            twin = names.get(command_name(d.name)) if isinstance(d.name, str) else None
            if twin is not None and not self._owns(d.id):
                d = replace(d, name=f"{d.name}{STAND_IN_SUFFIX}", stands_in_for=twin)
            cloud.append(replace(d, backend_label=self.cloud.label))
        return own + [d for d in cloud if not self._owns(d.id)]

    async def list_machines(self) -> list[MachineInfo]:
        """The own servers and the cloud's machines."""
        return await self.own.list_machines() + await self.cloud.list_machines()

    async def list_workflows(self) -> list[WorkflowInfo]:
        """The own workflow files and the cloud's workflows."""
        return await self.own.list_workflows() + await self.cloud.list_workflows()

    async def list_workflow_versions(self, workflow_id: str) -> list[WorkflowVersionInfo]:
        """From the backend that has the workflow."""
        if self._owns(workflow_id):
            return await self.own.list_workflow_versions(workflow_id)
        return await self.cloud.list_workflow_versions(workflow_id)
