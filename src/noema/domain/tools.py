"""Tools: deployed workflows as callable commands, with their input schema, output kind and price."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from noema.domain.loras_model import Family
from noema.domain.runs import OutputKind


class InputType(str, Enum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    NUMBER = "number"  #: float
    INTEGER = "integer"
    SLIDER = "slider"  #: number with min and max (float unless ``integer`` is set)
    BOOLEAN = "boolean"
    ENUM = "enum"
    SEED = "seed"  #: integer; -1 means "pick one at random"
    LORA = "lora"
    CHECKPOINT = "checkpoint"
    FILE = "file"

    @property
    def is_media(self) -> bool:
        """Inputs given as a file or URL."""
        return self in {InputType.IMAGE, InputType.VIDEO, InputType.AUDIO, InputType.FILE}


class PrimaryInput(str, Enum):
    """How a chat platform calls the tool."""

    TEXT = "text"  #: /tool a prompt
    IMAGE_TEXT = "image_text"  #: reply to an image: /tool a prompt
    IMAGE = "image"  #: reply to an image: /tool
    VIDEO = "video"
    AUDIO = "audio"
    NONE = "none"  #: no required input


class Visibility(str, Enum):
    """Who sees and runs a tool (``may_list`` and ``may_run`` are the one rule every door follows)."""

    PUBLIC = "public"  #: listed and run by everyone
    HIDDEN = "hidden"  #: a preset's building block: accounts run it only through a preset, never by name
    ADMIN = "admin"  #: the admin client only (internal API); to everyone else it does not exist


@dataclass(frozen=True)
class ToolInput:
    """One input of a tool."""

    name: str  #: the backend's input_id
    type: InputType
    required: bool
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: tuple[str, ...] = ()
    integer: bool = False  #: sliders over whole numbers
    display_name: str | None = None
    description: str | None = None
    max_length: int | None = None  #: for text


@dataclass(frozen=True)
class Tool:
    """A callable workflow."""

    id: str  #: the backend deployment id (stable)
    command: str  #: unique, [a-z][a-z0-9_]{0,31}
    display_name: str
    description: str
    inputs: tuple[ToolInput, ...]
    primary_input: PrimaryInput
    output_kind: OutputKind | None  #: None = mixed or unknown
    deployment_id: str
    machine_id: str | None
    gpu: str | None
    rate_nanos_per_second: int | None  #: None: no price known -> disabled
    enabled: bool = True
    disabled_reason: str | None = None
    visibility: Visibility = Visibility.PUBLIC
    priority: int = 0
    category: str = "image"
    expected_seconds: float = 30.0
    max_seconds: float = 15 * 60.0
    flat_price_nanos: int | None = None
    price_multiplier: float = 1.0
    workflow_id: str | None = None
    backend_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    base_model: Family | None = None  #: the checkpoint's family: which LoRAs its prompts may call
    #: tools (ids) that run the same workflow on another backend, tried in order when this one cannot
    stand_ins: tuple[str, ...] = ()

    def input(self, name: str) -> ToolInput | None:
        """The input called ``name``."""
        return next((i for i in self.inputs if i.name == name), None)

    @property
    def prompt_input(self) -> ToolInput | None:
        """The main text input (the one a chat command's text goes to)."""
        texts = [i for i in self.inputs if i.type is InputType.TEXT and "negative" not in i.name]
        preferred = [i for i in texts if "prompt" in i.name or i.name == "input_text"]
        return (preferred or texts)[0] if (preferred or texts) else None

    @property
    def image_input(self) -> ToolInput | None:
        """The first image input."""
        return next((i for i in self.inputs if i.type is InputType.IMAGE), None)


@dataclass(frozen=True)
class ToolOverride:
    """What an operator may change about one tool (None = keep what the backend says)."""

    command: str | None = None
    visibility: Visibility | None = None
    priority: int | None = None
    price_multiplier: float | None = None
    flat_price_nanos: int | None = None
    expected_seconds: float | None = None
    max_seconds: float | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    bounds: dict[str, Any] = field(default_factory=dict)  #: input name -> [minimum, maximum] of a number input
    display_name: str | None = None
    description: str | None = None
    base_model: str | None = None  #: a family name, or "none" for no LoRAs (checked when applied)


@dataclass(frozen=True)
class ToolCaller:
    """Who asks for a tool: an account (chat, web page, public API, a platform client) or the admin client."""

    admin: bool = False
    via_preset: bool = False  #: the tool is a candidate of a preset the operator set up


ACCOUNT = ToolCaller()
ADMIN_CLIENT = ToolCaller(admin=True)
THROUGH_PRESET = ToolCaller(via_preset=True)  #: an account running a preset


def may_list(tool: Tool, caller: ToolCaller) -> bool:
    """Whether the tool shows in the caller's lists and menus: public ones, and every one for the admin."""
    return caller.admin or tool.visibility is Visibility.PUBLIC


def may_run(tool: Tool, caller: ToolCaller) -> bool:
    """Whether the caller may see one tool and run it; a tool it may not run is answered as unknown.

    Public: everyone. Hidden: the admin, and accounts through a preset that routes to it (the
    operator's choice), never by its own name. Admin-only: the admin client alone, presets included.
    """
    if caller.admin or tool.visibility is Visibility.PUBLIC:
        return True
    return tool.visibility is Visibility.HIDDEN and caller.via_preset


def rank_for_menu(tools: list[Tool], usage: dict[str, int], *, limit: int) -> list[Tool]:
    """The tools a chat menu shows: enabled and public, by priority, then usage, then command name."""
    shown = [t for t in tools if t.enabled and may_list(t, ACCOUNT)]
    shown.sort(key=lambda t: (-t.priority, -usage.get(t.id, 0), t.command))
    return shown[: max(0, limit)]
