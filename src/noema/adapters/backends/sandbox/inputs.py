"""Turn the ``inputs`` of a run request into the values a workflow runs with.

The real service accepts any inputs at queue time and lets ComfyUI fail the run later, so these
errors never reject a request: they make the run end ``failed`` with the message as live status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from noema.adapters.backends.sandbox.catalog import Deployment, InputDef
from noema.adapters.backends.sandbox.config import Dice

MAX_TEXT_CHARS = 10_000
SEED_CLASS = "ComfyUIDeployExternalSeed"
_INTEGER_CLASSES = {SEED_CLASS, "ComfyUIDeployExternalNumberInt", "ComfyUIDeployExternalNumberSliderInt"}
_FLOAT_CLASSES = {"ComfyUIDeployExternalNumber", "ComfyUIDeployExternalNumberSlider"}
_TEXT_CLASSES = {
    "ComfyUIDeployExternalText",
    "ComfyUIDeployExternalTextAny",
    "ComfyUIDeployExternalTextSingleLine",
}
_IMAGE_CLASSES = {"ComfyUIDeployExternalImage", "ComfyUIDeployExternalImageAlpha"}


class InputError(ValueError):
    """An input value the workflow cannot run with."""


def _as_int(spec: InputDef, value: Any) -> int:
    if isinstance(value, bool):
        raise InputError(f"{spec.input_id} must be a whole number, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InputError(f"{spec.input_id} must be a whole number, got {str(value)[:40]!r}")


def _as_float(spec: InputDef, value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InputError(f"{spec.input_id} must be a number, got {value[:40]!r}") from None
    else:
        raise InputError(f"{spec.input_id} must be a number, got {str(value)[:40]!r}")
    if not math.isfinite(number):
        raise InputError(f"{spec.input_id} must be a finite number")
    return number


def _as_bool(spec: InputDef, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InputError(f"{spec.input_id} must be true or false, got {str(value)[:40]!r}")


def _as_text(spec: InputDef, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"{spec.input_id} must be text, got {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"{spec.input_id} is longer than {MAX_TEXT_CHARS} characters")
    return text


def _check_range(spec: InputDef, number: float) -> None:
    if spec.min_value is not None and number < spec.min_value:
        raise InputError(f"{spec.input_id} must be at least {spec.min_value:g}, got {number:g}")
    if spec.max_value is not None and number > spec.max_value:
        raise InputError(f"{spec.input_id} must be at most {spec.max_value:g}, got {number:g}")


def coerce(spec: InputDef, value: Any) -> Any:
    """One input value converted to its node's type and checked against its limits."""
    if spec.class_type in _INTEGER_CLASSES:
        number: float = _as_int(spec, value)
        _check_range(spec, number)
        return number
    if spec.class_type in _FLOAT_CLASSES:
        number = _as_float(spec, value)
        _check_range(spec, number)
        return number
    if spec.class_type == "ComfyUIDeployExternalBoolean":
        return _as_bool(spec, value)
    if spec.class_type == "ComfyUIDeployExternalEnum":
        text = _as_text(spec, value)
        if spec.options is not None and text not in spec.options:
            raise InputError(f"{spec.input_id} must be one of {', '.join(spec.options)}, got {text[:40]!r}")
        return text
    if spec.class_type in _IMAGE_CLASSES:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{spec.input_id} must be an image URL")
        return value.strip()
    if spec.class_type in _TEXT_CLASSES:
        return _as_text(spec, value)
    return value


def image_input_id(deployment: Deployment) -> str | None:
    """The id of the deployment's image input, if it takes one."""
    return next((spec.input_id for spec in deployment.inputs if spec.class_type in _IMAGE_CLASSES), None)


def resolve_inputs(deployment: Deployment, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The value of every input of the deployment: the request's value, else the default."""
    values: dict[str, Any] = {}
    for spec in deployment.inputs:
        if spec.input_id in raw:
            values[spec.input_id] = coerce(spec, raw[spec.input_id])
        elif spec.required:
            raise InputError(f"{spec.input_id} is required")
        else:
            values[spec.input_id] = spec.default
    return values


def with_seed(deployment: Deployment, inputs: Mapping[str, Any], dice: Dice) -> dict[str, Any]:
    """The request inputs with a random seed chosen wherever the seed is missing or -1."""
    chosen = dict(inputs)
    for spec in deployment.inputs:
        if spec.class_type != SEED_CLASS:
            continue
        value = chosen.get(spec.input_id, -1)
        try:
            random_seed = _as_int(spec, value) == -1
        except InputError:
            # Leave a bad seed in place: resolving the inputs will fail the run with its message.
            random_seed = False
        if random_seed:
            chosen[spec.input_id] = dice.seed()
    return chosen
