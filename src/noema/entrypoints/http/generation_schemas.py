"""JSON shapes of tools and generations (public and internal APIs)."""

from __future__ import annotations

import mimetypes
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from noema.domain.generation import Generation, gpu_window
from noema.domain.ids import short_id
from noema.domain.money import format_usd
from noema.domain.tools import Tool, ToolInput
from noema.entrypoints.http.schemas import ApiModel
from noema.services.lora_prompts import applied_loras, lora_warnings


class ToolInputOut(ApiModel):
    name: str
    type: str
    required: bool
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: list[str] = []
    display_name: str | None = None
    description: str | None = None


class ToolOut(ApiModel):
    id: str
    command: str
    display_name: str
    description: str
    primary_input: str
    output_kind: str | None
    category: str
    inputs: list[ToolInputOut]
    enabled: bool
    disabled_reason: str | None
    gpu: str | None
    usd_per_second: str | None
    expected_seconds: float
    estimated_cost_usd: str | None
    backend: str
    base_model: str | None = Field(default=None, description="The checkpoint's family: which LoRAs apply.")


def _input_out(i: ToolInput) -> ToolInputOut:
    return ToolInputOut(
        name=i.name,
        type=i.type.value,
        required=i.required,
        default=i.default,
        minimum=i.minimum,
        maximum=i.maximum,
        step=i.step,
        options=list(i.options),
        display_name=i.display_name,
        description=i.description,
    )


def tool_out(t: Tool, estimate_nanos: int | None) -> ToolOut:
    """The JSON of a tool."""
    return ToolOut(
        id=t.id,
        command=t.command,
        display_name=t.display_name,
        description=t.description,
        primary_input=t.primary_input.value,
        output_kind=t.output_kind.value if t.output_kind else None,
        category=t.category,
        inputs=[_input_out(i) for i in t.inputs],
        enabled=t.enabled,
        disabled_reason=t.disabled_reason,
        gpu=t.gpu,
        usd_per_second=format_usd(t.rate_nanos_per_second) if t.rate_nanos_per_second is not None else None,
        expected_seconds=t.expected_seconds,
        estimated_cost_usd=format_usd(estimate_nanos) if estimate_nanos is not None else None,
        backend=t.backend_label,
        base_model=t.base_model.value if t.base_model else None,
    )


class GenerationIn(ApiModel):
    tool_id: Annotated[str, Field(min_length=1, max_length=100, description="Tool id or command name.")]
    inputs: dict[str, Any] = Field(default_factory=dict)


class InternalGenerationIn(GenerationIn):
    master_account_id: str
    platform: Annotated[str, Field(max_length=32)] = "api"
    session_id: str | None = None
    delivery_context: dict[str, Any] = Field(default_factory=dict)


class OutputOut(ApiModel):
    kind: str
    url: str | None = None
    mime_type: str | None = None
    text: str | None = None
    width: int | None = None
    height: int | None = None


class AppliedLoraOut(ApiModel):
    slug: str
    weight: float
    trigger: str = Field(description="The word or tag in the prompt that called the LoRA.")
    source: str = Field(description="trigger, cognate or tag.")


class GenerationOut(ApiModel):
    id: str
    short_id: str
    master_account_id: str
    tool_id: str
    tool: str
    status: str
    progress: float
    live_status: str | None
    run_id: str | None
    inputs: dict[str, Any]
    outputs: list[OutputOut]
    cost_usd: str
    estimated_cost_usd: str
    held_usd: str = Field(description="Set aside for the run: the most it may cost. The rest is released at the end.")
    shortfall_usd: str
    usd_per_second: str
    failure_reason: str | None
    platform: str
    requested_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    exp_gained: int
    raw_prompt: str | None = Field(default=None, description="The prompt as written, before LoRA triggers.")
    loras: list[AppliedLoraOut] = Field(default_factory=list, description="LoRAs the prompt applied.")
    lora_warnings: list[str] = Field(default_factory=list, description="What was dropped or changed, and why.")


def _output(o: dict[str, Any]) -> OutputOut:
    mime = o.get("mime_type") or (mimetypes.guess_type(o.get("filename") or o.get("url") or "")[0])
    return OutputOut(
        kind=o.get("kind", "file"),
        url=o.get("url"),
        mime_type=mime,
        text=o.get("text"),
        width=o.get("width"),
        height=o.get("height"),
    )


def generation_out(g: Generation) -> GenerationOut:
    """The JSON of a generation."""
    window = gpu_window(g)
    duration = (window[1] - window[0]).total_seconds() if window else None
    return GenerationOut(
        id=g.id,
        short_id=short_id(g.id),
        master_account_id=g.account_id,
        tool_id=g.tool_id,
        tool=g.tool_command,
        status=g.status.value,
        progress=g.progress,
        live_status=g.live_status,
        run_id=g.run_id,
        inputs=g.inputs,
        outputs=[_output(o) for o in g.outputs],
        cost_usd=format_usd(g.cost_nanos),
        estimated_cost_usd=format_usd(g.estimated_cost_nanos),
        held_usd=format_usd(g.hold_nanos),
        shortfall_usd=format_usd(g.shortfall_nanos),
        usd_per_second=format_usd(g.rate_nanos_per_second),
        failure_reason=g.failure_reason,
        platform=g.platform,
        requested_at=g.requested_at,
        submitted_at=g.submitted_at,
        started_at=g.started_at,
        finished_at=g.finished_at,
        duration_seconds=duration,
        exp_gained=g.exp_gained,
        raw_prompt=g.meta.get("rawPrompt") if isinstance(g.meta.get("rawPrompt"), str) else None,
        loras=[_applied(a) for a in applied_loras(g)],
        lora_warnings=lora_warnings(g),
    )


def _applied(a: dict[str, Any]) -> AppliedLoraOut:
    weight = a.get("weight")
    return AppliedLoraOut(
        slug=a["slug"],
        weight=float(weight) if isinstance(weight, int | float) else 0.0,
        trigger=str(a.get("trigger", a["slug"])),
        source=str(a.get("source", "tag")),
    )
