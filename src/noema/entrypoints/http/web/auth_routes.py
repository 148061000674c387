"""Signing in to the web page: an API key, a one-time link from a chat, or the sandbox first run."""

from __future__ import annotations

import math
from datetime import timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from noema.config import Settings
from noema.domain.errors import NoemaError
from noema.domain.money import NANOS_PER_USD
from noema.entrypoints.http.deps import ClockDep, SecretsDep, SettingsDep, UowDep, UowFactoryDep
from noema.entrypoints.http.errors import status_of
from noema.entrypoints.http.web.context import (
    SESSION_COOKIE,
    Pages,
    PagesDep,
    SignInRequired,
    UserDep,
    check_pre_session_csrf,
    pre_session_csrf,
    web_user,
)
from noema.entrypoints.http.web.throttle import PerAddressThrottle
from noema.services import api_keys, linking, web_sessions

router = APIRouter(include_in_schema=False)
#: What the sandbox first run gives a new visitor to play with.
WELCOME_CREDIT = NANOS_PER_USD // 2


async def sign_in_page(request: Request, pages: Pages, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The sign-in page, with a fresh double-submit CSRF cookie."""
    csrf = pre_session_csrf(request)
    response = await pages.render(
        request, "signin.html", {"csrf": csrf, "error": error, "welcome_nanos": WELCOME_CREDIT}, status=status
    )
    pages.set_csrf_cookie(response, csrf)
    return response


def _signed_in(pages: Pages, token: str, to: str = "/app") -> Response:
    response = RedirectResponse(to, status_code=303)
    pages.set_session_cookie(response, token)
    return response


def sandbox_signups(request: Request, settings: Settings) -> PerAddressThrottle:
    """This app's limit on sandbox accounts per client address (made on first use)."""
    state = request.app.state
    if not hasattr(state, "sandbox_signups"):
        state.sandbox_signups = PerAddressThrottle(settings.sandbox_signups_per_hour, timedelta(hours=1))
    throttle: PerAddressThrottle = state.sandbox_signups
    return throttle


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, uow: UowDep, clock: ClockDep, pages: PagesDep) -> Response:
    """The tools when signed in, the sign-in page otherwise."""
    try:
        await web_user(request, uow, clock)
        return RedirectResponse("/app", status_code=303)
    except SignInRequired:
        return await sign_in_page(request, pages)


@router.post("/signin")
async def sign_in(
    request: Request,
    uow: UowDep,
    clock: ClockDep,
    secrets: SecretsDep,
    pages: PagesDep,
    api_key: str = Form(max_length=200),
    csrf: str = Form(default=""),
) -> Response:
    """Sign in with a personal API key."""
    try:
        check_pre_session_csrf(request, csrf)
        account_id = await api_keys.authenticate(uow, clock, api_key.strip())
    except NoemaError as exc:
        return await sign_in_page(request, pages, error=exc.message, status=status_of(exc))
    token, _ = await web_sessions.start(uow, clock, account_id, secrets=secrets)
    return _signed_in(pages, token)


@router.post("/signin/sandbox")
async def sign_in_sandbox(
    request: Request,
    uow_factory: UowFactoryDep,
    clock: ClockDep,
    secrets: SecretsDep,
    settings: SettingsDep,
    pages: PagesDep,
    csrf: str = Form(default=""),
) -> Response:
    """First run with the sandbox: a new account with a little sandbox credit. Never with a real backend."""
    if not pages.sandboxed:
        return await sign_in_page(
            request, pages, error="Sandbox accounts exist only with the sandbox backend.", status=403
        )
    try:
        check_pre_session_csrf(request, csrf)
    except NoemaError as exc:
        return await sign_in_page(request, pages, error=exc.message, status=status_of(exc))
    wait = sandbox_signups(request, settings).take(request.client.host if request.client else "-", clock.now())
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        page = await sign_in_page(
            request,
            pages,
            error=f"Too many sandbox accounts were made from your address; try again in {minutes} minutes, "
            "or sign in with an API key.",
            status=429,
        )
        page.headers["Retry-After"] = str(max(1, math.ceil(wait.total_seconds())))
        return page
    account_id = await web_sessions.first_run(uow_factory, clock, secrets=secrets, credit_nanos=WELCOME_CREDIT)
    token, _ = await web_sessions.start(uow_factory(), clock, account_id, secrets=secrets)
    return _signed_in(pages, token)


@router.get("/signin/link/{token}")
async def sign_in_link(
    request: Request, token: str, uow: UowDep, clock: ClockDep, secrets: SecretsDep, pages: PagesDep, to: str = ""
) -> Response:
    """A one-time sign-in link from /link in a chat (``to=topup``: from /topup card, to the top-up panel)."""
    try:
        account_id = await linking.redeem_sign_in(uow, clock, token[:200])
    except NoemaError as exc:
        return await sign_in_page(request, pages, error=exc.message, status=status_of(exc))
    session_token, _ = await web_sessions.start(uow, clock, account_id, secrets=secrets)
    return _signed_in(pages, session_token, "/app/account#add-funds" if to == "topup" else "/app")


@router.post("/signout")
async def sign_out(
    request: Request,
    user: UserDep,
    uow: UowDep,
    clock: ClockDep,
    pages: PagesDep,
    csrf: str = Form(default=""),
    confirm: str = Form(default="", max_length=10),
) -> Response:
    """End this browser's session; an account that could not be signed in to again is warned about first."""
    user.check_csrf(csrf)
    if confirm != "yes" and await web_sessions.lost_on_sign_out(uow, user.account_id):
        return await pages.render(request, "signout.html", {}, user=user)
    await web_sessions.end(uow, clock, user.token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
