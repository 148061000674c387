"""LoRAs in a generation's prompt: resolved when it is requested, counted when it succeeds.

What was applied is kept in ``Generation.meta`` (``rawPrompt``, ``prompt``, ``loras``,
``loraWarnings``), so the APIs and the chat platforms show it and settlement counts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from noema.domain.errors import InvalidInput
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.inputs import DEFAULT_TEXT_LIMIT
from noema.domain.loras import Lora, resolve
from noema.domain.tools import Tool
from noema.ports import UnitOfWork


def apply_loras(
    tool: Tool,
    inputs: Mapping[str, Any],
    account_id: str,
    *,
    registry: Sequence[Lora] | None,
    max_loras: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The validated inputs with the prompt's LoRAs resolved, and what to keep on the generation.

    ``registry`` is the LoRA library as ``LoraLibrary.loras()`` gave it (None: no library). Nothing
    changes for a tool without a text prompt or without a known base model.
    """
    spec = tool.prompt_input
    prompt = inputs.get(spec.name) if spec is not None else None
    if registry is None or spec is None or tool.base_model is None or not isinstance(prompt, str) or not prompt:
        return dict(inputs), {}
    resolution = resolve(prompt, tool.base_model, account_id, registry, max_loras=max_loras)
    limit = spec.max_length or DEFAULT_TEXT_LIMIT
    if len(resolution.prompt) > limit:
        raise InvalidInput(
            f"With its LoRA tags the prompt is {len(resolution.prompt)} characters; at most {limit} fit. "
            "Shorten it or call fewer LoRAs.",
            details={"field": spec.name},
        )
    meta = {
        "rawPrompt": prompt,
        "prompt": resolution.prompt,
        "loras": [
            {"slug": a.slug, "weight": a.weight, "trigger": a.trigger, "source": a.source.value}
            for a in resolution.applied
        ],
        "loraWarnings": list(resolution.warnings),
    }
    return {**inputs, spec.name: resolution.prompt}, meta


def applied_loras(generation: Generation) -> list[dict[str, Any]]:
    """The LoRAs a generation's prompt applied, as stored (an empty list for older generations)."""
    raw = generation.meta.get("loras") if isinstance(generation.meta, dict) else None
    return [item for item in raw if isinstance(item, dict) and isinstance(item.get("slug"), str)] if raw else []


def lora_warnings(generation: Generation) -> list[str]:
    """What the user was told about the prompt's LoRAs (an empty list for older generations)."""
    raw = generation.meta.get("loraWarnings") if isinstance(generation.meta, dict) else None
    return [str(w) for w in raw if isinstance(w, str)] if isinstance(raw, list) else []


async def count_usage(uow: UnitOfWork, generation: Generation) -> None:
    """One more use of each LoRA a succeeded generation applied (when it ends, in the transaction that settles it)."""
    if generation.status is not GenerationStatus.SUCCEEDED:
        return
    slugs = [item["slug"] for item in applied_loras(generation)]
    if slugs:
        await uow.loras.count_usage(slugs)
