"""The web page: server-rendered, no build step, signed in with a secure cookie."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from noema.adapters.platforms.web import STATIC_DIR
from noema.entrypoints.http.web import account_routes, auth_routes, payment_routes, tool_routes
from noema.entrypoints.http.web.context import SignInRequired


def install_web(app: FastAPI) -> None:
    """Mount the pages and their static files."""
    router = APIRouter(include_in_schema=False)
    for module in (auth_routes, tool_routes, account_routes, payment_routes):
        router.include_router(module.router)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def _favicon() -> FileResponse:
        """The tab icon browsers ask for on every page."""
        cache = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon", headers=cache)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/", status_code=303)
