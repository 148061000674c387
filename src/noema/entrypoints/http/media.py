"""``GET /media/{key}/{filename}``: Noema's own stored files (results of its ComfyUI servers).

Only a content-type allow-list is served inline; anything else is an attachment, and every answer
says ``nosniff`` so a browser never guesses a type that could run script.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

from noema.entrypoints.http.deps import MediaStoreDep

router = APIRouter(tags=["media"], include_in_schema=False)


@router.get("/media/{key}/{filename}")
async def media_file(key: str, filename: str, store: MediaStoreDep) -> Response:
    """One stored file, or 404 (the same for a wrong key, a wrong name and no store at all)."""
    found = store.path(key, filename) if store is not None else None
    if store is None or found is None:
        return JSONResponse({"code": "NOT_FOUND", "message": "No such file."}, status_code=404)
    inline = store.inline_type(filename)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"}
    if inline is None:
        return FileResponse(
            found, media_type="application/octet-stream", filename=filename, headers=headers
        )  # attachment
    return FileResponse(found, media_type=inline, headers=headers)
