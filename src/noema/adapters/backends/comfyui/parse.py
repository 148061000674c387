"""Pure parsers from ComfyUI 0.3.64's JSON to the client's records (shapes observed on the real server).

Anything that does not have the expected shape raises ``BackendProtocolError``; no traceback the
server sends (validation exceptions, ``execution_error``) is ever copied into a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from noema.adapters.backends.comfyui.models import (
    InputSpec,
    NodeInfo,
    OutputKind,
    PromptOutput,
    PromptResult,
    PromptStatus,
    QueueState,
    SystemStats,
)
from noema.domain.errors import BackendProtocolError

_ANIMATION_NODES = frozenset({"SaveAnimatedWEBP", "SaveAnimatedPNG"})
_VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mov", ".mkv", ".avi"})
_ANIMATION_EXTENSIONS = frozenset({".gif", ".apng"})
_FILE_LISTS = ("images", "gifs", "videos", "animated_images", "audio")
_END_MESSAGES = ("execution_success", "execution_error", "execution_interrupted")
_MAX_SENTENCE = 1000


def ms_to_datetime(value: Any) -> datetime | None:
    """A ComfyUI timestamp (milliseconds since the epoch) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_history(prompt_id: str, data: Any) -> PromptResult | None:
    """``GET /history/{id}`` → the finished prompt, or None while it is not (``{}``)."""
    if not isinstance(data, Mapping):
        raise BackendProtocolError("ComfyUI answered /history with something other than an object.")
    entry = data.get(prompt_id)
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("status"), Mapping):
        raise BackendProtocolError("ComfyUI's history entry has no status.")
    messages = _messages(entry["status"].get("messages"))
    status = _status(entry["status"], messages)
    classes = _class_types(entry.get("prompt"))
    outputs = entry.get("outputs") or {}
    if not isinstance(outputs, Mapping):
        raise BackendProtocolError("ComfyUI's history entry has outputs that are not an object.")
    return PromptResult(
        prompt_id=prompt_id,
        status=status,
        outputs=tuple(o for node_id, out in outputs.items() for o in parse_node_output(str(node_id), out, classes)),
        started_at=ms_to_datetime(messages.get("execution_start", {}).get("timestamp")),
        ended_at=next((ms_to_datetime(messages[k].get("timestamp")) for k in _END_MESSAGES if k in messages), None),
        error=error_text(messages["execution_error"]) if "execution_error" in messages else None,
        cached_nodes=tuple(str(n) for n in messages.get("execution_cached", {}).get("nodes", []) or []),
    )


def _messages(raw: Any) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], Mapping):
            found[str(item[0])] = item[1]
    return found


def _status(status: Mapping[str, Any], messages: Mapping[str, Any]) -> PromptStatus:
    if "execution_interrupted" in messages:
        return PromptStatus.INTERRUPTED
    if status.get("status_str") == "success" and status.get("completed") is True:
        return PromptStatus.SUCCESS
    return PromptStatus.ERROR


def _class_types(prompt: Any) -> dict[str, str]:
    """Node id → class name from the history's ``prompt`` ``[number, id, graph, extra, outputs]``."""
    if isinstance(prompt, list) and len(prompt) >= 3 and isinstance(prompt[2], Mapping):
        return {str(k): str(v.get("class_type", "")) for k, v in prompt[2].items() if isinstance(v, Mapping)}
    return {}


def parse_node_output(node_id: str, output: Any, classes: Mapping[str, str]) -> list[PromptOutput]:
    """One node's ``output`` object (``images``/``gifs``/``videos`` file lists, ``text``) as outputs."""
    if not isinstance(output, Mapping):
        raise BackendProtocolError(f"ComfyUI's output of node {node_id} is not an object.")
    class_type = classes.get(node_id, "")
    animated = output.get("animated") == [True] or any(x is True for x in output.get("animated") or [])
    found: list[PromptOutput] = []
    for key in _FILE_LISTS:
        for item in output.get(key) or []:
            if not isinstance(item, Mapping) or not isinstance(item.get("filename"), str) or not item["filename"]:
                raise BackendProtocolError(f"ComfyUI's output of node {node_id} names no file.")
            filename = item["filename"]
            found.append(
                PromptOutput(
                    node_id=node_id,
                    kind=_kind(filename, class_type=class_type, animated=animated, key=key),
                    filename=filename,
                    subfolder=str(item.get("subfolder") or ""),
                    type=str(item.get("type") or "output"),
                )
            )
    texts = output.get("text")
    for text in texts if isinstance(texts, list) else []:
        found.append(PromptOutput(node_id=node_id, kind=OutputKind.TEXT, text=str(text)))
    return found


def _kind(filename: str, *, class_type: str, animated: bool, key: str) -> OutputKind:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in _VIDEO_EXTENSIONS or key == "videos":
        return OutputKind.VIDEO
    if class_type in _ANIMATION_NODES or animated or suffix in _ANIMATION_EXTENSIONS or key == "gifs":
        return OutputKind.ANIMATION
    return OutputKind.IMAGE


def error_text(data: Mapping[str, Any]) -> str:
    """``execution_error`` in words: ``node_type: exception_message`` (the traceback is dropped)."""
    node_type = str(data.get("node_type") or "node")
    message = str(data.get("exception_message") or data.get("exception_type") or "failed").strip()
    return f"{node_type}: {message}"[:_MAX_SENTENCE]


def validation_sentence(body: Any) -> str:
    """A 400 from ``POST /prompt`` in words, e.g. ``SaveImage: Required input is missing: images``."""
    if not isinstance(body, Mapping):
        return "ComfyUI refused the workflow."
    parts: list[str] = []
    node_errors = body.get("node_errors")
    for node_id, info in node_errors.items() if isinstance(node_errors, Mapping) else []:
        if not isinstance(info, Mapping):
            continue
        class_type = str(info.get("class_type") or f"node {node_id}")
        for err in info.get("errors") or []:
            if isinstance(err, Mapping):
                parts.append(f"{class_type}: {_reason(err)}")
    if not parts:
        error = body.get("error")
        if isinstance(error, Mapping):
            parts.append(_reason(error))
        elif isinstance(error, str) and error:
            parts.append(error)
    sentence = "; ".join(p for p in parts if p) or "ComfyUI refused the workflow."
    return sentence[:_MAX_SENTENCE]


def _reason(err: Mapping[str, Any]) -> str:
    message = str(err.get("message") or "").strip()
    details = str(err.get("details") or "").strip()
    # An exception's details is its bare text (such as a KeyError's "'9'"); the message says enough.
    if err.get("type") == "exception_during_validation":
        return f"{message}: {details}" if details and len(details) < 200 else message
    return f"{message}: {details}" if details else message


def parse_queue(data: Any) -> QueueState:
    """``GET /queue`` → the running and pending prompt ids (and who sent each)."""
    if not isinstance(data, Mapping):
        raise BackendProtocolError("ComfyUI answered /queue with something other than an object.")
    running, pending = data.get("queue_running"), data.get("queue_pending")
    items = [*running, *pending] if isinstance(running, list) and isinstance(pending, list) else []
    return QueueState(
        running=_queue_ids(running), pending=_queue_ids(pending), client_ids=tuple(_client_id(i) for i in items)
    )


def _client_id(item: Any) -> str:
    extra = item[3] if isinstance(item, list) and len(item) >= 4 else None
    value = extra.get("client_id") if isinstance(extra, Mapping) else None
    return value if isinstance(value, str) else ""


def _queue_ids(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        raise BackendProtocolError("ComfyUI's queue is not a list.")
    # Each item is [number, prompt_id, prompt, extra_data, outputs]; the order is the number's.
    ordered = sorted((i for i in items if isinstance(i, list) and len(i) >= 2), key=lambda i: _number(i[0]))
    return tuple(str(i[1]) for i in ordered)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def parse_system_stats(data: Any) -> SystemStats:
    """``GET /system_stats`` → version and device names."""
    system = data.get("system") if isinstance(data, Mapping) else None
    if not isinstance(system, Mapping):
        raise BackendProtocolError("ComfyUI answered /system_stats without a system object.")
    devices = data.get("devices") or []
    names = tuple(str(d.get("name")) for d in devices if isinstance(d, Mapping) and d.get("name"))
    return SystemStats(
        comfyui_version=str(system.get("comfyui_version") or ""),
        python_version=str(system.get("python_version") or ""),
        devices=names,
        raw=dict(data),
    )


def parse_object_info(data: Any) -> dict[str, NodeInfo]:
    """``GET /object_info`` → node class name → its inputs (with bounds and COMBO options)."""
    if not isinstance(data, Mapping):
        raise BackendProtocolError("ComfyUI answered /object_info with something other than an object.")
    return {str(name): _node(str(name), info) for name, info in data.items() if isinstance(info, Mapping)}


def _node(name: str, info: Mapping[str, Any]) -> NodeInfo:
    inputs: dict[str, InputSpec] = {}
    raw = info.get("input")
    declared: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    for section, required in (("required", True), ("optional", False)):
        specs = declared.get(section)
        for input_name, spec in specs.items() if isinstance(specs, Mapping) else []:
            inputs[str(input_name)] = _input(str(input_name), spec, required=required)
    outputs = info.get("output")
    return NodeInfo(
        name=name,
        inputs=inputs,
        outputs=tuple(str(o) for o in outputs) if isinstance(outputs, list) else (),
        output_node=info.get("output_node") is True,
        category=str(info.get("category") or ""),
    )


def _input(name: str, spec: Any, *, required: bool) -> InputSpec:
    """One input spec: ``["INT", {...}]``, ``[["a", "b"], {...}]`` (old COMBO) or ``["COMBO", {"options": [...]}]``."""
    if not isinstance(spec, list) or not spec:
        return InputSpec(name=name, type="*", required=required)
    head = spec[0]
    extra = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    options: tuple[Any, ...] | None = None
    if isinstance(head, list):
        kind, options = "COMBO", tuple(head)
    else:
        kind = str(head)
        if kind == "COMBO":
            raw = extra.get("options")
            options = tuple(raw) if isinstance(raw, list) else ()
    return InputSpec(
        name=name,
        type=kind,
        required=required,
        default=extra.get("default"),
        min=_bound(extra.get("min")),
        max=_bound(extra.get("max")),
        step=_bound(extra.get("step")),
        options=options,
        upload=bool(extra.get("image_upload") or extra.get("video_upload") or extra.get("audio_upload")),
    )


def _bound(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
