"""Per-account defaults for a tool: checked against the tool's schema, applied under explicit inputs."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from noema.domain.errors import InvalidInput
from noema.domain.inputs import coerce_value
from noema.domain.tools import InputType, Tool

MAX_TEXT = 2000


def settable(tool: Tool) -> list[str]:
    """Inputs a user may keep a default for: everything but files, LoRA pickers and the main prompt."""
    prompt = tool.prompt_input
    return [
        spec.name
        for spec in tool.inputs
        if not spec.type.is_media and spec.type is not InputType.LORA and (prompt is None or spec.name != prompt.name)
    ]


def check(tool: Tool, raw: Any) -> dict[str, Any]:
    """The changes to store, each value as given once it is known to be valid; ``None`` removes a default."""
    if not isinstance(raw, Mapping):
        raise InvalidInput('Defaults must be an object of input names and values, e.g. {"steps": 30}.')
    allowed = settable(tool)
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        spec = tool.input(name) if name in allowed else None
        if spec is None:
            shown = ", ".join(allowed) or "nothing"
            raise InvalidInput(
                f"{str(name)[:60]!r} is not an input of /{tool.command} you can set a default for; "
                f"you can set: {shown}.",
                details={"field": str(name)[:100]},
            )
        if value is not None:
            if (isinstance(value, str) and len(value) > MAX_TEXT) or not isinstance(value, str | int | float | bool):
                raise InvalidInput(f"The default for {name} must be a short text, a number or true/false.")
            coerce_value(spec, value, rng=random.Random(0))  # raises with the input's own rule
        changes[name] = value
    return changes


def merged(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults after applying ``changes`` (a None value removes that default)."""
    result = {**stored, **changes}
    return {k: v for k, v in result.items() if v is not None}


def under_explicit(tool: Tool, defaults: Mapping[str, Any], explicit: Mapping[str, Any]) -> dict[str, Any]:
    """The request's inputs: the account's defaults (those still valid for the tool) under what was sent."""
    allowed = set(settable(tool))
    return {**{k: v for k, v in defaults.items() if k in allowed}, **explicit}
