"""ComfyUI graphs for the sandbox catalog: the API-format graph, the UI graph, and ``input_types``.

``input_types`` is derived from the API graph the way ComfyDeploy's server does it
(``get_inputs_from_workflow_api``), so a deployment's listed inputs and the inputs a client derives
from its workflow version can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from noema.domain.catalog_graph import COMFYDEPLOY_INPUT_TYPES

if TYPE_CHECKING:
    from noema.adapters.backends.sandbox.catalog import InputDef


class _NoDefault:
    """The marker of a required input."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


def input_node_inputs(spec: InputDef) -> dict[str, Any]:
    """The ``inputs`` of an external input node in the API graph."""
    inputs: dict[str, Any] = {"input_id": spec.input_id}
    if spec.options is not None:
        inputs["options"] = json.dumps(list(spec.options))
    if spec.default is not NO_DEFAULT:
        inputs["default_value"] = spec.default
    for key, value in (("min_value", spec.min_value), ("max_value", spec.max_value), ("step", spec.step)):
        if value is not None:
            inputs[key] = value
    inputs["display_name"] = spec.display_name
    inputs["description"] = spec.description
    return inputs


def api_graph(nodes: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """An API-format graph ``{"<node id>": {"inputs", "class_type", "_meta"}}`` in execution order."""
    return {
        node_id: {"inputs": dict(inputs), "class_type": class_type, "_meta": {"title": class_type}}
        for node_id, class_type, inputs in nodes
    }


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def _ui_node(index: int, node_id: str, node: dict[str, Any]) -> dict[str, Any]:
    inputs: dict[str, Any] = node["inputs"]
    return {
        "id": int(node_id),
        "type": node["class_type"],
        "pos": [40 + 320 * (index % 4), 40 + 260 * (index // 4)],
        "size": [300, 200],
        "flags": {},
        "order": index,
        "mode": 0,
        "inputs": [{"name": name, "link": None} for name, value in inputs.items() if _is_link(value)],
        "outputs": [],
        "properties": {"Node name for S&R": node["class_type"]},
        "widgets_values": [value for value in inputs.values() if not _is_link(value)],
    }


def ui_graph(api: dict[str, Any], *, note: str) -> dict[str, Any]:
    """The UI-format graph of a workflow, with a ``Note`` node holding its description."""
    nodes = [_ui_node(index, node_id, node) for index, (node_id, node) in enumerate(api.items())]
    note_id = max(node["id"] for node in nodes) + 1
    nodes.append(
        {
            "id": note_id,
            "type": "Note",
            "pos": [40, -240],
            "size": [420, 160],
            "flags": {},
            "order": len(nodes),
            "mode": 0,
            "inputs": [],
            "outputs": [],
            "properties": {"text": ""},
            "widgets_values": [note],
            "color": "#432",
            "bgcolor": "#653",
        }
    )
    return {
        "last_node_id": note_id,
        "last_link_id": 0,
        "nodes": nodes,
        "links": [],
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1, "offset": [0, 0]}},
        "version": 0.4,
    }


def input_types(api: dict[str, Any]) -> list[dict[str, Any]]:
    """A deployment's ``input_types``: the input nodes of its API graph whose class ComfyDeploy has a type for."""
    result: list[dict[str, Any]] = []
    for node in api.values():
        class_type: str = node["class_type"]
        kind = COMFYDEPLOY_INPUT_TYPES.get(class_type)
        if kind is None:
            continue
        inputs: dict[str, Any] = node["inputs"]
        item: dict[str, Any] = {
            **inputs,
            "class_type": class_type,
            "type": kind,
            "input_id": inputs["input_id"],
            "default_value": inputs.get("default_value"),
            "min_value": inputs.get("min_value"),
            "max_value": inputs.get("max_value"),
            "display_name": inputs.get("display_name", ""),
            "description": inputs.get("description", ""),
        }
        if "options" in inputs:
            item["enum_options"] = json.loads(inputs["options"])
        result.append(item)
    return result
