"""Bounds for a number input its workflow leaves open: the ComfyUI field it feeds, else the node's own range (pure).

ComfyDeploy's ``ComfyUIDeployExternalNumber`` and ``…NumberInt`` nodes carry no ``min_value`` or
``max_value``, and ComfyDeploy's API has no ``/object_info`` to ask, so an open input takes the range
ComfyUI itself gives the core node field it is wired to (``nodes.py``), and failing that the widest
value the ComfyDeploy node holds. A value past either is refused before anything is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from noema.domain.tools import InputType, ToolInput

#: The widest value a ComfyDeploy number node's widget holds (its ``min``/``max``: ±2**31 - 1).
NODE_LIMIT = 2_147_483_647.0
_MAX_RESOLUTION = 16384.0
_BOUNDABLE = frozenset({InputType.NUMBER, InputType.INTEGER, InputType.SLIDER})
_STEPS = (1.0, 10000.0)
_CFG = (0.0, 100.0)
_UNIT = (0.0, 1.0)
_SIZE = (16.0, _MAX_RESOLUTION)
_SCALE = (0.0, _MAX_RESOLUTION)
_STRENGTH = (-100.0, 100.0)

#: (node class, field) -> ComfyUI's own (min, max) for the core fields number inputs are usually wired to.
CORE_FIELD_BOUNDS: Mapping[tuple[str, str], tuple[float, float]] = {
    ("KSampler", "steps"): _STEPS,
    ("KSampler", "cfg"): _CFG,
    ("KSampler", "denoise"): _UNIT,
    ("KSamplerAdvanced", "steps"): _STEPS,
    ("KSamplerAdvanced", "cfg"): _CFG,
    ("KSamplerAdvanced", "start_at_step"): (0.0, 10000.0),
    ("KSamplerAdvanced", "end_at_step"): (0.0, 10000.0),
    ("BasicScheduler", "steps"): _STEPS,
    ("BasicScheduler", "denoise"): _UNIT,
    ("CFGGuider", "cfg"): _CFG,
    ("FluxGuidance", "guidance"): _CFG,
    ("EmptyLatentImage", "width"): _SIZE,
    ("EmptyLatentImage", "height"): _SIZE,
    ("EmptyLatentImage", "batch_size"): (1.0, 4096.0),
    ("EmptySD3LatentImage", "width"): _SIZE,
    ("EmptySD3LatentImage", "height"): _SIZE,
    ("EmptySD3LatentImage", "batch_size"): (1.0, 4096.0),
    ("LatentUpscale", "width"): _SCALE,
    ("LatentUpscale", "height"): _SCALE,
    ("LatentUpscaleBy", "scale_by"): (0.01, 8.0),
    ("ImageScale", "width"): _SCALE,
    ("ImageScale", "height"): _SCALE,
    ("ImageScaleBy", "scale_by"): (0.01, 8.0),
    ("RepeatLatentBatch", "amount"): (1.0, 64.0),
    ("CLIPSetLastLayer", "stop_at_clip_layer"): (-24.0, -1.0),
    ("LoraLoader", "strength_model"): _STRENGTH,
    ("LoraLoader", "strength_clip"): _STRENGTH,
    ("LoraLoaderModelOnly", "strength_model"): _STRENGTH,
}


def bound_open_inputs(inputs: Iterable[ToolInput], workflow_api: Any) -> tuple[ToolInput, ...]:
    """The inputs with every open number bound filled in: from the core fields they feed, else ±NODE_LIMIT."""
    fed = _fields_fed(workflow_api)
    return tuple(_bounded(spec, fed.get(spec.name, [])) for spec in inputs)


def _bounded(spec: ToolInput, fields: list[tuple[str, str]]) -> ToolInput:
    if spec.type not in _BOUNDABLE or (spec.minimum is not None and spec.maximum is not None):
        return spec
    ranges = [CORE_FIELD_BOUNDS[f] for f in fields if f in CORE_FIELD_BOUNDS]
    low = spec.minimum if spec.minimum is not None else max((r[0] for r in ranges), default=-NODE_LIMIT)
    high = spec.maximum if spec.maximum is not None else min((r[1] for r in ranges), default=NODE_LIMIT)
    if low > high:  # the fields disagree with each other or with the workflow: keep what the workflow said
        low = spec.minimum if spec.minimum is not None else -NODE_LIMIT
        high = spec.maximum if spec.maximum is not None else NODE_LIMIT
    return replace(spec, minimum=low, maximum=high)


def _fields_fed(workflow_api: Any) -> dict[str, list[tuple[str, str]]]:
    """input_id -> (class, field) of every node input wired to that input's external node."""
    if not isinstance(workflow_api, Mapping):
        return {}
    names: dict[str, str] = {}
    for node_id, node in workflow_api.items():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        input_id = inputs.get("input_id") if isinstance(inputs, Mapping) else None
        if isinstance(input_id, str) and str(node.get("class_type", "")).startswith("ComfyUIDeployExternal"):
            names[str(node_id)] = input_id.strip()
    fed: dict[str, list[tuple[str, str]]] = {}
    for node in workflow_api.values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        class_type = node.get("class_type") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping) or not isinstance(class_type, str):
            continue
        for field, value in inputs.items():
            source = _link_source(value)
            if source in names:
                fed.setdefault(names[source], []).append((class_type, str(field)))
    return fed


def _link_source(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) != 2:
        return None
    node = value[0]
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) < 10**18:
        return str(node)
    return node if isinstance(node, str) else None
