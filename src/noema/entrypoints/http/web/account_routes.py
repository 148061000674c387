"""The account panel: balance and level, API keys, linking with a chat account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from noema.adapters.platforms.wording import EXP_EXPLAINED, POINTS_EXPLAINED
from noema.domain.errors import LimitExceeded, NoemaError
from noema.domain.linking import CodePurpose
from noema.entrypoints.http.errors import status_of
from noema.entrypoints.http.web.context import UserDep, WebUser, live_rows, render
from noema.services import api_keys, economy, linking, payments, status

router = APIRouter(include_in_schema=False)
EXPLAINED = {"points_explained": POINTS_EXPLAINED, "exp_explained": EXP_EXPLAINED}


async def panel(user: WebUser) -> dict[str, Any]:
    """What the account page's "Add funds" section shows: amounts offered, what is owed, your payments."""
    c = user.container
    page = await payments.list_payments(c.uow(), account_id=user.account_id, limit=20, cursor=None)
    wallet = await economy.wallet(c.uow(), user.account_id)
    amounts = c.settings.stripe_amounts if c.stripe is not None else ()
    return {"topup_amounts": amounts, "payments": page.items, "owed_nanos": wallet.owed_nanos}


async def _account_page(request: Request, user: WebUser, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    c = user.container
    report = await status.report(c.uow(), user.account_id, c.clock.now())
    keys = await api_keys.list_keys(c.uow(), user.account_id)
    live = await live_rows(user)
    funds = await panel(user)
    return await render(
        request,
        "account.html",
        {"page": "account", "report": report, "keys": keys, "live": live, **EXPLAINED, **funds, **extra},
        user=user,
        status=status_code,
    )


#: the account page with a message, for other web routes (a failed top-up)
account_page_with = _account_page


@router.get("/app/account", response_class=HTMLResponse)
async def account_page(request: Request, user: UserDep) -> HTMLResponse:
    """Balance, points, level, live tasks, keys and linking."""
    return await _account_page(request, user)


@router.post("/app/keys", response_class=HTMLResponse)
async def create_key(request: Request, user: UserDep) -> HTMLResponse:
    """Create an API key; it is shown on this page once."""
    form = await request.form()
    user.check_csrf(form.get("csrf"))
    c = user.container
    try:
        new = await api_keys.create(c.uow(), c.clock, user.account_id, name=str(form.get("name") or "")[:100] or None)
    except NoemaError as exc:
        return await _account_page(request, user, error=exc.message, status_code=400)
    return await _account_page(request, user, new_key=new.plain, status_code=201)


@router.post("/app/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, user: UserDep) -> Response:
    """Revoke one of your keys."""
    form = await request.form()
    user.check_csrf(form.get("csrf"))
    c = user.container
    try:
        await api_keys.revoke(c.uow(), c.clock, user.account_id, key_id[:64])
    except NoemaError as exc:
        return await _account_page(request, user, error=exc.message, status_code=404)
    return RedirectResponse("/app/account", status_code=303)


@router.post("/app/link", response_class=HTMLResponse)
async def enter_link_code(request: Request, user: UserDep) -> HTMLResponse:
    """Enter a code from /link in a chat: that chat account and this one become one."""
    form = await request.form()
    user.check_csrf(form.get("csrf"))
    c = user.container
    try:
        survivor = await linking.redeem_link(
            c.uow(), c.clock, str(form.get("code") or ""), account_id=user.account_id, limits=c.chat.link_limits
        )
    except LimitExceeded as exc:
        page = await _account_page(request, user, error=exc.message, status_code=429)
        page.headers["Retry-After"] = str(exc.retry_after or 60)
        return page
    except NoemaError as exc:
        return await _account_page(request, user, error=exc.message, status_code=status_of(exc))
    user.session.account_id = survivor.id  # the browser session moved with the merge
    return await _account_page(request, user, notice="Linked: your accounts are now one.")


@router.post("/app/link/code", response_class=HTMLResponse)
async def show_link_code(request: Request, user: UserDep) -> HTMLResponse:
    """A code to type into /link in a chat, to bring that chat account into this one."""
    form = await request.form()
    user.check_csrf(form.get("csrf"))
    c = user.container
    issued = await linking.issue(c.uow(), c.clock, user.account_id, CodePurpose.LINK, platform="web")
    return await _account_page(request, user, link_code=issued.code)
