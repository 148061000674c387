"""ComfyDeploy's wire format turned into Noema's backend-neutral types: pure functions, no I/O.

``parse_run`` reads both the ``GET /run/{id}`` object and the webhook body, so the webhook
endpoint and the poller agree on what a run update means.
"""

from __future__ import annotations

import json
import logging
import math
import mimetypes
import posixpath
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from noema.domain.errors import BackendProtocolError
from noema.domain.runs import (
    DeploymentInfo,
    InputSpec,
    MachineInfo,
    OutputKind,
    RunOutput,
    RunStatus,
    RunUpdate,
    WorkflowInfo,
    WorkflowVersionInfo,
)

logger = logging.getLogger(__name__)

TEXT_LIMIT = 500  #: live status and error reasons are shown to users: keep them short

_IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".exr"})
_ANIMATION_EXTS = frozenset({".gif", ".webp", ".apng"})
_VIDEO_EXTS = frozenset({".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"})
_AUDIO_EXTS = frozenset({".mp3", ".wav", ".flac", ".ogg", ".opus", ".m4a", ".aac"})
# Types the interpreter's built-in table lacks or gets wrong; a private MimeTypes instance
# ignores the host's /etc/mime.types, so the answer is the same on every machine.
_EXTRA_MIME = {
    ".webp": "image/webp",
    ".apng": "image/apng",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".exr": "image/x-exr",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".m4v": "video/mp4",
    ".flac": "audio/flac",
    ".opus": "audio/opus",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
}
_MIME_TABLE = mimetypes.MimeTypes()
_TEXT_KEYS = frozenset({"text", "text_file"})
_FILE_KEYS = frozenset({"files", "model_file", "mesh"})
_MEDIA_KEYS = frozenset({"images", "gifs", "audio"}) | _TEXT_KEYS | _FILE_KEYS
_REASON_KEYS = ("message", "detail", "error", "msg", "reason", "exception_message", "description")


# --- runs -------------------------------------------------------------------------------------


def parse_run(payload: Mapping[str, Any], *, confirmed: bool = False) -> RunUpdate:
    """Turn a run object (``GET /run/{id}``) or a webhook body into a ``RunUpdate``.

    ``confirmed``: the payload is the backend's answer to our own request, so its timestamps may
    decide what the run is billed for (a webhook body is only a hint).
    """
    if not isinstance(payload, Mapping):
        raise BackendProtocolError("The run payload is not a JSON object.")
    run_id = _opt_str(payload.get("run_id")) or _opt_str(payload.get("id"))
    if run_id is None:
        raise BackendProtocolError("The run payload has no run_id.")
    status = _parse_status(payload.get("status"))
    live_status = _trim(_opt_str(payload.get("live_status")))
    gpu = _opt_str(payload.get("gpu"))
    return RunUpdate(
        run_id=run_id,
        status=status,
        progress=_parse_progress(payload.get("progress")),
        live_status=live_status,
        outputs=parse_outputs(payload.get("outputs")),
        gpu=gpu.upper() if gpu else None,
        error=_failure_reason(payload, status, live_status),
        started_at=_parse_time(payload.get("started_at")),
        ended_at=_parse_time(payload.get("ended_at")),
        confirmed=confirmed,
    )


def _parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``2025-05-19T10:00:00.123Z``) as an aware UTC datetime; None if absent or odd."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # A naive time from the backend is UTC (ComfyDeploy stores UTC).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_outputs(outputs: Any) -> tuple[RunOutput, ...]:
    """Every deliverable output of a run's ``outputs`` array; malformed items are skipped."""
    if not isinstance(outputs, list):
        return ()
    parsed: list[RunOutput] = []
    for output in outputs:
        if not isinstance(output, Mapping) or not isinstance(output.get("data"), Mapping):
            logger.debug("skipping a run output that has no data object")
            continue
        parsed.extend(_outputs_of(output))
    return tuple(parsed)


def readable_reason(value: Any, *, _depth: int = 0) -> str | None:
    """A short human sentence from an error reason that may be a string, an object or a list."""
    if _depth > 3 or value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _trim(value.strip() or None)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        parts = (readable_reason(item, _depth=_depth + 1) for item in value[:5])
        return _trim("; ".join(p for p in parts if p) or None)
    if isinstance(value, Mapping):
        return _trim(_reason_of_object(value, _depth))
    return None


def _reason_of_object(value: Mapping[str, Any], depth: int) -> str | None:
    """Prefer the message-like fields; fall back to ``key: value`` pairs, never a dict repr."""
    message = next((m for key in _REASON_KEYS if (m := readable_reason(value.get(key), _depth=depth + 1))), None)
    if message is None:
        pairs = [f"{k}: {v}" for k, v in value.items() if isinstance(v, str | int | float) and v != ""]
        return ", ".join(pairs[:5]) or None
    # FastAPI validation errors say where ("loc"); ComfyUI execution errors say which node.
    loc = value.get("loc")
    if isinstance(loc, list) and loc:
        return f"{'.'.join(str(part) for part in loc)}: {message}"
    where = _opt_str(value.get("node_type")) or _opt_str(value.get("exception_type"))
    return f"{where}: {message}" if where else message


def _failure_reason(payload: Mapping[str, Any], status: RunStatus | None, live_status: str | None) -> str | None:
    reason = readable_reason(payload.get("error")) or readable_reason(payload.get("error_message"))
    if reason is None and status in (RunStatus.FAILED, RunStatus.TIMEOUT):
        reason = live_status
    return reason


def _parse_status(value: Any) -> RunStatus | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BackendProtocolError("The run status is not a string.")
    try:
        return RunStatus(value.strip().lower())
    except ValueError:
        raise BackendProtocolError(f"Unknown run status {value[:40]!r}.") from None


def _parse_progress(value: Any) -> float | None:
    progress = _opt_float(value)
    return None if progress is None else min(1.0, max(0.0, progress))


def _outputs_of(output: Mapping[str, Any]) -> Iterator[RunOutput]:
    node_id = _opt_str(output.get("node_id"))
    output_id = _opt_str(output.get("output_id"))
    for key, items in output["data"].items():
        # The execution-time output and unknown keys carry nothing to deliver.
        if key not in _MEDIA_KEYS or not isinstance(items, list):
            continue
        for item in items:
            parsed = _parse_item(key, item, node_id=node_id, output_id=output_id)
            if parsed is not None:
                yield parsed


def _parse_item(key: str, item: Any, *, node_id: str | None, output_id: str | None) -> RunOutput | None:
    if key in _TEXT_KEYS and isinstance(item, str):
        return RunOutput(kind=OutputKind.TEXT, text=item, node_id=node_id, output_id=output_id)
    if not isinstance(item, Mapping):
        logger.debug("skipping a %s output item that is not an object", key)
        return None
    if item.get("type") == "temp":  # previews: never uploaded, so there is nothing to fetch
        return None
    url = _opt_str(item.get("url"))
    if url is None or urlsplit(url).scheme not in ("http", "https"):
        logger.debug("skipping a %s output item without an http(s) url", key)
        return None
    filename = _opt_str(item.get("filename")) or _filename_from_url(url)
    extension = posixpath.splitext(filename.lower())[1] if filename else ""
    fmt = _opt_str(item.get("format"))
    return RunOutput(
        kind=_kind_for(key, extension, fmt),
        url=url,
        filename=filename,
        mime_type=_mime_for(extension, fmt),
        node_id=node_id,
        output_id=_opt_str(item.get("output_id")) or output_id,
    )


def _kind_for(key: str, extension: str, fmt: str | None) -> OutputKind:
    by_extension = _kind_by_extension(extension)
    if key == "images":
        moving = by_extension in (OutputKind.ANIMATION, OutputKind.VIDEO)
        return by_extension if by_extension and moving else OutputKind.IMAGE
    if key == "gifs":  # VHS Video Combine: gif/webp animations or real videos
        if by_extension in (OutputKind.ANIMATION, OutputKind.VIDEO):
            return by_extension
        fmt = (fmt or "").lower()
        return OutputKind.ANIMATION if fmt in ("image/gif", "image/webp") else OutputKind.VIDEO
    if key == "audio":
        return OutputKind.AUDIO
    return by_extension or OutputKind.FILE


def _kind_by_extension(extension: str) -> OutputKind | None:
    for extensions, kind in (
        (_ANIMATION_EXTS, OutputKind.ANIMATION),
        (_VIDEO_EXTS, OutputKind.VIDEO),
        (_AUDIO_EXTS, OutputKind.AUDIO),
        (_IMAGE_EXTS, OutputKind.IMAGE),
    ):
        if extension in extensions:
            return kind
    return None


def _mime_for(extension: str, fmt: str | None) -> str | None:
    if extension:
        mime = _EXTRA_MIME.get(extension) or _MIME_TABLE.types_map[True].get(extension)
        if mime:
            return mime
    if fmt and "/" in fmt:
        # VHS writes formats such as "video/h264-mp4": the container is after the last dash.
        subtype = fmt.split("/", 1)[1]
        if "-" in subtype:
            return _mime_for("." + subtype.rsplit("-", 1)[1], None)
        return fmt
    return None


def _filename_from_url(url: str) -> str | None:
    return posixpath.basename(unquote(urlsplit(url).path)) or None


# --- catalog ----------------------------------------------------------------------------------


def parse_deployment(obj: Mapping[str, Any]) -> DeploymentInfo:
    """Turn a ``DeploymentModel`` object into a ``DeploymentInfo``."""
    data = _require_object(obj, "deployment")
    deployment_id = _require_str(data, "id", "deployment")
    raw_workflow = data.get("workflow")
    workflow: Mapping[str, Any] = raw_workflow if isinstance(raw_workflow, Mapping) else {}
    description = _opt_str(data.get("description"))
    name = _opt_str(workflow.get("name")) or _opt_str(data.get("name")) or description or deployment_id
    input_types = data.get("input_types")
    return DeploymentInfo(
        id=deployment_id,
        name=name,
        workflow_id=_opt_str(data.get("workflow_id")) or _opt_str(workflow.get("id")),
        workflow_version_id=_opt_str(data.get("workflow_version_id")),
        machine_id=_opt_str(data.get("machine_id")),
        environment=_opt_str(data.get("environment")),
        description=description,
        input_types=None if input_types is None else _parse_inputs(input_types),
        output_types=_parse_output_types(data.get("output_types")),
    )


def parse_input_spec(obj: Mapping[str, Any]) -> InputSpec:
    """Turn one ``InputModel`` of a deployment's ``input_types`` into an ``InputSpec``."""
    data = _require_object(obj, "input")
    enum_options = data.get("enum_options")
    return InputSpec(
        input_id=_require_str(data, "input_id", "input"),
        class_type=_require_str(data, "class_type", "input"),
        type=_opt_str(data.get("type")),
        default_value=data.get("default_value"),
        min_value=_opt_float(data.get("min_value")),
        max_value=_opt_float(data.get("max_value")),
        step=_opt_float(data.get("step")),
        display_name=_opt_str(data.get("display_name")),
        description=_opt_str(data.get("description")),
        enum_options=_parse_enum_options(data.get("options") if enum_options is None else enum_options),
    )


def parse_machine(obj: Mapping[str, Any]) -> MachineInfo:
    """Turn a machine object into a ``MachineInfo``; the GPU is upper-cased (the price key)."""
    data = _require_object(obj, "machine")
    machine_id = _require_str(data, "id", "machine")
    gpu = _opt_str(data.get("gpu")) or _opt_str(data.get("gpu_type"))
    return MachineInfo(id=machine_id, name=_opt_str(data.get("name")) or machine_id, gpu=gpu.upper() if gpu else None)


def parse_workflow(obj: Mapping[str, Any]) -> WorkflowInfo:
    """Turn a workflow object into a ``WorkflowInfo``."""
    data = _require_object(obj, "workflow")
    workflow_id = _require_str(data, "id", "workflow")
    return WorkflowInfo(id=workflow_id, name=_opt_str(data.get("name")) or workflow_id)


def parse_workflow_version(obj: Mapping[str, Any], *, workflow_id: str | None = None) -> WorkflowVersionInfo:
    """Turn a workflow version object into a ``WorkflowVersionInfo``, keeping both graphs."""
    data = _require_object(obj, "workflow version")
    owner = _opt_str(data.get("workflow_id")) or workflow_id
    if owner is None:
        raise BackendProtocolError("The workflow version has no workflow_id.")
    version = data.get("version")
    return WorkflowVersionInfo(
        id=_require_str(data, "id", "workflow version"),
        workflow_id=owner,
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        workflow=_json_object(data.get("workflow")),
        workflow_api=_json_object(data.get("workflow_api")),
    )


def _parse_inputs(value: Any) -> tuple[InputSpec, ...]:
    if not isinstance(value, list):
        raise BackendProtocolError("The deployment's input_types is not a list.")
    specs: list[InputSpec] = []
    for item in value:
        try:
            specs.append(parse_input_spec(item))
        except BackendProtocolError as exc:
            logger.debug("skipping a malformed deployment input: %s", exc.message)
    return tuple(specs)


def _parse_output_types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    class_types = (item.get("class_type") if isinstance(item, Mapping) else item for item in value)
    return tuple(c for c in (_opt_str(ct) for ct in class_types) if c)


def _parse_enum_options(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        # The server JSON-parses the node's "options" string, but older records keep the string.
        try:
            value = json.loads(value)
        except ValueError:
            logger.debug("enum options are a string that is not JSON")
            return None
    if not isinstance(value, list):
        return None
    return tuple(str(v) for v in value if isinstance(v, str | int | float) and not isinstance(v, bool))


# --- small helpers ----------------------------------------------------------------------------


def _require_object(obj: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise BackendProtocolError(f"The {what} is not a JSON object.")
    return obj


def _require_str(data: Mapping[str, Any], key: str, what: str) -> str:
    value = _opt_str(data.get(key))
    if value is None:
        raise BackendProtocolError(f"The {what} has no {key}.")
    return value


def _opt_str(value: Any) -> str | None:
    """A non-blank string (ids may arrive as numbers); anything else is absent."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _trim(text: str | None) -> str | None:
    if text is None or len(text) <= TEXT_LIMIT:
        return text
    return text[: TEXT_LIMIT - 1] + "…"
