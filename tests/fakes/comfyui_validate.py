"""``POST /prompt`` validation of the fake ComfyUI, after 0.3.64's ``execution.validate_prompt``.

Returns the same shapes: ``(ok, error, good_outputs, node_errors)``; the error texts are the real
server's (``Required input is missing``, ``Value 40 bigger than max of 31``, ``Value not in list`` …).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.fakes.comfyui_nodes import NODES

Result = tuple[bool, list[dict[str, Any]], str]


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def validate_prompt(prompt: Any, input_dir: Path, targets: list[str] | None = None) -> tuple[bool, Any, list[str], Any]:
    """The real server's checks: class names, outputs, then every input of every output's nodes."""
    if not isinstance(prompt, Mapping):
        return False, _error("invalid_prompt", "Prompt is not a dictionary", ""), [], {}
    if (unknown := _class_error(prompt)) is not None:
        return False, unknown, [], {}
    outputs = _output_nodes(prompt, targets)
    if not outputs:
        return False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}
    good, failed, node_errors = _validate_outputs(prompt, outputs, input_dir)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, reasons in failed for e in reasons)
        return (
            False,
            _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details),
            [],
            node_errors,
        )
    return True, None, good, node_errors


def _class_error(prompt: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The error for the first node without a ``class_type`` or of a class the server does not have."""
    for node_id, node in prompt.items():
        if not isinstance(node, Mapping) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return _error("invalid_prompt", message, f"Node ID '#{node_id}'")
        if str(node["class_type"]) not in NODES:
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return _error("invalid_prompt", message, f"Node ID '#{node_id}'")
    return None


def _output_nodes(prompt: Mapping[Any, Any], targets: list[str] | None) -> list[str]:
    """The output nodes to run (of ``targets`` only, if given), in the prompt's order."""
    return [
        str(node_id)
        for node_id, node in prompt.items()
        if NODES[str(node["class_type"])].output_node and (targets is None or node_id in targets)
    ]


def _validate_outputs(
    prompt: Mapping[str, Any], outputs: list[str], input_dir: Path
) -> tuple[list[str], list[tuple[str, list[dict[str, Any]]]], dict[str, Any]]:
    """The outputs that validate, those that do not with their reasons, and the errors of every failing node."""
    validated: dict[str, Result] = {}
    good: list[str] = []
    failed: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        try:
            ok, reasons, _ = _validate_inputs(prompt, output, validated, input_dir)
        except KeyError as exc:
            ok, reasons = False, [_error("exception_during_validation", "Exception when validating node", str(exc))]
            validated[output] = (False, reasons, output)
        if ok:
            good.append(output)
            continue
        failed.append((output, reasons))
        _add_node_errors(node_errors, prompt, validated, output)
    return good, failed, node_errors


def _add_node_errors(
    node_errors: dict[str, Any], prompt: Mapping[str, Any], validated: dict[str, Result], output: str
) -> None:
    """Every node validated so far with reasons against it, with ``output`` among the outputs it fails."""
    for node_id, (valid, node_reasons, _) in validated.items():
        if not valid and node_reasons:
            entry = node_errors.setdefault(
                node_id,
                {"errors": node_reasons, "dependent_outputs": [], "class_type": prompt[node_id]["class_type"]},
            )
            entry["dependent_outputs"].append(output)


def _validate_inputs(prompt: Mapping[str, Any], node_id: str, validated: dict[str, Result], input_dir: Path) -> Result:
    if node_id in validated:
        return validated[node_id]
    node = prompt[node_id]
    definition = NODES[node["class_type"]]
    inputs = node.get("inputs") or {}
    errors: list[dict[str, Any]] = []
    valid = True
    for name, spec in definition.required.items():
        if name not in inputs:
            errors.append(_error("required_input_missing", "Required input is missing", name, input_name=name))
            continue
        value = inputs[name]
        if isinstance(value, list):
            if len(value) != 2:
                message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
                errors.append(_error("bad_linked_input", message, name, input_name=name))
                continue
            source = prompt[value[0]]  # a missing node is a KeyError, as on the real server
            if not _validate_inputs(prompt, str(value[0]), validated, input_dir)[0]:
                valid = False
            received = NODES[source["class_type"]].outputs[value[1]]
            if spec[0] not in ("*", received):
                details = f"{name}, received_type({received}) mismatch input_type({spec[0]})"
                errors.append(_error("return_type_mismatch", "Return type mismatch between linked nodes", details))
            continue
        if (problem := _check_value(name, spec, value)) is not None:
            errors.append(problem)
    image = inputs.get("image")
    if node["class_type"] == "LoadImage" and isinstance(image, str) and not (input_dir / image).is_file():
        details = f"image - Invalid image file: {image}"
        errors.append(
            _error("custom_validation_failed", "Custom validation failed for node", details, input_name="image")
        )
    result: Result = (not errors and valid, errors, node_id)
    validated[node_id] = result
    return result


def _check_value(name: str, spec: list[Any], value: Any) -> dict[str, Any] | None:
    kind, extra = spec[0], spec[1] if len(spec) > 1 else {}
    if isinstance(kind, list):
        if name == "image":  # LoadImage's list is checked against the files by its custom validation
            return None
        if value not in kind:
            return _error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {kind}", input_name=name)
        return None
    convert = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(kind)
    if convert is None:
        return None
    try:
        value = convert(value)
    except (TypeError, ValueError) as exc:
        message = f"Failed to convert an input value to a {kind} value"
        return _error("invalid_input_type", message, f"{name}, {value}, {exc}", input_name=name)
    if "min" in extra and value < extra["min"]:
        return _error(
            "value_smaller_than_min", f"Value {value} smaller than min of {extra['min']}", name, input_name=name
        )
    if "max" in extra and value > extra["max"]:
        return _error(
            "value_bigger_than_max", f"Value {value} bigger than max of {extra['max']}", name, input_name=name
        )
    return None
