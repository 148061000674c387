"""Reading a workflow's sidecar ``NAME.toml``: its inputs (node, field, type, bounds) and settings (pure).

Every problem raises ``InvalidWorkflow`` naming the sidecar file and what is wrong: a bad file stops
start-up rather than becoming a tool that fails at run time.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from noema.domain.catalog_graph import DESCRIPTION_MAX_LENGTH, TEXT_MAX_LENGTH, is_required
from noema.domain.comfyui_workflow_model import Target, is_link, short
from noema.domain.errors import InvalidWorkflow
from noema.domain.runs import OutputKind
from noema.domain.tools import InputType, ToolInput

#: Sidecar ``type`` → the tool input type.
SIDECAR_TYPES: dict[str, InputType] = {
    "text": InputType.TEXT,
    "integer": InputType.INTEGER,
    "number": InputType.NUMBER,
    "seed": InputType.SEED,
    "boolean": InputType.BOOLEAN,
    "choice": InputType.ENUM,
    "image": InputType.IMAGE,
}
OUTPUTS: dict[str, OutputKind] = {
    "image": OutputKind.IMAGE,
    "animation": OutputKind.ANIMATION,
    "video": OutputKind.VIDEO,
    "text": OutputKind.TEXT,
}
SEED_LIMIT = 2**64
_TOP_KEYS = frozenset({"description", "output", "expected_seconds", "max_seconds", "inputs"})
_INPUT_KEYS = frozenset({"node", "field", "type", "default", "min", "max", "options", "description", "display_name"})
_BOUNDED = frozenset({InputType.INTEGER, InputType.NUMBER})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Sidecar:
    """A sidecar's settings; ``inputs`` is None when it declares no ``[inputs.*]`` tables."""

    description: str | None = None
    output: OutputKind | None = None
    expected_seconds: float | None = None
    max_seconds: float | None = None
    inputs: tuple[tuple[ToolInput, Target], ...] | None = None


def read_sidecar(file: str, text: str, graph: Mapping[str, Any]) -> Sidecar:
    """The sidecar's settings and inputs, each input checked against the graph it points into."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidWorkflow(file, f"is not valid TOML ({exc})") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise InvalidWorkflow(file, f"unknown setting {short(unknown[0])!r}; known: {', '.join(sorted(_TOP_KEYS))}")
    description = _optional_text(file, data, "description", DESCRIPTION_MAX_LENGTH)
    output = None
    if "output" in data:
        if data["output"] not in OUTPUTS:
            raise InvalidWorkflow(file, f"output must be one of {', '.join(OUTPUTS)}, not {_show(data['output'])}")
        output = OUTPUTS[data["output"]]
    expected = _seconds(file, data, "expected_seconds")
    maximum = _seconds(file, data, "max_seconds")
    if expected is not None and maximum is not None and expected > maximum:
        raise InvalidWorkflow(file, "expected_seconds is above max_seconds")
    inputs = None
    if "inputs" in data:
        if not isinstance(data["inputs"], dict):
            raise InvalidWorkflow(file, "inputs must be tables: [inputs.NAME]")
        inputs = _inputs(file, data["inputs"], graph)
    return Sidecar(description, output, expected, maximum, inputs)


def _inputs(file: str, tables: dict[str, Any], graph: Mapping[str, Any]) -> tuple[tuple[ToolInput, Target], ...]:
    result: list[tuple[ToolInput, Target]] = []
    names: dict[str, str] = {}
    targets: dict[Target, str] = {}
    for name, table in tables.items():
        where = f"input {short(name)!r}"
        if not _NAME.fullmatch(name):
            raise InvalidWorkflow(file, f"{where}: a name is a letter or _ then letters, digits or _ (at most 64)")
        if name.casefold() in names:
            raise InvalidWorkflow(file, f"duplicate input names {names[name.casefold()]!r} and {name!r}")
        names[name.casefold()] = name
        if not isinstance(table, dict):
            raise InvalidWorkflow(file, f"{where} must be a table [inputs.{name}]")
        tool_input, target = _input(file, where, name, table, graph)
        if target in targets:
            raise InvalidWorkflow(
                file, f"inputs {targets[target]!r} and {name!r} both set field {target.field!r} of node {target.node}"
            )
        targets[target] = name
        result.append((tool_input, target))
    return tuple(result)


def _input(
    file: str, where: str, name: str, table: dict[str, Any], graph: Mapping[str, Any]
) -> tuple[ToolInput, Target]:
    unknown = sorted(set(table) - _INPUT_KEYS)
    if unknown:
        known = ", ".join(sorted(_INPUT_KEYS))
        raise InvalidWorkflow(file, f"{where}: unknown key {short(unknown[0])!r}; known: {known}")
    target = _target(file, where, table, graph)
    type_name = table.get("type")
    if type_name not in SIDECAR_TYPES:
        raise InvalidWorkflow(file, f"{where}: type must be one of {', '.join(SIDECAR_TYPES)}, not {_show(type_name)}")
    input_type = SIDECAR_TYPES[type_name]
    _check_graph_value(file, where, type_name, target, graph)
    minimum, maximum = _bounds(file, where, input_type, table)
    options = _options(file, where, input_type, table)
    default = table.get("default")
    if default is not None:
        _check_default(file, where, input_type, default, minimum, maximum, options)
    return (
        ToolInput(
            name=name,
            type=input_type,
            required=is_required(input_type, default),
            default=default,
            minimum=minimum,
            maximum=maximum,
            options=options,
            display_name=_optional_text(file, table, "display_name", 100, where),
            description=_optional_text(file, table, "description", 500, where),
            max_length=TEXT_MAX_LENGTH if input_type is InputType.TEXT else None,
        ),
        target,
    )


def _target(file: str, where: str, table: dict[str, Any], graph: Mapping[str, Any]) -> Target:
    node = table.get("node")
    if isinstance(node, int) and not isinstance(node, bool):
        node = str(node)  # node = 3 and node = "3" mean the same node
    if not isinstance(node, str) or not node:
        raise InvalidWorkflow(file, f'{where}: node must be a node id of the workflow, like "3"')
    if node not in graph:
        raise InvalidWorkflow(file, f"{where}: node {short(node)} is not in the workflow")
    field = table.get("field")
    inputs = graph[node].get("inputs", {})
    if not isinstance(field, str) or field not in inputs:
        fields = ", ".join(sorted(inputs)) or "none"
        node_class = short(graph[node]["class_type"])
        raise InvalidWorkflow(file, f"{where}: node {node} ({node_class}) has no field {_show(field)}; it has {fields}")
    return Target(node, field)


def _check_graph_value(file: str, where: str, type_name: str, target: Target, graph: Mapping[str, Any]) -> None:
    """A field holding a value of another kind is almost always a sidecar pointing at the wrong field."""
    value = graph[target.node]["inputs"][target.field]
    if is_link(value):
        return
    kinds: dict[str, tuple[type, ...]] = {
        "text": (str,),
        "choice": (str,),
        "image": (str,),
        "integer": (int,),
        "seed": (int,),
        "number": (int, float),
        "boolean": (bool,),
    }
    fits = isinstance(value, kinds[type_name]) and (type_name == "boolean" or not isinstance(value, bool))
    if not fits:
        field = f"field {target.field!r} of node {target.node}"
        raise InvalidWorkflow(file, f"{where}: {field} holds {_show(value)}, which is no {type_name} value")


def _bounds(file: str, where: str, input_type: InputType, table: dict[str, Any]) -> tuple[float | None, float | None]:
    values: list[float | None] = []
    for key in ("min", "max"):
        value = table.get(key)
        if value is None:
            values.append(None)
            continue
        if input_type not in _BOUNDED:
            raise InvalidWorkflow(file, f"{where}: {key} applies only to integer and number inputs")
        if not _is_number(value):
            raise InvalidWorkflow(file, f"{where}: {key} must be a number, not {_show(value)}")
        values.append(float(value))
    low, high = values
    if low is not None and high is not None and low > high:
        raise InvalidWorkflow(file, f"{where}: min {_fmt(low)} is above max {_fmt(high)}")
    return low, high


def _options(file: str, where: str, input_type: InputType, table: dict[str, Any]) -> tuple[str, ...]:
    options = table.get("options")
    if input_type is not InputType.ENUM:
        if options is not None:
            raise InvalidWorkflow(file, f"{where}: options apply only to choice inputs")
        return ()
    if not isinstance(options, list) or not options:
        raise InvalidWorkflow(file, f'{where}: a choice needs options = ["a", "b", …]')
    if not all(isinstance(o, str) and o.strip() for o in options):
        raise InvalidWorkflow(file, f"{where}: every option must be a non-empty text")
    if len(set(options)) != len(options):
        raise InvalidWorkflow(file, f"{where}: an option is listed twice")
    return tuple(options)


def _check_default(
    file: str,
    where: str,
    input_type: InputType,
    default: Any,
    minimum: float | None,
    maximum: float | None,
    options: tuple[str, ...],
) -> None:
    problem = _default_problem(input_type, default, options)
    too_low = minimum is not None and _is_number(default) and default < minimum
    too_high = maximum is not None and _is_number(default) and default > maximum
    if problem is None and input_type in _BOUNDED and (too_low or too_high):
        low = _fmt(minimum) if minimum is not None else "…"
        high = _fmt(maximum) if maximum is not None else "…"
        problem = f"is outside {low}..{high}"
    if problem is not None:
        raise InvalidWorkflow(file, f"{where}: default {_show(default)} {problem}")


def _default_problem(input_type: InputType, default: Any, options: tuple[str, ...]) -> str | None:
    if input_type is InputType.IMAGE:
        return "is not allowed: an image input always takes the user's picture"
    if input_type is InputType.TEXT:
        return None if isinstance(default, str) and len(default) <= TEXT_MAX_LENGTH else "is not a text"
    if input_type is InputType.BOOLEAN:
        return None if isinstance(default, bool) else "is not true or false"
    if input_type is InputType.ENUM:
        return None if default in options else "is not one of the options"
    if input_type is InputType.NUMBER:
        return None if _is_number(default) else "is not a number"
    whole = isinstance(default, int) and not isinstance(default, bool)
    if input_type is InputType.SEED:
        return None if whole and -1 <= default < SEED_LIMIT else "is not -1 (random) or a whole number from 0"
    return None if whole else "is not a whole number"


def _seconds(file: str, data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not _is_number(value) or not 0 < value <= _MAX_SECONDS:
        raise InvalidWorkflow(file, f"{key} must be a number of seconds above 0 and at most {_MAX_SECONDS:.0f}")
    return float(value)


def _optional_text(file: str, data: Mapping[str, Any], key: str, limit: int, where: str = "") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidWorkflow(file, f"{where + ': ' if where else ''}{key} must be a text")
    value = value.strip()
    return (value if len(value) <= limit else value[: limit - 1].rstrip() + "…") or None


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    # math.isfinite refuses ints too large for a float; TOML integers are 64-bit, so those fit anyway.
    return (isinstance(value, int) and abs(value) < 2**64) or (isinstance(value, float) and math.isfinite(value))


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(short(value, 40))
    if isinstance(value, bool | float) or (isinstance(value, int) and abs(value) < 10**30):
        return repr(value)
    return f"a {type(value).__name__}"
