"""Operator overrides of tools: which override applies to which tool, and applying it safely.

Overrides come from configuration, so every field is checked; a bad field is ignored and a
warning lands in the tool's ``extra["override_warnings"]`` instead of breaking the catalog.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from noema.domain.catalog_graph import DESCRIPTION_MAX_LENGTH, primary_input_of
from noema.domain.catalog_names import command_name
from noema.domain.errors import InvalidInput
from noema.domain.inputs import coerce_value
from noema.domain.loras_model import Family, family_or_none
from noema.domain.money import MAX_NANOS
from noema.domain.tools import InputType, Tool, ToolInput, ToolOverride, Visibility

DEFAULT_EXPECTED_SECONDS = 30.0
DEFAULT_MAX_SECONDS = 15 * 60.0
_MAX_SECONDS_LIMIT = 24 * 3600.0
_MAX_MULTIPLIER = 1000.0
_MAX_PRIORITY = 10**9
_MAX_DISPLAY_NAME = 100
_MAX_BOUND = 2.0**63
_BOUNDABLE = frozenset({InputType.NUMBER, InputType.INTEGER, InputType.SLIDER})


@dataclass(frozen=True)
class MatchedOverride:
    """The override that applies to one tool, the key it was found under, and conflicts noticed."""

    override: ToolOverride
    key: str
    warnings: tuple[str, ...] = ()


def match_overrides(
    default_commands: Mapping[str, str], overrides: Mapping[str, ToolOverride]
) -> dict[str, MatchedOverride]:
    """Overrides by tool id: keyed by deployment id, else by the tool's default (un-overridden) command."""
    usable = {k: v for k, v in overrides.items() if isinstance(k, str) and isinstance(v, ToolOverride)}
    result = {key: MatchedOverride(usable[key], key) for key in sorted(usable) if key in default_commands}
    by_command = {command: tool_id for tool_id, command in default_commands.items()}
    for key in sorted(k for k in usable if k not in default_commands):
        tool_id = by_command.get(key.strip()) or by_command.get(command_name(key))
        if tool_id is None:
            continue
        found = result.get(tool_id)
        if found is None:
            result[tool_id] = MatchedOverride(usable[key], key)
        else:  # the deployment id (or the first key in sorted order) wins
            warning = f"override {key[:60]!r} ignored: the override {found.key[:60]!r} already applies"
            result[tool_id] = replace(found, warnings=(*found.warnings, warning))
    return result


def explicit_command(override: ToolOverride, warnings: list[str]) -> str | None:
    """The command an override asks for, normalised; None (with a warning) if it asks for none usable."""
    raw = override.command
    if raw is None:
        return None
    if not isinstance(raw, str) or not any(c.isalnum() for c in raw):
        warnings.append(f"command {_show(raw)} ignored: not a usable name")
        return None
    name = command_name(raw)
    if name != raw:
        warnings.append(f"command {_show(raw)} normalised to {name!r}")
    return name


def apply_override(tool: Tool, override: ToolOverride, warnings: list[str]) -> Tool:
    """The tool with every valid field of the override applied."""
    changes: dict[str, Any] = {}
    visibility = _visibility(override.visibility, warnings)
    if visibility is not None:
        changes["visibility"] = visibility
    number_fields = (
        ("priority", override.priority, _priority),
        ("price_multiplier", override.price_multiplier, _multiplier),
        ("flat_price_nanos", override.flat_price_nanos, _flat_price),
        ("expected_seconds", override.expected_seconds, _seconds),
        ("max_seconds", override.max_seconds, _seconds),
    )
    for field, value, check in number_fields:
        if value is not None:
            checked = check(value)
            if checked is None:
                warnings.append(f"{field} {_show(value)} ignored: out of range or not a number")
            else:
                changes[field] = checked
    changes.update(_texts(override, warnings))
    if override.base_model is not None:
        changes.update(_base_model(override.base_model, warnings))
    inputs = tool.inputs
    if isinstance(override.bounds, Mapping) and override.bounds:
        inputs = apply_bounds(inputs, override.bounds, warnings)
    if isinstance(override.defaults, Mapping) and override.defaults:
        inputs = apply_defaults(inputs, override.defaults, warnings)
    if inputs != tool.inputs:
        changes.update(inputs=inputs, primary_input=primary_input_of(inputs))
    return replace(tool, **changes)


def apply_bounds(inputs: Sequence[ToolInput], bounds: Mapping[Any, Any], warnings: list[str]) -> tuple[ToolInput, ...]:
    """Inputs with the operator's ``[minimum, maximum]`` in place of the workflow's, for number inputs."""
    by_name = {spec.name: spec for spec in inputs}
    for name, value in sorted(bounds.items(), key=lambda item: _show(item[0])):
        spec = by_name.get(name) if isinstance(name, str) else None
        if spec is None or spec.type not in _BOUNDABLE:
            warnings.append(f"bounds for {_show(name)} ignored: not a number input of this tool")
            continue
        pair = _pair(value, whole=spec.type is InputType.INTEGER or spec.integer)
        if pair is None:
            warnings.append(f"bounds for {name!r} ignored: use [minimum, maximum], minimum not above maximum")
            continue
        by_name[name] = replace(spec, minimum=pair[0], maximum=pair[1])
        if not _within(spec.default, pair):
            warnings.append(f"the default of {name!r} lies outside its new bounds; set one in defaults")
    return tuple(by_name[spec.name] for spec in inputs)


def _pair(value: Any, *, whole: bool) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = value
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= _MAX_BOUND for v in value)
    if not numbers or not math.isfinite(low) or not math.isfinite(high) or low > high:
        return None
    if whole and (low != int(low) or high != int(high)):
        return None
    return float(low), float(high)


def _within(default: Any, pair: tuple[float, float]) -> bool:
    if isinstance(default, bool) or not isinstance(default, int | float):
        return True  # no number default: nothing to contradict
    return pair[0] <= default <= pair[1]


def apply_defaults(
    inputs: Sequence[ToolInput], defaults: Mapping[Any, Any], warnings: list[str]
) -> tuple[ToolInput, ...]:
    """Inputs with operator defaults in place; an input given a valid default becomes optional."""
    by_name = {spec.name: spec for spec in inputs}
    # A fixed generator: the value is only checked here, so a random seed it draws is thrown away.
    rng = random.Random(0)
    for name, value in sorted(defaults.items(), key=lambda item: _show(item[0])):
        spec = by_name.get(name) if isinstance(name, str) else None
        if spec is None:
            warnings.append(f"default for unknown input {_show(name)} ignored")
            continue
        try:
            coerced = coerce_value(spec, value, rng=rng)
        except InvalidInput as exc:
            warnings.append(f"default for {name!r} ignored: {exc.message}")
            continue
        default = value if spec.type is InputType.SEED else coerced  # keep -1 meaning "random"
        by_name[name] = replace(spec, default=default, required=False)
    return tuple(by_name[spec.name] for spec in inputs)


def _texts(override: ToolOverride, warnings: list[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    if override.display_name is not None:
        if isinstance(override.display_name, str) and override.display_name.strip():
            changes["display_name"] = override.display_name.strip()[:_MAX_DISPLAY_NAME]
        else:
            warnings.append("display_name ignored: empty or not text")
    if override.description is not None:
        if isinstance(override.description, str):
            changes["description"] = override.description.strip()[:DESCRIPTION_MAX_LENGTH]
        else:
            warnings.append("description ignored: not text")
    return changes


def _base_model(value: Any, warnings: list[str]) -> dict[str, Family | None]:
    # The family read from a checkpoint name is a guess; an operator can name it, or switch LoRAs off.
    if isinstance(value, str) and value.strip().lower() == "none":
        return {"base_model": None}
    family = family_or_none(value) if isinstance(value, str) else None
    if family is None:
        warnings.append(f"base_model {_show(value)} ignored: use {', '.join(f.value for f in Family)} or none")
        return {}
    return {"base_model": family}


def _visibility(value: Any, warnings: list[str]) -> Visibility | None:
    if value is None or isinstance(value, Visibility):
        return value
    try:
        return Visibility(value)
    except ValueError:
        warnings.append(f"visibility {_show(value)} ignored: use public, hidden or admin")
        return None


def _priority(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_PRIORITY
    return value if ok else None


def _flat_price(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_NANOS
    return value if ok else None  # zero would make the tool free


def _multiplier(value: Any) -> float | None:
    return _bounded(value, _MAX_MULTIPLIER)


def _seconds(value: Any) -> float | None:
    return _bounded(value, _MAX_SECONDS_LIMIT)


def _bounded(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value) if abs(value) < 1e300 else math.inf
    return number if math.isfinite(number) and 0 < number <= limit else None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:60])
    return repr(value) if isinstance(value, float) or _small_int(value) else type(value).__name__


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18
