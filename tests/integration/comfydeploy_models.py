"""ComfyDeploy's response models as its API server publishes them (pydantic), for checking the sandbox.

Written from /work/shared/reference/comfydeploy-api.md (§A.2-A.12, CDAPI ``types.py``, the SDK's
``deploymentmodel.py``/``workflowrunmodel.py``/``FileUploadResponse``). The rules that matter:

- A field typed ``X | None`` with no default is *required*: the server always sends the key (pydantic
  v2 semantics, as in the published models), so a sandbox that leaves one out fails here.
- ``InputModel.type`` is a required string: ComfyDeploy only lists inputs whose node class is in its
  class -> type map, so it never sends ``"type": null``.
- Extra keys are allowed (the server spreads a node's own inputs into each ``InputModel``).

Two deliberate departures, both from the reference: a run's ``workflow_api`` is never returned
(§A.4) and the sandbox leaves ``webhook`` out of a run (it carries the generation's token), so both
may be missing; and the GPU list is the reference's newer one (``CPU``, ``H200``, ``B200`` included).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Gpu = Literal["CPU", "T4", "L4", "A10G", "L40S", "A100", "A100-80GB", "H100", "H200", "B200"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunStatus(StrEnum):
    NOT_STARTED = "not-started"
    RUNNING = "running"
    UPLOADING = "uploading"
    SUCCESS = "success"
    FAILED = "failed"
    STARTED = "started"
    QUEUED = "queued"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class Environment(StrEnum):
    STAGING = "staging"
    PRODUCTION = "production"
    PUBLIC_SHARE = "public-share"
    PRIVATE_SHARE = "private-share"
    PREVIEW = "preview"
    COMMUNITY_SHARE = "community-share"


class InputModel(_Model):
    type: str
    class_type: str
    input_id: str
    default_value: str | int | float | bool | list[Any] | None = None
    min_value: int | float | None = None
    max_value: int | float | None = None
    display_name: str = ""
    description: str = ""
    enum_options: list[str] | None = None
    step: int | float | None = None


class OutputModel(_Model):
    class_type: str
    output_id: str


class NamedRef(_Model):
    id: UUID
    name: str


class DeploymentModel(_Model):
    id: UUID
    user_id: str
    org_id: str | None
    workflow_version_id: UUID
    workflow_id: UUID
    machine_id: UUID
    share_slug: str | None
    description: str | None
    share_options: dict[str, Any] | None
    showcase_media: list[dict[str, Any]] | None
    environment: Environment
    created_at: datetime
    updated_at: datetime
    workflow: NamedRef | None = None
    machine: NamedRef | None = None
    input_types: list[InputModel] | None = None
    output_types: list[OutputModel] | None = None


class MachineModel(_Model):
    id: UUID
    user_id: str
    name: str
    org_id: str | None
    endpoint: str
    created_at: datetime
    updated_at: datetime
    disabled: bool = False
    gpu: Gpu | None = None
    status: Literal["not-started", "ready", "building", "error", "running", "paused", "starting"] = "ready"
    type: Literal[
        "classic", "runpod-serverless", "modal-serverless", "comfy-deploy-serverless", "workspace", "workspace-v2"
    ] = "classic"
    machine_version: str | None
    build_log: str | None
    auth_token: str | None
    snapshot: dict[str, Any] | None
    models: dict[str, Any] | None
    ws_gpu: Literal["4090"] | None
    pod_id: str | None
    build_machine_instance_id: str | None
    modal_app_id: str | None
    target_workflow_id: UUID | None
    dependencies: dict[str, Any] | None
    object_info: dict[str, Any] | None
    object_info_str: str | None
    filename_list_cache: dict[str, Any] | None
    extensions: dict[str, Any] | None
    import_failed_logs: str | None
    machine_version_id: UUID | None


class WorkflowModel(_Model):
    id: UUID
    user_id: str
    org_id: str | None
    name: str
    selected_machine_id: UUID | None
    created_at: datetime
    updated_at: datetime
    pinned: bool = False
    deleted: bool = False


class WorkflowVersionModel(_Model):
    id: UUID
    workflow_id: UUID
    workflow: dict[str, Any]
    workflow_api: dict[str, Any] | None
    user_id: str | None
    comment: str | None
    version: int
    snapshot: dict[str, Any] | None
    dependencies: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class MediaItem(_Model):
    url: str
    type: str  #: ComfyUI's folder type ("output"), not a MIME type
    filename: str
    is_public: bool | None = None
    subfolder: str | None = None
    upload_duration: float | None = None


class WorkflowRunOutputModel(_Model):
    id: UUID
    run_id: UUID
    data: dict[str, list[MediaItem | str | bool]]
    node_meta: Any
    created_at: datetime
    updated_at: datetime
    type: str | None = None
    node_id: str | None = None


class WorkflowRunModel(_Model):
    id: UUID
    workflow_version_id: UUID | None
    workflow_inputs: Any
    workflow_id: UUID
    workflow_api: Any = None
    machine_id: UUID | None
    origin: str
    status: RunStatus
    ended_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    gpu_event_id: str | None
    gpu: str | None
    machine_version: str | None
    machine_type: str | None
    modal_function_call_id: str | None
    user_id: str | None
    org_id: str | None
    live_status: str | None
    progress: float = 0
    is_realtime: bool = False
    webhook: str | None = None
    webhook_status: str | None
    webhook_intermediate_status: bool = False
    outputs: list[WorkflowRunOutputModel] = Field(default_factory=list)
    number: int
    duration: float | None
    cold_start_duration: float | None
    cold_start_duration_total: float | None
    run_duration: float | None


class WorkflowRunWebhookBody(_Model):
    event_type: Literal["run.updated", "run.output"]
    run_id: str
    status: RunStatus
    live_status: str | None
    progress: float = 0
    outputs: list[WorkflowRunOutputModel] = Field(default_factory=list)


class CreateRunResponse(_Model):
    run_id: UUID


class CancelResponse(_Model):
    status: str
    message: str


class FileUploadResponse(_Model):
    message: str
    file_id: str
    file_name: str
    file_url: str


class ErrorDetail(_Model):
    detail: str | list[dict[str, Any]]
