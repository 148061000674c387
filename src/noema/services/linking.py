"""Linking accounts across platforms (SPEC §9) and one-time sign-in links for the web page."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from noema.domain import ledger
from noema.domain.accounts import Account
from noema.domain.errors import AccountNotFound, Conflict, InvalidInput
from noema.domain.linking import CODE_LIFETIME, CodePurpose, LinkCode, new_code, normalise_code
from noema.domain.money import format_usd
from noema.ports import Clock, UnitOfWork
from noema.services import events
from noema.services.economy import post


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    code: str  #: shown once
    expires_at: datetime


async def issue(
    uow: UnitOfWork, clock: Clock, account_id: str, purpose: CodePurpose, *, platform: str | None = None
) -> IssuedCode:
    """A one-time code (10 minutes) for the account: a link code to type, or a sign-in token."""
    code = new_code(purpose)
    async with uow:
        if await uow.accounts.get(account_id) is None:
            raise AccountNotFound()
        now = clock.now()
        stored = _hash(code if purpose is CodePurpose.SIGN_IN else normalise_code(code))
        uow.link_codes.add(
            LinkCode(
                code_hash=stored,
                account_id=account_id,
                purpose=purpose,
                created_at=now,
                expires_at=now + CODE_LIFETIME,
                platform=platform,
            )
        )
        await uow.commit()
    shown = code if purpose is CodePurpose.SIGN_IN else f"{code[:4]}-{code[4:]}"
    return IssuedCode(shown, now + CODE_LIFETIME)


async def _take(uow: UnitOfWork, code_hash: str, purpose: CodePurpose, now: datetime) -> LinkCode:
    code = await uow.link_codes.get(code_hash, for_update=True)
    if code is None or code.purpose is not purpose or not code.usable(now):
        what = "sign-in link" if purpose is CodePurpose.SIGN_IN else "code"
        raise InvalidInput(f"That {what} is not valid or has expired; ask for a new one with /link.")
    code.used_at = now
    return code


async def redeem_sign_in(uow: UnitOfWork, clock: Clock, token: str) -> str:
    """The account a sign-in link belongs to; the link works once."""
    if not 20 <= len(token) <= 100:
        raise InvalidInput("That sign-in link is not valid or has expired; ask for a new one with /link.")
    async with uow:
        code = await _take(uow, _hash(token), CodePurpose.SIGN_IN, clock.now())
        await uow.commit()
        return code.account_id


async def redeem_link(uow: UnitOfWork, clock: Clock, raw_code: str, *, account_id: str) -> Account:
    """Merge the account entering the code into the account that issued it; returns the survivor."""
    code_hash = _hash(normalise_code(raw_code))
    async with uow:
        now = clock.now()
        code = await _take(uow, code_hash, CodePurpose.LINK, now)
        if code.account_id == account_id:
            raise Conflict("That code comes from this same account; enter it on the other platform.")
        survivor, merged = await _lock_pair(uow, code.account_id, account_id)
        await _check_mergeable(uow, survivor, merged)
        await _move_money(uow, survivor, merged, now)
        await uow.accounts.move_records(merged.id, survivor.id)
        await uow.loras.move_owner(merged.id, survivor.id, now=now)
        await uow.preferences.move_owner(merged.id, survivor.id)
        merged.merged_into, merged.updated_at, survivor.updated_at = survivor.id, now, now
        events.record(
            uow,
            "account_linked",
            now=now,
            account_id=survivor.id,
            platform=code.platform,
            data={"mergedAccountId": merged.id},
        )
        await uow.commit()
        return survivor


async def _lock_pair(uow: UnitOfWork, survivor_id: str, merged_id: str) -> tuple[Account, Account]:
    # Lock in id order so two merges of the same pair cannot deadlock.
    first, second = sorted((survivor_id, merged_id))
    locked = {aid: await uow.accounts.get(aid, for_update=True) for aid in (first, second)}
    survivor, merged = locked[survivor_id], locked[merged_id]
    if survivor is None or merged is None:
        raise AccountNotFound()
    return survivor, merged


async def _check_mergeable(uow: UnitOfWork, survivor: Account, merged: Account) -> None:
    if merged.held_nanos or survivor.held_nanos:
        raise Conflict("Wait until your running generations finish, then link again.")
    taken = {i.platform for i in await uow.accounts.identities(survivor.id)}
    clash = [i.platform.value for i in await uow.accounts.identities(merged.id) if i.platform in taken]
    if clash:
        raise Conflict(f"Both accounts already have a {clash[0]} identity; they cannot be merged.")


async def _move_money(uow: UnitOfWork, survivor: Account, merged: Account, now: datetime) -> None:
    """Balance and EXP move by ledger entries, so both ledgers still add up."""
    amount = merged.balance_nanos
    if amount > 0:
        meta = {"transaction_type": "account_merge", "description": f"merged account {merged.id[:8]}"}
        post(uow, merged, ledger.debit(merged, amount), key=f"merge:{merged.id}:out", now=now, **meta)
        post(
            uow,
            survivor,
            ledger.credit(survivor, amount),
            key=f"merge:{merged.id}:in",
            now=now,
            **meta,
            data={"amountUsd": format_usd(amount)},
        )
    survivor.exp += merged.exp
    merged.exp = 0
