"""Reading a workflow's inputs, outputs and description from backend data that may be malformed.

Nothing here raises on odd data: what cannot be understood is skipped and a short note says why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from noema.domain.runs import InputSpec, OutputKind
from noema.domain.tools import InputType, PrimaryInput, ToolInput

EXTERNAL_PREFIX = "ComfyUIDeployExternal"
TEXT_MAX_LENGTH = 4000
DESCRIPTION_MAX_LENGTH = 1000
_MAX_INPUT_ID_LENGTH = 200
NOTE_NODE_TYPES = frozenset({"Note", "MarkdownNote"})

#: ``ComfyUIDeployExternal<suffix>`` → (type, whole numbers only). ImageBatch takes a JSON list or a
#: zip URL of images, not one picture, so it is a FILE: it must never become a tool's primary image.
INPUT_CLASSES: dict[str, tuple[InputType, bool]] = {
    "Text": (InputType.TEXT, False),
    "TextSingleLine": (InputType.TEXT, False),
    "TextAny": (InputType.TEXT, False),
    "Image": (InputType.IMAGE, False),
    "ImageAlpha": (InputType.IMAGE, False),
    "ImageBatch": (InputType.FILE, False),
    "Number": (InputType.NUMBER, False),
    "NumberInt": (InputType.INTEGER, False),
    "NumberSlider": (InputType.SLIDER, False),
    "NumberSliderInt": (InputType.SLIDER, True),
    "Boolean": (InputType.BOOLEAN, False),
    "Enum": (InputType.ENUM, False),
    "Seed": (InputType.SEED, False),
    "Lora": (InputType.LORA, False),
    "Checkpoint": (InputType.CHECKPOINT, False),
    "Video": (InputType.VIDEO, False),
    "Audio": (InputType.AUDIO, False),
    "File": (InputType.FILE, False),
    "EXR": (InputType.FILE, False),
    "FaceModel": (InputType.FILE, False),
}
_NUMERIC = frozenset({InputType.NUMBER, InputType.INTEGER, InputType.SLIDER, InputType.SEED})

#: ComfyDeploy's own node class → ``type`` map (its API server's ``custom_input_nodes``). A deployment's
#: ``input_types`` lists only nodes of these classes: an input of any other class (the seed, audio,
#: files) is there only in the workflow's graph.
COMFYDEPLOY_INPUT_TYPES: dict[str, str] = {
    EXTERNAL_PREFIX + "Text": "string",
    EXTERNAL_PREFIX + "TextAny": "string",
    EXTERNAL_PREFIX + "TextSingleLine": "string",
    EXTERNAL_PREFIX + "Image": "string",
    EXTERNAL_PREFIX + "ImageAlpha": "string",
    EXTERNAL_PREFIX + "ImageBatch": "string",
    EXTERNAL_PREFIX + "Number": "float",
    EXTERNAL_PREFIX + "NumberInt": "integer",
    EXTERNAL_PREFIX + "NumberSlider": "float",
    EXTERNAL_PREFIX + "NumberSliderInt": "integer",
    EXTERNAL_PREFIX + "Boolean": "boolean",
    EXTERNAL_PREFIX + "Enum": "string",
    EXTERNAL_PREFIX + "Lora": "string",
    EXTERNAL_PREFIX + "Checkpoint": "string",
    EXTERNAL_PREFIX + "Video": "string",
    "ComfyDeployWebscoketImageInput": "binary",
}

#: Output node class → what it delivers. Previews (PreviewImage …) are absent on purpose: never uploaded.
OUTPUT_CLASSES: dict[str, OutputKind] = {
    "ComfyDeployOutputImage": OutputKind.IMAGE,
    "SaveImage": OutputKind.IMAGE,
    "Image Save": OutputKind.IMAGE,
    "SaveAnimatedWEBP": OutputKind.ANIMATION,
    "SaveAnimatedPNG": OutputKind.ANIMATION,
    "SaveVideo": OutputKind.VIDEO,
    "SaveWEBM": OutputKind.VIDEO,
    "ComfyDeployOutputText": OutputKind.TEXT,
    "ShowText|pysssss": OutputKind.TEXT,
    "ShowText": OutputKind.TEXT,
    "SaveText|pysssss": OutputKind.TEXT,
    "SaveAudio": OutputKind.AUDIO,
    "SaveAudioMP3": OutputKind.AUDIO,
    "SaveAudioOpus": OutputKind.AUDIO,
    "ComfyDeployOutputFile": OutputKind.FILE,
    "ComfyDeployOutputEXR": OutputKind.FILE,
}
VIDEO_COMBINE = "VHS_VideoCombine"
_ANIMATION_FORMATS = ("image/gif", "image/webp")


def input_specs_from_graph(workflow_api: Any, notes: list[str]) -> list[InputSpec]:
    """The external input nodes of an API-format graph, in numeric node-id order."""
    if not isinstance(workflow_api, Mapping):
        return []
    specs: list[InputSpec] = []
    for node_id in sorted(workflow_api, key=_node_order):
        node = workflow_api[node_id]
        class_type = node.get("class_type") if isinstance(node, Mapping) else None
        if not isinstance(class_type, str) or not class_type.startswith(EXTERNAL_PREFIX):
            continue
        raw_inputs = node.get("inputs")
        inputs: Mapping[Any, Any] = raw_inputs if isinstance(raw_inputs, Mapping) else {}
        input_id = _text(inputs.get("input_id"))
        if input_id is None:
            notes.append(f"node {_short(node_id)} ({_short(class_type)}) has no input_id")
            continue
        specs.append(_spec_from_node_inputs(input_id, class_type, inputs))
    return specs


def unlisted_graph_inputs(workflow_api: Any, listed: Iterable[Any]) -> list[InputSpec]:
    """The graph's input nodes ``input_types`` cannot list (a class without a ComfyDeploy type), not listed yet."""
    named = {spec.input_id for spec in listed if isinstance(spec, InputSpec)}
    return [
        spec
        for spec in input_specs_from_graph(workflow_api, [])
        if spec.class_type not in COMFYDEPLOY_INPUT_TYPES and spec.input_id not in named
    ]


def _spec_from_node_inputs(input_id: str, class_type: str, inputs: Mapping[Any, Any]) -> InputSpec:
    default = inputs.get("default_value")
    if _is_link(default):  # wired to another node: the graph has a value, but not one we can send
        default = None
    options = inputs.get("enum_options")
    # The graph carries no ``type``; a string default is the only hint for classes we do not know.
    return InputSpec(
        input_id=input_id,
        class_type=class_type,
        type="string" if isinstance(default, str) else None,
        default_value=default,
        min_value=_number(inputs.get("min_value")),
        max_value=_number(inputs.get("max_value")),
        step=_number(inputs.get("step")),
        display_name=_text(inputs.get("display_name")),
        description=_text(inputs.get("description")),
        enum_options=parse_options(inputs.get("options") if options is None else options),
    )


def tool_inputs(specs: Iterable[Any], skipped: list[str]) -> tuple[ToolInput, ...]:
    """Tool inputs from input specs; duplicates and unsupported classes are skipped and noted."""
    result: list[ToolInput] = []
    seen: set[str] = set()
    for spec in specs:
        tool_input = to_tool_input(spec, skipped)
        if tool_input is None:
            continue
        if tool_input.name in seen:
            # The backend applies one value to every node with this id, so one input covers them all.
            skipped.append(f"{_short(tool_input.name)}: duplicate input_id")
            continue
        seen.add(tool_input.name)
        result.append(tool_input)
    return tuple(result)


def to_tool_input(spec: Any, skipped: list[str]) -> ToolInput | None:
    """One tool input from one input spec, or None (with a note) when it cannot be used."""
    if not isinstance(spec, InputSpec):
        skipped.append(f"an input that is not an input spec ({type(spec).__name__})")
        return None
    name = _text(spec.input_id)
    if name is None or len(name) > _MAX_INPUT_ID_LENGTH:
        skipped.append("an input without a usable input_id")
        return None
    class_type = spec.class_type if isinstance(spec.class_type, str) else ""
    kind = _input_kind(class_type, spec.type)
    if kind is None:
        skipped.append(f"{_short(name)}: unsupported input class {_short(class_type)!r}")
        return None
    input_type, integer = kind
    default = None if _is_link(spec.default_value) else spec.default_value
    minimum, maximum = (_number(spec.min_value), _number(spec.max_value)) if input_type in _NUMERIC else (None, None)
    if minimum is not None and maximum is not None and minimum > maximum:
        skipped.append(f"{_short(name)}: minimum above maximum, bounds ignored")
        minimum = maximum = None
    step = _number(spec.step)
    return ToolInput(
        name=name,
        type=input_type,
        required=is_required(input_type, default),
        default=default,
        minimum=minimum,
        maximum=maximum,
        step=step if step is not None and step > 0 and input_type in _NUMERIC else None,
        options=(parse_options(spec.enum_options) or ()) if input_type is InputType.ENUM else (),
        integer=integer,
        display_name=_text(spec.display_name),
        description=_trim(_text(spec.description), 500) or None,
        max_length=TEXT_MAX_LENGTH if input_type is InputType.TEXT else None,
    )


def primary_input_of(inputs: Iterable[ToolInput]) -> PrimaryInput:
    """How chat platforms call a tool with these inputs (image first, then video, audio, text)."""
    inputs = list(inputs)
    required = {spec.type for spec in inputs if spec.required}
    has_text = any(spec.type is InputType.TEXT for spec in inputs)
    if InputType.IMAGE in required:
        return PrimaryInput.IMAGE_TEXT if has_text else PrimaryInput.IMAGE
    if InputType.VIDEO in required:
        return PrimaryInput.VIDEO
    if InputType.AUDIO in required:
        return PrimaryInput.AUDIO
    return PrimaryInput.TEXT if has_text else PrimaryInput.NONE


def is_required(input_type: InputType, default: Any) -> bool:
    """Required = no default; an empty text is a default, a seed is never required (missing = random)."""
    if input_type is InputType.SEED:
        return False
    if default is None:
        return True
    return input_type is not InputType.TEXT and isinstance(default, str) and not default.strip()


def _input_kind(class_type: str, value_type: Any) -> tuple[InputType, bool] | None:
    if not class_type.startswith(EXTERNAL_PREFIX):
        return None
    known = INPUT_CLASSES.get(class_type.removeprefix(EXTERNAL_PREFIX))
    if known is None and value_type == "string":  # a newer text-like class: usable as text
        return InputType.TEXT, False
    return known


def output_kinds(workflow_api: Any, output_types: Any) -> list[OutputKind]:
    """The kinds a workflow delivers: from its graph's output nodes, else from the deployment's output types."""
    kinds: set[OutputKind] = set()
    if isinstance(workflow_api, Mapping):
        for node in workflow_api.values():
            if isinstance(node, Mapping) and isinstance(node.get("class_type"), str):
                kind = _output_kind(node["class_type"], node.get("inputs"))
                kinds.update([kind] if kind else [])
    if not kinds and isinstance(output_types, Iterable) and not isinstance(output_types, str | bytes | Mapping):
        # Class names alone cannot tell a GIF from an MP4; VHS without its format counts as video.
        kinds.update(k for k in (_output_kind(c, None) for c in output_types if isinstance(c, str)) if k)
    return sorted(kinds, key=lambda k: k.value)


def _output_kind(class_type: str, inputs: Any) -> OutputKind | None:
    if class_type == VIDEO_COMBINE:
        fmt = inputs.get("format") if isinstance(inputs, Mapping) else None
        return OutputKind.ANIMATION if isinstance(fmt, str) and fmt.startswith(_ANIMATION_FORMATS) else OutputKind.VIDEO
    return OUTPUT_CLASSES.get(class_type)


def description_from_notes(workflow: Any) -> str:
    """The text of the UI graph's Note and MarkdownNote nodes, blank-line separated, at most 1000 characters."""
    nodes = workflow.get("nodes") if isinstance(workflow, Mapping) else None
    if not isinstance(nodes, list):
        return ""
    texts: list[str] = []
    for node in nodes:
        if not isinstance(node, Mapping) or node.get("type") not in NOTE_NODE_TYPES:
            continue
        values = node.get("widgets_values")
        if isinstance(values, list) and values and isinstance(values[0], str) and values[0].strip():
            texts.append(values[0].strip())
    return _trim("\n\n".join(texts), DESCRIPTION_MAX_LENGTH)


def parse_options(value: Any) -> tuple[str, ...] | None:
    """Enum options from a list or a JSON list string; None when there are none to read."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list | tuple):
        return None
    options = (str(v).strip() for v in value if isinstance(v, str | float) or _small_int(v))
    return tuple(dict.fromkeys(o for o in options if o)) or None


def _node_order(node_id: Any) -> tuple[int, tuple[int, ...], str]:
    if _small_int(node_id):
        return 0, (node_id,), ""
    text = node_id[:100] if isinstance(node_id, str) else type(node_id).__name__
    parts = text.split(":")  # "12:3" is node 3 inside subgraph 12
    if all(part.isdecimal() and len(part) < 18 for part in parts):
        return 0, tuple(int(part) for part in parts), text
    return 1, (), text


def _small_int(value: Any) -> bool:
    # Giant ints cannot even be printed (Python refuses str() past 4300 digits).
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int) and isinstance(value[1], int)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _trim(text: str | None, limit: int) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _short(value: Any) -> str:
    return _trim(value if isinstance(value, str) else type(value).__name__, 60)
