"""Browser sessions for the web page: a random cookie token (stored hashed) and a CSRF token."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from noema.domain.accounts import Platform
from noema.domain.errors import Unauthenticated
from noema.domain.linking import WebSession
from noema.ports import Clock, Secrets, UnitOfWork, UnitOfWorkFactory
from noema.services import accounts, economy

LIFETIME = timedelta(days=30)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start(uow: UnitOfWork, clock: Clock, account_id: str, *, secrets: Secrets) -> tuple[str, WebSession]:
    """A new session; the plain token goes into the cookie and nowhere else."""
    token = secrets.token(32)
    now = clock.now()
    session = WebSession(
        token_hash=_hash(token),
        account_id=account_id,
        csrf_token=secrets.token(24),
        created_at=now,
        expires_at=now + LIFETIME,
    )
    async with uow:
        uow.web_sessions.add(session)
        await uow.commit()
    return token, session


async def resolve(uow: UnitOfWork, clock: Clock, token: str | None) -> WebSession:
    """The active session of a cookie token, or Unauthenticated."""
    if not token or len(token) > 100:
        raise Unauthenticated("Please sign in.")
    async with uow:
        session = await uow.web_sessions.get(_hash(token))
    if session is None or not session.active(clock.now()):
        raise Unauthenticated("Your session has ended; please sign in again.")
    return session


async def end(uow: UnitOfWork, clock: Clock, token: str) -> None:
    """Sign out: the cookie token stops working."""
    async with uow:
        session = await uow.web_sessions.get(_hash(token))
        if session is not None and session.revoked_at is None:
            session.revoked_at = clock.now()
            await uow.commit()


async def lost_on_sign_out(uow: UnitOfWork, account_id: str) -> bool:
    """Whether signing out loses the account for good: no working API key and no chat or API identity."""
    async with uow:
        identities = await uow.accounts.identities(account_id)
        keys = await uow.api_keys.list_for_account(account_id)
    return not any(k.is_active for k in keys) and all(i.platform is Platform.WEB for i in identities)


async def first_run(uow_factory: UnitOfWorkFactory, clock: Clock, *, secrets: Secrets, credit_nanos: int) -> str:
    """A new web account with a little sandbox credit (only ever offered with the sandbox backend)."""
    found = await accounts.find_or_create(
        uow_factory,
        clock,
        platform=Platform.WEB,
        platform_id=secrets.token_hex(12),
        context={"displayName": "Sandbox guest"},
    )
    await economy.credit(
        uow_factory(),
        clock,
        economy.Transfer(
            account_id=found.account.id,
            amount_nanos=credit_nanos,
            description="sandbox welcome credit",
            transaction_type="sandbox_credit",
        ),
    )
    return found.account.id
