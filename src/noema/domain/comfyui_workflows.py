"""Workflow files on disk become tools of a self-hosted ComfyUI (pure).

``NAME.json`` is a graph in ComfyUI's API format (its "Export (API)"). Its inputs are declared either
by a sidecar ``NAME.toml`` (``comfyui_sidecar``) or, without ``[inputs.*]`` tables there, by the
``ComfyUIDeployExternal*`` nodes the ComfyDeploy catalog reads (the same rule: ``catalog_graph``),
so one workflow file runs on both backends. A bad file raises ``InvalidWorkflow`` naming the file
and the problem. ``build_prompt`` and ``server_can_run`` live beside this module and are re-exported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from noema.domain.catalog_graph import (
    DESCRIPTION_MAX_LENGTH,
    EXTERNAL_PREFIX,
    NOTE_NODE_TYPES,
    input_specs_from_graph,
    output_kinds,
    primary_input_of,
    to_tool_input,
)
from noema.domain.comfyui_object_info import (
    InputInfo,
    ObjectInfoSummary,
    server_can_run,
    summary_from_object_info,
    with_server_bounds,
)
from noema.domain.comfyui_prompt import build_prompt
from noema.domain.comfyui_sidecar import OUTPUTS, Sidecar, read_sidecar
from noema.domain.comfyui_workflow_model import (
    LOAD_IMAGE,
    MODEL_SUFFIXES,
    ModelFile,
    Target,
    WorkflowTool,
    is_link,
    links,
    short,
)
from noema.domain.errors import InvalidWorkflow
from noema.domain.runs import OutputKind
from noema.domain.tools import InputType, ToolInput

__all__ = [
    "InputInfo",
    "ModelFile",
    "ObjectInfoSummary",
    "Target",
    "WorkflowTool",
    "build_prompt",
    "load_workflow",
    "server_can_run",
    "summary_from_object_info",
    "with_server_bounds",
]

MAX_FILE_CHARS = 5_000_000
_UI_FORMAT = 'is in the UI format (it has "nodes" and "links"); open it in ComfyUI and export it with Export (API)'


def load_workflow(name: str, graph_json_text: str, sidecar_toml_text: str | None) -> WorkflowTool:
    """The tool ``name`` from its ``name.json`` text and optional ``name.toml`` text; InvalidWorkflow otherwise."""
    json_file, toml_file = f"{name}.json", f"{name}.toml"
    raw = _parse_graph(json_file, graph_json_text)
    notes = [nid for nid, node in raw.items() if node["class_type"] in NOTE_NODE_TYPES]
    description = _notes_text(raw[nid] for nid in notes)
    graph = {nid: node for nid, node in raw.items() if nid not in notes}
    _check_links(json_file, graph, raw)
    sidecar = read_sidecar(toml_file, sidecar_toml_text, graph) if sidecar_toml_text is not None else Sidecar()
    externals = [nid for nid, node in graph.items() if node["class_type"].startswith(EXTERNAL_PREFIX)]
    if sidecar.inputs is not None:
        if externals:
            raise InvalidWorkflow(
                toml_file,
                f"declares [inputs] but {json_file} also has ComfyUIDeployExternal input nodes "
                f"(node {short(externals[0])}); declare the inputs one way",
            )
        inputs = tuple(spec for spec, _ in sidecar.inputs)
        targets = {spec.name: (target,) for spec, target in sidecar.inputs}
        external_nodes: dict[str, tuple[str, ...]] = {}
        source = "sidecar"
    else:
        inputs, external_nodes = _external_inputs(json_file, graph)
        targets, source = {}, "external"
    output_kind = _output_kind(json_file, toml_file, graph, sidecar)
    classes = {node["class_type"] for nid, node in graph.items() if nid not in externals}
    if any(spec.type is InputType.IMAGE for spec in inputs if spec.name in external_nodes):
        classes.add(LOAD_IMAGE)  # each external image input is submitted as a LoadImage of the upload
    return WorkflowTool(
        name=name,
        graph=graph,
        inputs=inputs,
        primary_input=primary_input_of(inputs),
        output_kind=output_kind,
        description=sidecar.description or description,
        input_source=source,
        targets=targets,
        external_nodes=external_nodes,
        node_classes=frozenset(classes),
        model_files=_model_files(graph, inputs, external_nodes),
        expected_seconds=sidecar.expected_seconds,
        max_seconds=sidecar.max_seconds,
    )


def _parse_graph(file: str, text: str) -> dict[str, Any]:
    if len(text) > MAX_FILE_CHARS:
        raise InvalidWorkflow(file, f"is larger than {MAX_FILE_CHARS // 1_000_000} MB")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidWorkflow(file, f"is not valid JSON{where}") from None
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise InvalidWorkflow(file, _UI_FORMAT)
    if not isinstance(data, dict):
        raise InvalidWorkflow(file, "is not in ComfyUI's API format: expected an object of node id → node")
    if isinstance(data.get("prompt"), dict) and "class_type" not in data["prompt"]:
        raise InvalidWorkflow(file, 'is a /prompt request body; save only its "prompt" object')
    if not data:
        raise InvalidWorkflow(file, "has no nodes")
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str) or not node["class_type"]:
            problem = f"node {short(node_id)} has no class_type"
            raise InvalidWorkflow(file, f"is not in ComfyUI's API format: {problem} (export it with Export (API))")
        node.setdefault("inputs", {})
        if not isinstance(node["inputs"], dict):
            node_class = short(node["class_type"])
            raise InvalidWorkflow(file, f"node {short(node_id)} ({node_class}): inputs must be an object")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_links(file: str, graph: Mapping[str, Any], raw: Mapping[str, Any]) -> None:
    for node_id, field, link in links(graph):
        source = str(link[0])
        if source not in graph:
            what = "a note" if source in raw else "not in the workflow"
            where = f"node {short(node_id)} input {short(field)!r}"
            raise InvalidWorkflow(file, f"{where} links to node {short(source)}, {what}")
        if link[1] < 0:
            raise InvalidWorkflow(file, f"node {short(node_id)} input {short(field)!r} links to a negative output")
        link[0] = source  # ComfyUI writes ids as strings; an int id from a hand edit means the same node


def _notes_text(notes: Any) -> str:
    texts: list[str] = []
    for node in notes:
        inputs = node["inputs"]
        values = node.get("widgets_values")
        text = inputs.get("text", values[0] if isinstance(values, list) and values else None)
        if isinstance(text, str) and text.strip():
            texts.append(text.strip())
    joined = "\n\n".join(texts)
    return joined if len(joined) <= DESCRIPTION_MAX_LENGTH else joined[: DESCRIPTION_MAX_LENGTH - 1].rstrip() + "…"


def _external_inputs(file: str, graph: dict[str, Any]) -> tuple[tuple[ToolInput, ...], dict[str, tuple[str, ...]]]:
    """Inputs from ComfyUIDeployExternal* nodes, read by the ComfyDeploy catalog's own rule."""
    notes: list[str] = []
    specs = input_specs_from_graph(graph, notes)
    if notes:
        raise InvalidWorkflow(file, notes[0])
    inputs: dict[str, ToolInput] = {}
    nodes: dict[str, list[str]] = {}
    ids = _external_ids(graph)
    for spec in specs:
        skipped: list[str] = []
        tool_input = to_tool_input(spec, skipped)
        if tool_input is None:
            raise InvalidWorkflow(file, skipped[0] if skipped else "an external input node cannot be read")
        if tool_input.type.is_media and tool_input.type is not InputType.IMAGE:
            where, kind = f"input {short(tool_input.name)!r}", tool_input.type.value
            raise InvalidWorkflow(file, f"{where}: a self-hosted ComfyUI takes no {kind} input yet")
        known = inputs.setdefault(tool_input.name, tool_input)
        if known.type is not tool_input.type:
            raise InvalidWorkflow(file, f"input {short(tool_input.name)!r} is declared by nodes of different types")
        nodes.setdefault(tool_input.name, [])
    for node_id, input_id in ids.items():
        nodes[input_id].append(node_id)  # one value goes to every node with this input_id, as on ComfyDeploy
    for consumer, field, link in links(graph):
        source_input = ids.get(link[0])
        if source_input is None:
            continue
        outputs = 2 if inputs[source_input].type is InputType.IMAGE else 1  # LoadImage gives IMAGE and MASK
        if link[1] >= outputs:
            where = f"node {short(consumer)} input {short(field)!r}"
            raise InvalidWorkflow(file, f"{where} uses output {link[1]} of input node {short(link[0])}")
    return tuple(inputs.values()), {name: tuple(ids_) for name, ids_ in nodes.items()}


def _external_ids(graph: Mapping[str, Any]) -> dict[str, str]:
    """External node id → its (stripped) input_id, as ``input_specs_from_graph`` reads it."""
    result: dict[str, str] = {}
    for node_id, node in graph.items():
        input_id = node["inputs"].get("input_id")
        if node["class_type"].startswith(EXTERNAL_PREFIX) and isinstance(input_id, str) and input_id.strip():
            result[node_id] = input_id.strip()
    return result


def _output_kind(json_file: str, toml_file: str, graph: Mapping[str, Any], sidecar: Sidecar) -> OutputKind | None:
    kinds = output_kinds(graph, None)
    declared = sidecar.output
    if declared is not None:
        if kinds and declared not in kinds:
            found = ", ".join(k.value for k in kinds)
            raise InvalidWorkflow(toml_file, f"output is {declared.value} but {json_file}'s output nodes give {found}")
        return declared
    if not kinds:
        raise InvalidWorkflow(
            json_file,
            "has no output node (SaveImage, SaveAnimatedWEBP, …); add one, or name what a custom one gives with "
            f"output = {' | '.join(OUTPUTS)} in {toml_file}",
        )
    return kinds[0] if len(kinds) == 1 else None


def _model_files(
    graph: Mapping[str, Any], inputs: tuple[ToolInput, ...], external_nodes: Mapping[str, tuple[str, ...]]
) -> tuple[ModelFile, ...]:
    """Model names on loader nodes, including an external input's default that a loader receives."""
    defaults = {
        node_id: spec.default
        for spec in inputs
        if isinstance(spec.default, str)
        for node_id in external_nodes.get(spec.name, ())
    }
    found: list[ModelFile] = []
    for node_id, node in graph.items():
        class_type = node["class_type"]
        if "Loader" not in class_type or class_type.startswith(EXTERNAL_PREFIX):
            continue
        for field, value in node["inputs"].items():
            if is_link(value):
                value = defaults.get(value[0])
            if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES):
                found.append(ModelFile(node_id, class_type, field, value))
    return tuple(found)
