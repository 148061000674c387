"""Files given as inputs: carried as data: URIs until submit, then uploaded so the backend gets a URL."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from noema.domain.errors import InvalidInput
from noema.domain.inputs import MAX_UPLOAD_BYTES, uploaded_file_note
from noema.domain.tools import InputType, Tool
from noema.ports import Backend


def data_uri(mime: str, content: bytes) -> str:
    """Bytes as a data: URI (how uploaded files travel through validation)."""
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def storable(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as stored before upload: a file is kept as a short note, never as megabytes of base64."""
    return {
        k: uploaded_file_note(len(v) * 3 // 4) if isinstance(v, str) and v.startswith("data:") else v
        for k, v in inputs.items()
    }


async def upload(backend: Backend, tool: Tool, inputs: dict[str, Any]) -> dict[str, Any]:
    """Give the backend files it can fetch: uploaded files (as data: URIs) become backend URLs."""
    values = dict(inputs)
    for spec in tool.inputs:
        value = values.get(spec.name)
        if not spec.type.is_media or not isinstance(value, str) or not value.startswith("data:"):
            continue
        name, content, mime = _decode(value, spec.type)
        if len(content) > MAX_UPLOAD_BYTES:
            raise InvalidInput(f"The file for {spec.name} is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
        uploaded = await backend.upload_file(filename=name, content=content, content_type=mime)
        values[spec.name] = uploaded.url
    return values


def _decode(uri: str, kind: InputType) -> tuple[str, bytes, str]:
    header, _, payload = uri.partition(",")
    mime = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    try:
        content = base64.b64decode(payload, validate=True)
    except ValueError:
        raise InvalidInput(f"The {kind.value} data URI is not valid base64.") from None
    return f"input.{mime.split('/')[-1][:8]}", content, mime
