"""Output rows in ComfyDeploy's ``WorkflowRunOutputModel`` shape (reference §A.6)."""

from __future__ import annotations

import uuid
from typing import Any

from noema.adapters.backends.sandbox.catalog import Deployment
from noema.adapters.backends.sandbox.files import FileStore
from noema.adapters.backends.sandbox.renderer import Rendered, RenderedFile
from noema.adapters.backends.sandbox.runs import iso, utcnow

#: What the real node reports for an upload; a constant keeps rows reproducible.
UPLOAD_DURATION_SECONDS = 0.1


def _media_item(url: str, rendered: RenderedFile, *, data_key: str) -> dict[str, Any]:
    # ``type`` is ComfyUI's folder type, not a MIME type; only VHS gif items carry a ``format``.
    item: dict[str, Any] = {
        "url": url,
        "type": "output",
        "filename": rendered.filename,
        "subfolder": "",
        "is_public": True,
        "upload_duration": UPLOAD_DURATION_SECONDS,
    }
    if data_key == "gifs":
        item["format"] = rendered.mime_type
        item["frame_rate"] = rendered.frame_rate
    return item


def output_rows(run_id: str, deployment: Deployment, rendered: Rendered, files: FileStore) -> list[dict[str, Any]]:
    """Store the rendered files under the run and describe them as the run's output rows."""
    output = deployment.output
    items: list[Any] = [
        _media_item(files.save_output(run_id, item.filename, item.content), item, data_key=output.data_key)
        for item in rendered.files
    ]
    items.extend(rendered.texts)
    if not items:
        return []
    now = iso(utcnow())
    return [
        {
            "id": str(uuid.uuid4()),
            "run_id": run_id,
            "output_id": output.output_id,
            "node_id": output.node_id,
            "type": None,
            "node_meta": {"node_class": output.class_type},
            "created_at": now,
            "updated_at": now,
            "data": {output.data_key: items},
        }
    ]
