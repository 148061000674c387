"""What a self-hosted ComfyUI workflow file becomes: a tool's inputs plus where each value goes (pure)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from noema.domain.runs import OutputKind
from noema.domain.tools import PrimaryInput, ToolInput

#: File names that loader nodes read from the server's models folder.
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")
LOAD_IMAGE = "LoadImage"


@dataclass(frozen=True)
class Target:
    """One place in the graph a sidecar input's value is written to."""

    node: str
    field: str


@dataclass(frozen=True)
class ModelFile:
    """A model file a loader node names: the server must list it among that input's options."""

    node: str
    class_type: str
    field: str
    file_name: str


@dataclass(frozen=True)
class WorkflowTool:
    """A workflow file read and checked: everything the catalog and the prompt builder need.

    ``graph`` is the API-format graph as loaded; nothing here mutates it (``build_prompt`` copies it).
    Sidecar inputs are written at their ``targets``; ``external_nodes`` maps each input declared by
    ``ComfyUIDeployExternal*`` nodes to those nodes, which are removed from the prompt.
    """

    name: str
    graph: Mapping[str, Any]
    inputs: tuple[ToolInput, ...]
    primary_input: PrimaryInput
    output_kind: OutputKind | None
    description: str
    input_source: str  #: "sidecar" or "external"
    targets: Mapping[str, tuple[Target, ...]] = field(default_factory=dict)
    external_nodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    node_classes: frozenset[str] = frozenset()  #: classes the server must have (as submitted)
    model_files: tuple[ModelFile, ...] = ()
    expected_seconds: float | None = None  #: None: the sidecar did not say
    max_seconds: float | None = None

    def input(self, name: str) -> ToolInput | None:
        """The input called ``name``."""
        return next((i for i in self.inputs if i.name == name), None)

    def graph_copy(self) -> dict[str, Any]:
        """A deep copy of the graph, safe to change."""
        return copy.deepcopy(dict(self.graph))


def is_link(value: Any) -> bool:
    """Whether an API-format input value is a link ``[node_id, output_index]``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def links(graph: Mapping[str, Any]) -> Iterator[tuple[str, str, list[Any]]]:
    """Every link in the graph as (consumer node id, input name, link)."""
    for node_id, node in graph.items():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        for name, value in inputs.items():
            if is_link(value):
                yield node_id, name, value


def short(value: Any, limit: int = 60) -> str:
    """A short, printable rendering of a name from a file, for messages."""
    text = value if isinstance(value, str) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
