"""What the ComfyUI client returns: small frozen records parsed from the server's JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class PromptStatus(str, Enum):
    """How a finished prompt ended, as its history tells."""

    SUCCESS = "success"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class OutputKind(str, Enum):
    """What one output is, judged by the node class that made it and the file's extension."""

    IMAGE = "image"
    ANIMATION = "animation"
    VIDEO = "video"
    TEXT = "text"


@dataclass(frozen=True)
class PromptOutput:
    """One output of a prompt: a file to fetch with ``view``, or a text."""

    node_id: str
    kind: OutputKind
    filename: str = ""
    subfolder: str = ""
    type: str = "output"  #: ``output``, ``temp`` (PreviewImage) or ``input``
    text: str | None = None


@dataclass(frozen=True)
class PromptResult:
    """A finished prompt: how it ended, what it made, and the server's own start and end times."""

    prompt_id: str
    status: PromptStatus
    outputs: tuple[PromptOutput, ...] = ()
    started_at: datetime | None = None  #: the server's ``execution_start``
    ended_at: datetime | None = None  #: the server's ``execution_success|error|interrupted``
    error: str | None = None  #: ``node_type: exception_message`` on error, never a traceback
    cached_nodes: tuple[str, ...] = ()  #: nodes the server reused instead of running them


@dataclass(frozen=True)
class QueueState:
    """The prompt ids a server is running and has waiting, in its order."""

    running: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    client_ids: tuple[str, ...] = ()  #: the ``client_id`` each queued prompt was sent with ("" if none)

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self.running or prompt_id in self.pending


@dataclass(frozen=True)
class InputSpec:
    """One input of a node class: its type, bounds, default and (for a COMBO) its options."""

    name: str
    type: str  #: ``INT``, ``FLOAT``, ``STRING``, ``BOOLEAN``, ``COMBO`` or a link type such as ``IMAGE``
    required: bool
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    options: tuple[Any, ...] | None = None  #: a COMBO's choices, e.g. a loader's model files
    upload: bool = False  #: the input takes an uploaded file (``image_upload``)


@dataclass(frozen=True)
class NodeInfo:
    """One node class as ``/object_info`` describes it."""

    name: str
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    output_node: bool = False
    category: str = ""


@dataclass(frozen=True)
class SystemStats:
    """What ``/system_stats`` says about the server: version and devices."""

    comfyui_version: str
    python_version: str = ""
    devices: tuple[str, ...] = ()  #: device names, e.g. ``cpu`` or ``cuda:0 NVIDIA A10G``
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
