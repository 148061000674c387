"""One place that turns errors into HTTP answers: ``{"error": {code, message, details?, requestId}}``."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from noema.domain import errors as e

log = structlog.get_logger(__name__)

_STATUS: list[tuple[type[e.NoemaError], int]] = [
    (e.NotFound, 404),
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.Conflict, 409),
    (e.LimitExceeded, 429),
    (e.InvalidTransition, 409),
    (e.DomainError, 400),
    (e.BackendUnavailable, 503),
    (e.Busy, 503),
    (e.ExternalServiceError, 502),
]
_HTTP_CODES = {
    400: "INVALID_INPUT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def request_id(request: Request) -> str:
    """The id of this request (set by the request-id middleware)."""
    return str(getattr(request.state, "request_id", "-"))


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body shape."""
    body: dict[str, Any] = {"code": code, "message": message, "requestId": request_id(request)}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_of(exc: e.NoemaError) -> int:
    """The HTTP status of a Noema error."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


def _validation_details(exc: RequestValidationError) -> list[dict[str, str]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        details.append({"field": ".".join(loc) or "body", "message": message})
    return details


_PAGE_PREFIXES = ("/app", "/signin", "/signout")
PUBLIC_PREFIX = "/api/v1"


def is_page(request: Request) -> bool:
    """A web page (answered in HTML) rather than an API call (answered in JSON)."""
    path = request.url.path
    return path == "/" or path.startswith(_PAGE_PREFIXES)


def page_error(request: Request, status: int, message: str) -> Response:
    """An error as a page a person can read."""
    from noema.adapters.platforms.web import templates

    heading = {401: "Please sign in", 403: "Not allowed", 404: "Not found"}.get(status, "That did not work")
    return templates.TemplateResponse(
        request,
        "error.html",
        {"heading": heading, "message": message, "sandbox": False, "signed_in": False},
        status_code=status,
    )


def _api_wording(request: Request, exc: e.NoemaError) -> str:
    """The message in the public API's words: its tool list is ``GET /api/v1/tools``, not the chat's ``/tools``."""
    tool = exc.details.get("toolId") if isinstance(exc, e.ToolNotFound) and isinstance(exc.details, dict) else None
    if isinstance(tool, str) and request.url.path.startswith(PUBLIC_PREFIX):
        return f"There is no tool called {tool!r}; GET {PUBLIC_PREFIX}/tools lists them."
    return exc.message


async def _noema_error(request: Request, exc: e.NoemaError) -> Response:
    """A Noema error: its own status, code and details; a page for the web pages."""
    status = status_of(exc)
    if is_page(request):
        return page_error(request, status, exc.message)
    if status >= 500:
        log.warning("request_failed", code=exc.code, error=exc.message, path=request.url.path)
    message = _api_wording(request, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, e.LimitExceeded | e.Busy) and exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(request, status, exc.code, message, exc.details, headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """A request FastAPI could not validate: 400, with the fields at fault."""
    if is_page(request):
        return page_error(request, 400, "Something in that form was not valid; go back and check it.")
    if any(err.get("type") == "json_invalid" for err in exc.errors()):
        return error_response(request, 400, "INVALID_INPUT", "The request body is not valid JSON.")
    return error_response(request, 400, "INVALID_INPUT", "The request is not valid.", _validation_details(exc))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """An HTTP error raised by routing or a route (404, 405, 413 ...), in the error body or as a page."""
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    if is_page(request):
        return page_error(
            request,
            exc.status_code,
            "That page does not exist." if exc.status_code == 404 else "The request could not be handled.",
        )
    message = (
        exc.detail
        if isinstance(exc.detail, str) and exc.status_code != 404
        else ("Nothing here." if exc.status_code == 404 else "The request failed.")
    )
    return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything else: logged with its traceback, answered 500 without it."""
    log.exception("unhandled_error", path=request.url.path)
    return error_response(request, 500, "INTERNAL_ERROR", "Something went wrong on our side; it was logged.")


def install_error_handlers(app: FastAPI) -> None:
    """Map the error tree, validation errors and HTTP errors to the error body; hide tracebacks."""
    app.exception_handler(e.NoemaError)(_noema_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(Exception)(_unexpected_error)
