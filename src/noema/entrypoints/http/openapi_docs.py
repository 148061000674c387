"""Two OpenAPI documents: the public API's for integrators, the internal API's for internal clients only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from noema.entrypoints.http.deps import internal_client

PUBLIC_DOC = "/api/v1/openapi.json"
INTERNAL_DOC = "/internal/v1/openapi.json"
_PUBLIC_PREFIX = "/api/v1/"
_INTERNAL_PREFIX = "/internal/v1/"


def _schema(app: FastAPI, prefix: str, title: str) -> dict[str, Any]:
    """The app's schema cut to the paths under ``prefix`` and the component schemas they use."""
    full = app.openapi()
    paths = {path: item for path, item in full.get("paths", {}).items() if path.startswith(prefix)}
    schemas = full.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = _refs(paths)
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending |= _refs(schemas[name])
    doc: dict[str, Any] = {**full, "info": {**full["info"], "title": title}, "paths": paths}
    doc["components"] = {**full.get("components", {}), "schemas": {k: v for k, v in schemas.items() if k in used}}
    return doc


def _refs(node: Any) -> set[str]:
    """The component schema names ``node`` refers to, at any depth."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def docs_router() -> APIRouter:
    """``/api/v1/openapi.json`` and its Swagger UI; ``/internal/v1/openapi.json`` behind the internal key."""
    router = APIRouter(include_in_schema=False)
    cache: dict[str, dict[str, Any]] = {}  # one router per app: its documents are built once

    def _document(app: FastAPI, prefix: str, title: str) -> dict[str, Any]:
        if prefix not in cache:
            cache[prefix] = _schema(app, prefix, title)
        return cache[prefix]

    @router.get(PUBLIC_DOC)
    async def public_document(request: Request) -> JSONResponse:
        """The public API: tools, generations, presets, preferences, payments and your status."""
        return JSONResponse(_document(request.app, _PUBLIC_PREFIX, "Noema public API"))

    @router.get("/api/v1/docs")
    async def public_docs() -> HTMLResponse:
        """Swagger UI over the public document."""
        return get_swagger_ui_html(openapi_url=PUBLIC_DOC, title="Noema public API")

    @router.get(INTERNAL_DOC, dependencies=[Depends(internal_client)])
    async def internal_document(request: Request) -> JSONResponse:
        """The internal API, for platform clients and the admin."""
        return JSONResponse(_document(request.app, _INTERNAL_PREFIX, "Noema internal API"))

    return router
