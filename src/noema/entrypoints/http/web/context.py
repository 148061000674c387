"""What every web page needs: the signed-in browser session, CSRF checks, and rendering."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from noema.adapters.platforms.web import templates
from noema.domain.errors import Forbidden, Unauthenticated
from noema.domain.generation import LIVE
from noema.domain.ids import short_id
from noema.domain.linking import WebSession
from noema.entrypoints.http.deps import ClockDep, SandboxedDep, SettingsDep, UowDep
from noema.ports import GenerationFilter, UnitOfWork
from noema.services import economy, history, web_sessions

SESSION_COOKIE = "noema_session"
CSRF_COOKIE = "noema_csrf"  #: double-submit token for forms shown before signing in


class SignInRequired(Exception):
    """The page needs a signed-in browser; the handler sends it to the sign-in page."""


class BadCsrf(Forbidden):
    """This form has expired; reload the page and try again."""

    code = "CSRF_FAILED"


@dataclass(frozen=True)
class WebUser:
    """The signed-in browser: its session and the cookie's token."""

    session: WebSession
    token: str

    @property
    def account_id(self) -> str:
        """The signed-in account."""
        return self.session.account_id

    def check_csrf(self, form_token: Any) -> None:
        """Refuse a form whose hidden CSRF token is not this session's."""
        if not isinstance(form_token, str) or not hmac.compare_digest(form_token, self.session.csrf_token):
            raise BadCsrf()


async def web_user(request: Request, uow: UowDep, clock: ClockDep) -> WebUser:
    """The signed-in browser, or SignInRequired."""
    token = request.cookies.get(SESSION_COOKIE)
    try:
        session = await web_sessions.resolve(uow, clock, token)
    except Unauthenticated:
        raise SignInRequired() from None
    return WebUser(session, token or "")


UserDep = Annotated[WebUser, Depends(web_user)]


@dataclass(frozen=True)
class Pages:
    """Renders the page templates with what every page shows (sandbox banner, balance, CSRF token)."""

    uow: UnitOfWork  #: this request's
    sandboxed: bool
    https: bool  #: cookies are Secure whenever Noema is served over https

    async def render(
        self, request: Request, name: str, context: dict[str, Any], *, user: WebUser | None = None, status: int = 200
    ) -> HTMLResponse:
        """A page with the shared context."""
        shared: dict[str, Any] = {"sandbox": self.sandboxed, "signed_in": user is not None}
        if user is not None:
            wallet = await economy.wallet(self.uow, user.account_id)
            shared.update(csrf=user.session.csrf_token, balance_nanos=wallet.free_nanos, held_nanos=wallet.held_nanos)
        return templates.TemplateResponse(request, name, {**shared, **context}, status_code=status)

    async def live_rows(self, user: WebUser) -> list[dict[str, Any]]:
        """The account's running generations, for the "Running now" lists."""
        page = await history.search(
            self.uow, GenerationFilter(account_id=user.account_id, status_in=tuple(LIVE)), limit=10, cursor=None
        )
        return [
            {
                "id": g.id,
                "short": short_id(g.id),
                "tool": g.tool_command,
                "status": g.status.value.replace("_", " "),
                "progress": g.progress,
            }
            for g in page.items
        ]

    def set_session_cookie(self, response: Response, token: str) -> None:
        """The session cookie: HttpOnly, SameSite=Lax, Secure on https."""
        response.set_cookie(
            SESSION_COOKIE, token, max_age=30 * 86400, httponly=True, samesite="lax", secure=self.https, path="/"
        )

    def set_csrf_cookie(self, response: Response, csrf: str) -> None:
        """The double-submit cookie of the sign-in forms."""
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="lax", secure=self.https, path="/")


async def pages(uow: UowDep, sandboxed: SandboxedDep, settings: SettingsDep) -> Pages:
    """How this request renders pages."""
    return Pages(uow, sandboxed, settings.base_url.startswith("https://"))


PagesDep = Annotated[Pages, Depends(pages)]


def pre_session_csrf(request: Request) -> str:
    """The double-submit token for sign-in forms (reused from the cookie when present)."""
    existing = request.cookies.get(CSRF_COOKIE)
    return existing if existing and len(existing) < 100 else secrets.token_urlsafe(24)


def check_pre_session_csrf(request: Request, form_token: Any) -> None:
    """A sign-in form must echo the token of its cookie."""
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if not isinstance(form_token, str) or not cookie or not hmac.compare_digest(form_token, cookie):
        raise BadCsrf()
