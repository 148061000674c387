"""A tool's input values become the ``prompt`` a plain ComfyUI server runs (pure).

Sidecar inputs are written at their node and field. ``ComfyUIDeployExternal*`` nodes are custom
nodes a plain ComfyUI lacks, so each is removed and every link to it replaced by the value itself;
an image input instead becomes a ``LoadImage`` of the uploaded file under the same node id, so the
links to it (IMAGE and MASK) keep working. The workflow's own graph is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from noema.domain.comfyui_workflow_model import LOAD_IMAGE, WorkflowTool, is_link
from noema.domain.errors import InvalidInput
from noema.domain.tools import InputType, ToolInput


def build_prompt(tool: WorkflowTool, values: Mapping[str, Any], uploaded_images: Mapping[str, str]) -> dict[str, Any]:
    """The API-format prompt for these values; ``uploaded_images`` maps image inputs to server file names.

    ``values`` are already validated (``validate_inputs``): seeds are sent as given. An input missing
    from ``values`` keeps its default, or for a sidecar input the workflow's own value.
    """
    known = {spec.name for spec in tool.inputs}
    for name in values:
        if name not in known:
            raise InvalidInput(f"Unknown input {str(name)[:60]!r} for the workflow {tool.name}.")
    prompt = tool.graph_copy()
    replaced: dict[str, Any] = {}
    for spec in tool.inputs:
        if spec.type is InputType.IMAGE:
            _set_image(tool, spec, uploaded_images.get(spec.name), prompt)
        elif spec.name in tool.external_nodes:
            value = _external_value(spec, values)
            for node_id in tool.external_nodes[spec.name]:
                del prompt[node_id]
                replaced[node_id] = value
        elif values.get(spec.name) is not None or _usable_default(spec):
            value = spec.default if values.get(spec.name) is None else values[spec.name]
            for target in tool.targets.get(spec.name, ()):
                prompt[target.node]["inputs"][target.field] = value
    if replaced:
        _inline(prompt, replaced)
    return prompt


def _set_image(tool: WorkflowTool, spec: ToolInput, file_name: str | None, prompt: dict[str, Any]) -> None:
    if not file_name:
        if spec.required or spec.name in tool.external_nodes:
            raise InvalidInput(f"The input {spec.name!r} needs a picture.", details={"field": spec.name})
        return
    for node_id in tool.external_nodes.get(spec.name, ()):
        meta = prompt[node_id].get("_meta")
        title = meta.get("title") if isinstance(meta, dict) else None
        meta = {"title": title or spec.name}
        prompt[node_id] = {"class_type": LOAD_IMAGE, "inputs": {"image": file_name}, "_meta": meta}
    for target in tool.targets.get(spec.name, ()):
        prompt[target.node]["inputs"][target.field] = file_name


def _external_value(spec: ToolInput, values: Mapping[str, Any]) -> Any:
    if spec.name in values and values[spec.name] is not None:
        return values[spec.name]
    if _usable_default(spec):
        return spec.default
    raise InvalidInput(f"The input {spec.name!r} has no value.", details={"field": spec.name})


def _usable_default(spec: ToolInput) -> bool:
    """A default that can be sent as is: not missing, not a link, not the seed's "-1 = random"."""
    if spec.default is None or is_link(spec.default):
        return False
    return not (spec.type is InputType.SEED and spec.default in (-1, "-1"))


def _inline(prompt: dict[str, Any], replaced: Mapping[str, Any]) -> None:
    """Replace every link to a removed node by that node's value."""
    for node in prompt.values():
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue
        for field, value in inputs.items():
            if is_link(value) and str(value[0]) in replaced:
                inputs[field] = replaced[str(value[0])]
