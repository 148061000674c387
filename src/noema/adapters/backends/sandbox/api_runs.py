"""``/api`` routes for runs and uploads, in ComfyDeploy's V2 shapes (reference §A.2-§A.4, §A.9)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from noema.adapters.backends.sandbox.files import ALLOWED_UPLOAD_PREFIXES
from noema.adapters.backends.sandbox.state import State
from noema.adapters.backends.sandbox.webhooks import webhook_allowed
from noema.config.sandbox_faults import Fault

GpuName = Literal["CPU", "T4", "L4", "A10G", "L40S", "A100", "A100-80GB", "H100", "H200", "B200"]
InputValue = str | int | float | bool | list[Any]
_UPLOAD_CHUNK = 1024 * 1024
CANCEL_UNKNOWN_DETAIL = "Error cancel function 404: Run not found or has no modal function call ID"

router = APIRouter()


class DeploymentRunRequest(BaseModel):
    """The body of ``POST /api/run/deployment/queue``; unknown fields are ignored like upstream."""

    model_config = ConfigDict(extra="ignore")

    deployment_id: str = Field(max_length=100)
    inputs: dict[str, InputValue] = Field(default_factory=dict)
    webhook: str | None = Field(default=None, max_length=4096)
    webhook_intermediate_status: bool = False
    gpu: GpuName | None = None


@router.post("/run/deployment/queue", tags=["run"], response_model=None)
async def queue_deployment_run(body: DeploymentRunRequest, state: State) -> dict[str, str] | JSONResponse:
    """Queue a run of a deployment; returns its run id at once."""
    if state.dice.hit(Fault.SUBMIT_ERROR):
        # The real service answers both ways under load; neither creates a run.
        if state.dice.coin():
            return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
        return JSONResponse({"detail": "Too Many Requests"}, status_code=429, headers={"Retry-After": "1"})
    deployment = state.catalog.deployment(body.deployment_id)
    if deployment is None:
        raise HTTPException(404, "Deployment not found")
    if body.webhook is not None and not webhook_allowed(body.webhook, state.config.webhook_base):
        base = state.config.webhook_base
        where = f"URLs under {base}" if base else "no URL (none is configured)"
        raise HTTPException(400, f"Invalid webhook: this sandbox posts webhooks only to {where}")
    record = state.engine.submit(
        deployment,
        inputs=body.inputs,
        webhook=body.webhook,
        intermediate=body.webhook_intermediate_status,
        gpu=body.gpu,
    )
    return {"run_id": record.id}


@router.get("/run/{run_id}", tags=["run"])
async def get_run(run_id: str, state: State, queue_position: bool = False) -> dict[str, Any]:
    """The run with its status, progress and outputs so far."""
    record = state.store.get(run_id)
    if record is None:
        raise HTTPException(404, "Run not found")
    return record.to_api()


@router.post("/run/{run_id}/cancel", tags=["run"])
async def cancel_run(run_id: str, state: State) -> dict[str, str]:
    """Cancel a run; a finished run keeps its status."""
    if state.engine.cancel(run_id) is None:
        # Upstream's generic ``except`` swallows its own 404 and answers 500; clients meet exactly this.
        raise HTTPException(500, CANCEL_UNKNOWN_DETAIL)
    return {"status": "success", "message": "Function cancelled"}


async def _read_capped(upload: UploadFile, limit: int) -> bytes:
    body = bytearray()
    while chunk := await upload.read(_UPLOAD_CHUNK):
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"File too large: the limit is {limit / (1024 * 1024):g} MB")
    return bytes(body)


@router.post("/file/upload", tags=["file"])
async def upload_file(file: Annotated[UploadFile, File()], state: State) -> dict[str, str]:
    """Store a file and return a URL usable as an input value."""
    content_type = (file.content_type or "").lower()
    if not content_type.startswith(ALLOWED_UPLOAD_PREFIXES):
        raise HTTPException(
            400,
            f"Invalid file type {content_type or 'unknown'!r}: only image, video, application and "
            "audio files are allowed",
        )
    content = await _read_capped(file, state.config.max_upload_bytes)
    file_id, file_name, file_url = await asyncio.to_thread(
        state.files.save_upload, file.filename, content_type, content
    )
    return {"message": "File uploaded successfully", "file_id": file_id, "file_name": file_name, "file_url": file_url}
