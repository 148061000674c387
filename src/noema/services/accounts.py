"""Accounts and their platform identities: find or create, read, update."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from noema.domain.accounts import Account, AccountStatus, Identity, Platform, parse_platform_id
from noema.domain.errors import AccountNotFound, Conflict, InvalidInput
from noema.ports import Clock, Page, UnitOfWork, UnitOfWorkFactory
from noema.services import events


@dataclass(frozen=True)
class FoundAccount:
    account: Account
    identities: list[Identity]
    is_new: bool


async def find_or_create(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    *,
    platform: Platform,
    platform_id: str,
    context: dict[str, Any] | None = None,
) -> FoundAccount:
    """The account of a platform identity, created on first contact (safe under concurrent first contacts)."""
    for _attempt in range(3):
        try:
            return await _find_or_create_once(uow_factory(), clock, platform, platform_id, context or {})
        except Conflict:
            continue  # another request created it between our read and our insert: read it now
    raise Conflict("The account is being created by another request; try again.")


async def _find_or_create_once(
    uow: UnitOfWork, clock: Clock, platform: Platform, platform_id: str, context: dict[str, Any]
) -> FoundAccount:
    async with uow:
        now = clock.now()
        account = await uow.accounts.by_identity(platform, platform_id)
        if account is not None:
            return FoundAccount(account, await uow.accounts.identities(account.id), is_new=False)
        account = Account(
            id=uow.ids.new(),
            created_at=now,
            updated_at=now,
            last_seen_platform=platform.value,
            display_name=_text(context.get("displayName")),
            username=_text(context.get("username")),
        )
        identity = Identity(
            id=uow.ids.new(),
            account_id=account.id,
            platform=platform,
            platform_id=platform_id,
            created_at=now,
            context=context,
        )
        uow.accounts.add(account)
        uow.accounts.add_identity(identity)
        events.record(
            uow,
            "account_created",
            now=now,
            account_id=account.id,
            platform=platform.value,
            data={"platform": platform.value},
        )
        await uow.commit()
        return FoundAccount(account, [identity], is_new=True)


async def create(
    uow: UnitOfWork, clock: Clock, *, identity: tuple[Platform, str] | None = None, name: str | None = None
) -> FoundAccount:
    """A new account (the operator's), holding a platform identity when given; a taken identity is refused."""
    if identity is not None:
        parse_platform_id(identity[1])
    display_name = (name or "").strip()[:200] or None
    async with uow:
        now = clock.now()
        if identity is not None:
            holder = await uow.accounts.by_identity(*identity)
            if holder is not None:
                raise Conflict(f"{identity[0].value}:{identity[1]} already belongs to account {holder.id}.")
        account = Account(id=uow.ids.new(), created_at=now, updated_at=now, display_name=display_name)
        uow.accounts.add(account)
        found = []
        if identity is not None:
            platform, platform_id = identity
            found.append(Identity(uow.ids.new(), account.id, platform, platform_id, created_at=now))
            uow.accounts.add_identity(found[0])
            account.last_seen_platform = platform.value
        data = {"platform": identity[0].value if identity else None, "by": "operator"}
        events.record(uow, "account_created", now=now, account_id=account.id, platform=None, data=data)
        await uow.commit()
        return FoundAccount(account, found, is_new=True)


async def list_page(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[FoundAccount]:
    """One page of accounts (not merged into another) with their identities, newest first."""
    async with uow:
        page = await uow.accounts.page(limit=limit, cursor=cursor)
        held = await uow.accounts.identities_of([a.id for a in page.items])
        return Page([FoundAccount(a, held[a.id], is_new=False) for a in page.items], page.next_cursor)


def _text(value: Any) -> str | None:
    return str(value)[:200] if isinstance(value, str | int) and str(value) else None


async def get(uow: UnitOfWork, account_id: str) -> FoundAccount:
    """An account with its identities, or AccountNotFound."""
    async with uow:
        account = await uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()
        return FoundAccount(account, await uow.accounts.identities(account_id), is_new=False)


async def by_platform(uow: UnitOfWork, platform: Platform, platform_id: str) -> FoundAccount:
    """The account holding a platform identity, or AccountNotFound."""
    async with uow:
        account = await uow.accounts.by_identity(platform, platform_id)
        if account is None:
            raise AccountNotFound("No account holds that platform identity.")
        return FoundAccount(account, await uow.accounts.identities(account.id), is_new=False)


@dataclass(frozen=True)
class AccountChanges:
    """The fields of an account an update may change (None = leave as is)."""

    display_name: str | None = None
    username: str | None = None
    status: AccountStatus | None = None
    wallet_address: str | None = None
    profile: dict[str, Any] | None = None


async def update(uow: UnitOfWork, clock: Clock, account_id: str, changes: AccountChanges) -> FoundAccount:
    """Change the editable fields of an account."""
    if changes.profile is not None and len(repr(changes.profile)) > 8000:
        raise InvalidInput("profile may hold at most 8000 characters.")
    async with uow:
        account = await uow.accounts.get(account_id, for_update=True)
        if account is None:
            raise AccountNotFound()
        for name in ("display_name", "username", "status", "wallet_address"):
            value = getattr(changes, name)
            if value is not None:
                setattr(account, name, value)
        if changes.profile is not None:
            account.profile = {**account.profile, **changes.profile}
        account.updated_at = clock.now()
        await uow.commit()
        return FoundAccount(account, await uow.accounts.identities(account_id), is_new=False)
