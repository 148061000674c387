"""One run of a self-hosted ComfyUI workflow as Noema follows it, and what its states become as ``RunUpdate``s.

A run waits in Noema, is submitted to one server under a prompt id of Noema's choosing, and ends
with the server's history: its outputs are copied into Noema's media store, its times are the
server's own ``execution_start`` and end, so the bill is the server's GPU time.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

from noema.adapters.backends.comfyui.client import ComfyUIClient
from noema.adapters.backends.comfyui.links import LinkFetcher
from noema.adapters.backends.comfyui.models import PromptResult, PromptStatus
from noema.adapters.backends.comfyui.pool import Server
from noema.adapters.backends.comfyui.progress import PromptState
from noema.adapters.media_store import INLINE_TYPES, MediaStore
from noema.domain.catalog_graph import EXTERNAL_PREFIX
from noema.domain.comfyui_workflows import WorkflowTool
from noema.domain.errors import InvalidInput
from noema.domain.inputs import MAX_UPLOAD_BYTES
from noema.domain.progress_words import progress_text
from noema.domain.runs import InputSpec, OutputKind, RunOutput, RunStatus, RunUpdate
from noema.domain.tools import InputType, ToolInput

RESTARTED = "The GPU server restarted and lost this run; nothing was charged."


@dataclass
class Run:
    """A run from ``queue_run`` to its end."""

    id: str
    tool: WorkflowTool
    values: dict[str, Any]
    images: dict[str, tuple[str, bytes, str]]  #: image input → (file name, bytes, content type)
    generation_id: str | None
    server: Server | None = None
    prompt_id: str | None = None
    state: PromptState | None = None
    resubmitted: bool = False
    submitted: bool = False  #: the server answered the POST (or may have queued it): ask it about the run
    cancel_requested: bool = False
    final: RunUpdate | None = None
    last_push: float = 0.0
    told_ahead: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def started(self) -> bool:
        """The server began it (so a lost run is not run again)."""
        return self.state is not None and self.state.started_at is not None


RUN_PREFIX = "cui_"  #: every run id the ComfyUI backend hands out starts so (two backends tell runs apart by it)


def new_run_id() -> str:
    """A run id the ComfyUI backend hands out."""
    return f"{RUN_PREFIX}{uuid.uuid4().hex}"


def generation_of(webhook_url: str | None) -> str | None:
    """The generation id the webhook URL names in its query (the service puts it there)."""
    if not webhook_url:
        return None
    found = parse_qs(urlsplit(webhook_url).query).get("generation_id")
    return found[0] if found else None


_CLASS_OF = {
    InputType.TEXT: "Text",
    InputType.IMAGE: "Image",
    InputType.NUMBER: "Number",
    InputType.INTEGER: "NumberInt",
    InputType.BOOLEAN: "Boolean",
    InputType.ENUM: "Enum",
    InputType.SEED: "Seed",
    InputType.LORA: "Lora",
    InputType.CHECKPOINT: "Checkpoint",
    InputType.VIDEO: "Video",
    InputType.AUDIO: "Audio",
    InputType.FILE: "File",
}


def input_spec(spec: ToolInput) -> InputSpec:
    """A workflow tool's input as the catalog reads inputs (the ``ComfyUIDeployExternal*`` vocabulary)."""
    if spec.type is InputType.SLIDER:
        suffix = "NumberSliderInt" if spec.integer else "NumberSlider"
    else:
        suffix = _CLASS_OF[spec.type]
    return InputSpec(
        input_id=spec.name,
        class_type=EXTERNAL_PREFIX + suffix,
        type="string" if spec.type is InputType.TEXT else None,
        default_value=spec.default,
        min_value=spec.minimum,
        max_value=spec.maximum,
        step=spec.step,
        display_name=spec.display_name,
        description=spec.description,
        enum_options=spec.options or None,
    )


async def image_inputs(
    tool: WorkflowTool, values: Mapping[str, Any], store: MediaStore, links: LinkFetcher | None = None
) -> dict[str, tuple[str, bytes, str]]:
    """The bytes of each image input: a file in Noema's media store, a data: URI, or an allowed public link."""
    images: dict[str, tuple[str, bytes, str]] = {}
    for spec in tool.inputs:
        value = values.get(spec.name)
        if spec.type is not InputType.IMAGE or value is None:
            continue
        if isinstance(value, str) and value.startswith("data:"):
            images[spec.name] = _decode(spec.name, value)
            continue
        stored = await store.read(value) if isinstance(value, str) else None
        if stored is None and links is not None and isinstance(value, str) and _is_link(value):
            images[spec.name] = await links.picture(spec.name, value)
            continue
        if stored is None:
            raise InvalidInput(
                f"The input {spec.name!r} must be an uploaded picture; links to other sites are not fetched.",
                details={"field": spec.name},
            )
        name, content = stored
        images[spec.name] = (name, content, _mime(name))
    return images


def _is_link(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def _decode(name: str, uri: str) -> tuple[str, bytes, str]:
    header, _, payload = uri.partition(",")
    mime = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    try:
        content = base64.b64decode(payload, validate=True)
    except ValueError:
        raise InvalidInput(f"The picture for {name!r} is not valid base64.", details={"field": name}) from None
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            f"The picture for {name!r} is larger than {MAX_UPLOAD_BYTES // 2**20} MB.", details={"field": name}
        )
    return f"input.{mime.split('/')[-1][:8]}", content, mime


def _mime(filename: str) -> str:
    found = INLINE_TYPES.get(PurePosixPath(filename).suffix.lower(), "application/octet-stream")
    return found.split(";")[0]


def with_nonce(prompt: dict[str, Any], nonce: str) -> dict[str, Any]:
    """Every ``filename_prefix`` made unique to this submission: the server's cache never answers a rerun."""
    for node in prompt.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if isinstance(inputs, dict) and isinstance(inputs.get("filename_prefix"), str):
            inputs["filename_prefix"] = f"{inputs['filename_prefix']}_{nonce}"
    return prompt


def waiting_update(run_id: str, ahead: int) -> RunUpdate:
    """A run still in Noema's line."""
    return RunUpdate(
        run_id=run_id, status=RunStatus.QUEUED, live_status=f"waiting for a GPU server: {ahead} ahead of you"
    )


def started_update(run: Run, server: Server, at: datetime | None) -> RunUpdate:
    """The server began the run (its own clock): from now on it is billed at this server's rate."""
    return RunUpdate(
        run_id=run.id,
        status=RunStatus.RUNNING,
        progress=0.0,
        gpu=server.gpu,
        started_at=at,
        confirmed=True,
        rate_nanos_per_second=server.rate,
        live_status="running on a GPU server",
    )


def progress_update(run: Run, server: Server) -> RunUpdate:
    """How far the run is, in words from the node it is on and its sampler steps."""
    state = run.state
    node = run.tool.graph.get(state.current or "") if state else None
    words = progress_text(node.get("class_type") if isinstance(node, dict) else None, state.steps if state else None)
    progress = state.progress if state else None
    return RunUpdate(run_id=run.id, status=RunStatus.RUNNING, progress=progress, gpu=server.gpu, live_status=words)


def failed(run: Run, reason: str) -> RunUpdate:
    """The run ended without running (or its run is lost): never charged."""
    gpu, rate = (run.server.gpu, run.server.rate) if run.server else (None, None)
    return RunUpdate(
        run_id=run.id, status=RunStatus.FAILED, error=reason[:500], gpu=gpu, confirmed=True, rate_nanos_per_second=rate
    )


async def final_update(run: Run, result: PromptResult, client: ComfyUIClient, store: MediaStore) -> RunUpdate:
    """The end of the run from the server's history: outputs copied into the media store, the server's times."""
    gpu, rate = (run.server.gpu, run.server.rate) if run.server else (None, None)
    common: dict[str, Any] = {
        "run_id": run.id,
        "gpu": gpu,
        "rate_nanos_per_second": rate,  # the pool's GPUs differ: charged at this server's own rate
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "confirmed": True,
    }
    if result.status is PromptStatus.INTERRUPTED:
        return RunUpdate(status=RunStatus.CANCELLED, error="Cancelled.", **common)
    if result.status is PromptStatus.ERROR:
        reason = f"The workflow failed on the GPU server ({result.error or 'no reason given'}); nothing was charged."
        return RunUpdate(status=RunStatus.FAILED, error=reason[:500], **common)
    outputs: list[RunOutput] = []
    for output in result.outputs:
        if output.text is not None:
            outputs.append(RunOutput(kind=OutputKind.TEXT, text=output.text, node_id=output.node_id))
            continue
        if output.type == "temp":  # previews are not results
            continue
        content = await client.view(output.filename, output.subfolder, output.type)
        url = await store.save(content, output.filename)
        name = url.rsplit("/", 1)[-1]
        kind = OutputKind(output.kind.value)
        outputs.append(RunOutput(kind=kind, url=url, filename=name, mime_type=_mime(name), node_id=output.node_id))
    return RunUpdate(status=RunStatus.SUCCESS, progress=1.0, outputs=tuple(outputs), **common)
