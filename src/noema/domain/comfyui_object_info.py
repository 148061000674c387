"""What a ComfyUI server offers (its ``/object_info``, summarised) and whether it can run a workflow (pure).

``summary_from_object_info`` reads the server's JSON and never raises on odd data: what it cannot
understand it leaves out, so a class or option it could not read counts as missing, never as there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from noema.domain.comfyui_workflow_model import WorkflowTool, is_link
from noema.domain.tools import InputType, ToolInput

_SECTIONS = ("required", "optional")  # "hidden" inputs are filled by the server, never by a prompt
_NUMERIC_KINDS = frozenset({"INT", "FLOAT"})
_BOUNDABLE = frozenset({InputType.INTEGER, InputType.NUMBER, InputType.SLIDER})


@dataclass(frozen=True)
class InputInfo:
    """One input of a node class: its kind, and its options (COMBO) or bounds (INT, FLOAT)."""

    kind: str  #: "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", or a link type such as "IMAGE"
    options: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class ObjectInfoSummary:
    """Node class name → input name → what that input takes, as one server reported it."""

    classes: Mapping[str, Mapping[str, InputInfo]] = field(default_factory=dict)

    def has(self, class_type: str) -> bool:
        """Whether the server has this node class."""
        return class_type in self.classes

    def input(self, class_type: str, name: str) -> InputInfo | None:
        """What the input ``name`` of ``class_type`` takes, if the server said."""
        return self.classes.get(class_type, {}).get(name)


def summary_from_object_info(raw: Any) -> ObjectInfoSummary:
    """The summary of a ``GET /object_info`` answer; odd entries are left out."""
    if not isinstance(raw, Mapping):
        return ObjectInfoSummary()
    classes: dict[str, dict[str, InputInfo]] = {}
    for name, info in raw.items():
        if not isinstance(name, str) or not name:
            continue
        inputs: dict[str, InputInfo] = {}
        sections = info.get("input") if isinstance(info, Mapping) else None
        for section in _SECTIONS:
            fields = sections.get(section) if isinstance(sections, Mapping) else None
            if not isinstance(fields, Mapping):
                continue
            for field_name, spec in fields.items():
                parsed = _input_info(spec)
                if isinstance(field_name, str) and parsed is not None:
                    inputs.setdefault(field_name, parsed)
        classes[name] = inputs
    return ObjectInfoSummary(classes)


def _input_info(spec: Any) -> InputInfo | None:
    if not isinstance(spec, list | tuple) or not spec:
        return None
    head = spec[0]
    extra = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    if isinstance(head, list | tuple):  # the classic COMBO: the options list itself
        return InputInfo("COMBO", _options(head))
    if not isinstance(head, str) or not head:
        return None
    if head == "COMBO":  # the newer form: ["COMBO", {"options": [...]}]
        return InputInfo("COMBO", _options(extra.get("options")))
    if head in _NUMERIC_KINDS:
        return InputInfo(head, minimum=_number(extra.get("min")), maximum=_number(extra.get("max")))
    return InputInfo(head)


def _options(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    items = (v if isinstance(v, str) else str(v) for v in value if isinstance(v, str) or _plain_number(v))
    return tuple(items)


def _plain_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and abs(value) < 10**18) or (isinstance(value, float) and math.isfinite(value))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) < 2**65:  # a seed's max is 2**64 - 1
        return float(value)
    return value if isinstance(value, float) and math.isfinite(value) else None


def server_can_run(tool: WorkflowTool, summary: ObjectInfoSummary) -> str | None:
    """None if the server has every node class and model file the workflow needs; else why not, in words."""
    missing = sorted(c for c in tool.node_classes if not summary.has(c))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        return f"needs the node {missing[0]}{more}, which this server lacks"
    lacking = []
    for model in sorted(tool.model_files, key=lambda m: (m.file_name, m.class_type, m.field)):
        info = summary.input(model.class_type, model.field)
        if info is None or info.options is None or model.file_name not in info.options:
            lacking.append(model)
    if lacking:
        first = lacking[0]
        more = f" (and {len(lacking) - 1} more)" if len(lacking) > 1 else ""
        return f"needs the model {first.file_name} ({first.class_type}){more}, which this server lacks"
    return None


def with_server_bounds(tool: WorkflowTool, summary: ObjectInfoSummary) -> WorkflowTool:
    """The tool with each unbounded number input bounded by the INT/FLOAT spec of the node fields it feeds.

    Several fields fed by one input give the narrowest range; bounds the workflow already sets are kept.
    """
    return replace(tool, inputs=tuple(_bounded(tool, spec, summary) for spec in tool.inputs))


def _bounded(tool: WorkflowTool, spec: ToolInput, summary: ObjectInfoSummary) -> ToolInput:
    if spec.type not in _BOUNDABLE or (spec.minimum is not None and spec.maximum is not None):
        return spec
    lows: list[float] = []
    highs: list[float] = []
    for class_type, field_name in _fields_fed_by(tool, spec.name):
        info = summary.input(class_type, field_name)
        if info is None or info.kind not in _NUMERIC_KINDS:
            continue
        lows.extend([info.minimum] if info.minimum is not None else [])
        highs.extend([info.maximum] if info.maximum is not None else [])
    low = spec.minimum if spec.minimum is not None else (max(lows) if lows else None)
    high = spec.maximum if spec.maximum is not None else (min(highs) if highs else None)
    if low is not None and high is not None and low > high:
        return spec  # the server's fields disagree: better no bounds than impossible ones
    return replace(spec, minimum=low, maximum=high)


def _fields_fed_by(tool: WorkflowTool, name: str) -> list[tuple[str, str]]:
    """(class, field) of every node input the input ``name`` sets."""
    graph = tool.graph
    fields = [(graph[t.node]["class_type"], t.field) for t in tool.targets.get(name, ())]
    sources = set(tool.external_nodes.get(name, ()))
    for node in graph.values():
        for field_name, value in node.get("inputs", {}).items():
            if is_link(value) and str(value[0]) in sources:
                fields.append((node["class_type"], field_name))
    return fields
