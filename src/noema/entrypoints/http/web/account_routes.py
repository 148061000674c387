"""The account panel: balance and level, API keys, linking with a chat account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from noema.adapters.platforms.wording import EXP_EXPLAINED, POINTS_EXPLAINED
from noema.domain.errors import LimitExceeded, NoemaError
from noema.domain.linking import CodePurpose
from noema.entrypoints.http.deps import CardPaymentsDep, ChatDep, ClockDep, SecretsDep, UowDep
from noema.entrypoints.http.errors import status_of
from noema.entrypoints.http.web.context import Pages, PagesDep, UserDep, WebUser
from noema.ports import Clock, UnitOfWork
from noema.services import api_keys, economy, linking, payments, status
from noema.services.card_payments import CardPayments

router = APIRouter(include_in_schema=False)
EXPLAINED = {"points_explained": POINTS_EXPLAINED, "exp_explained": EXP_EXPLAINED}


async def panel(uow: UnitOfWork, cards: CardPayments | None, user: WebUser) -> dict[str, Any]:
    """What the account page's "Add funds" section shows: amounts offered, what is owed, your payments."""
    page = await payments.list_payments(uow, account_id=user.account_id, limit=20, cursor=None)
    wallet = await economy.wallet(uow, user.account_id)
    amounts = cards.amounts if cards is not None else ()
    return {"topup_amounts": amounts, "payments": page.items, "owed_nanos": wallet.owed_nanos}


@dataclass(frozen=True)
class AccountPage:
    """The account page, with a message when an action on it failed or succeeded."""

    request: Request
    user: WebUser
    pages: Pages
    clock: Clock
    cards: CardPayments | None

    async def show(self, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
        """Balance, points, level, live tasks, keys, linking and the "Add funds" panel."""
        uow, account_id = self.pages.uow, self.user.account_id
        report = await status.report(uow, account_id, self.clock.now())
        keys = await api_keys.list_keys(uow, account_id)
        live = await self.pages.live_rows(self.user)
        funds = await panel(uow, self.cards, self.user)
        return await self.pages.render(
            self.request,
            "account.html",
            {"page": "account", "report": report, "keys": keys, "live": live, **EXPLAINED, **funds, **extra},
            user=self.user,
            status=status_code,
        )


async def account_page(
    request: Request, user: UserDep, pages: PagesDep, clock: ClockDep, cards: CardPaymentsDep
) -> AccountPage:
    """The account page of this request (other web routes show it too: a failed top-up)."""
    return AccountPage(request, user, pages, clock, cards)


AccountPageDep = Annotated[AccountPage, Depends(account_page)]


@router.get("/app/account", response_class=HTMLResponse)
async def show_account(page: AccountPageDep) -> HTMLResponse:
    """Balance, points, level, live tasks, keys and linking."""
    return await page.show()


@router.post("/app/keys", response_class=HTMLResponse)
async def create_key(
    request: Request, page: AccountPageDep, uow: UowDep, clock: ClockDep, secrets: SecretsDep
) -> HTMLResponse:
    """Create an API key; it is shown on this page once."""
    form = await request.form()
    page.user.check_csrf(form.get("csrf"))
    try:
        name = str(form.get("name") or "")[:100] or None
        new = await api_keys.create(uow, clock, page.user.account_id, secrets=secrets, name=name)
    except NoemaError as exc:
        return await page.show(error=exc.message, status_code=status_of(exc))
    return await page.show(new_key=new.plain, status_code=201)


@router.post("/app/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, page: AccountPageDep, uow: UowDep, clock: ClockDep) -> Response:
    """Revoke one of your keys."""
    form = await request.form()
    page.user.check_csrf(form.get("csrf"))
    try:
        await api_keys.revoke(uow, clock, page.user.account_id, key_id[:64])
    except NoemaError as exc:
        return await page.show(error=exc.message, status_code=status_of(exc))
    return RedirectResponse("/app/account", status_code=303)


@router.post("/app/link", response_class=HTMLResponse)
async def enter_link_code(
    request: Request, page: AccountPageDep, uow: UowDep, clock: ClockDep, chat: ChatDep
) -> HTMLResponse:
    """Enter a code from /link in a chat: that chat account and this one become one."""
    form = await request.form()
    page.user.check_csrf(form.get("csrf"))
    try:
        survivor = await linking.redeem_link(
            uow, clock, str(form.get("code") or ""), account_id=page.user.account_id, limits=chat.link_limits
        )
    except LimitExceeded as exc:
        shown = await page.show(error=exc.message, status_code=status_of(exc))
        shown.headers["Retry-After"] = str(exc.retry_after or 60)
        return shown
    except NoemaError as exc:
        return await page.show(error=exc.message, status_code=status_of(exc))
    page.user.session.account_id = survivor.id  # the browser session moved with the merge
    return await page.show(notice="Linked: your accounts are now one.")


@router.post("/app/link/code", response_class=HTMLResponse)
async def show_link_code(
    request: Request, page: AccountPageDep, uow: UowDep, clock: ClockDep, secrets: SecretsDep
) -> HTMLResponse:
    """A code to type into /link in a chat, to bring that chat account into this one."""
    form = await request.form()
    page.user.check_csrf(form.get("csrf"))
    issued = await linking.issue(uow, clock, page.user.account_id, CodePurpose.LINK, secrets=secrets, platform="web")
    return await page.show(link_code=issued.code)
