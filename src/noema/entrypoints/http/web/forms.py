"""Turning a tool's HTML form into a generation request: fields to inputs, uploads checked as images."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, UnidentifiedImageError
from starlette.datastructures import FormData, UploadFile

from noema.domain.errors import InvalidInput
from noema.domain.inputs import MAX_UPLOAD_BYTES
from noema.domain.tools import InputType, Tool

_IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


async def read_upload(upload: UploadFile, *, label: str, kind: InputType) -> tuple[str, bytes, str]:
    """The file's (name, bytes, mime), refusing oversize files and, for images, anything that is not one."""
    content = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"{label}: the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    if not content:
        raise InvalidInput(f"{label}: the file is empty.")
    mime = upload.content_type or "application/octet-stream"
    if kind is InputType.IMAGE:
        try:
            with Image.open(io.BytesIO(content)) as image:
                image.verify()
                fmt = image.format or ""
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise InvalidInput(f"{label}: that file is not an image Noema can read (PNG, JPEG, WebP or GIF).") from None
        if fmt not in _IMAGE_TYPES:
            raise InvalidInput(f"{label}: {fmt or 'this'} images are not supported; use PNG, JPEG, WebP or GIF.")
        mime = _IMAGE_TYPES[fmt]
    return (upload.filename or "upload")[:100], content, mime


async def parse_tool_form(tool: Tool, form: FormData) -> tuple[dict[str, Any], dict[str, tuple[str, bytes, str]]]:
    """Field values (strings, coerced later by the tool's schema) and uploaded files, by input name."""
    values: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes, str]] = {}
    for spec in tool.inputs:
        entries = form.getlist(spec.name)
        if not entries:
            continue
        last = entries[-1]  # a switch sends a hidden "false" followed by "true" when it is on
        label = spec.display_name or spec.name
        if isinstance(last, UploadFile):
            if last.filename:
                try:
                    files[spec.name] = await read_upload(last, label=label, kind=spec.type)
                except InvalidInput as exc:  # said next to the file input it is about
                    raise InvalidInput(exc.message, details={"field": spec.name}) from None
        elif isinstance(last, str) and last.strip() != "":
            values[spec.name] = last
    return values, files
