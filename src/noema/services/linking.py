"""Linking accounts across platforms (SPEC §9) and one-time sign-in links for the web page.

The rule of a merge: the account that enters a code (the redeemer) is merged into the account
that issued it (the survivor), and both sides must prove themselves, so that no single party can
move another account's balance or take it over:

- The redeemer proves itself by being signed in: its own web session or its own chat identity.
  Nothing redeems a code on someone else's behalf (there is no such endpoint).
- The survivor proves itself with the code, but only a code it asked for itself (its chat's
  ``/link``, its web page) or that the operator's ``admin`` client issued. A platform client (an
  internal client named after a platform) may issue codes for its own platform's users only, and
  such a code cannot bring another identity into an account that has something to take (a
  balance, held money, EXP or another identity): the platform client alone would then hand that
  account to whoever holds the other identity.
- Sign-in links open a whole account: only the account's own chat or the admin client issues them.
- Wrong codes are throttled in the database (every replica counts them): at most
  ``GuessLimits.per_account`` per guessing account and ``GuessLimits.overall`` in all per
  ``GUESS_WINDOW``; past either, even the right code is refused (``LimitExceeded`` with
  ``retry_after``) until the window moves on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from noema.domain import ledger
from noema.domain.accounts import Account, Platform
from noema.domain.errors import AccountNotFound, Conflict, Forbidden, InvalidInput, LimitExceeded
from noema.domain.linking import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_LIFETIME,
    GUESS_WINDOW,
    SELF,
    CodePurpose,
    GuessLimits,
    LinkCode,
    normalise_code,
    retry_after,
)
from noema.domain.money import format_usd
from noema.ports import Clock, Secrets, UnitOfWork
from noema.services import api_keys, events
from noema.services.economy import post


def new_code(purpose: CodePurpose, secrets: Secrets) -> str:
    """A fresh code from ``secrets``: 8 easy-to-read characters to type, or a long token for a sign-in link."""
    if purpose is CodePurpose.SIGN_IN:
        return secrets.token(32)
    return secrets.code(CODE_ALPHABET, CODE_LENGTH)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    code: str  #: shown once
    expires_at: datetime


async def issue(
    uow: UnitOfWork,
    clock: Clock,
    account_id: str,
    purpose: CodePurpose,
    *,
    secrets: Secrets,
    platform: str | None = None,
    issued_by: str = SELF,
) -> IssuedCode:
    """A one-time code (10 minutes) for the account: a link code to type, or a sign-in token.

    ``issued_by`` is SELF when the account itself asked (its chat, its web page), else the client.
    """
    code = new_code(purpose, secrets)
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
                issued_by=issued_by,
            )
        )
        await uow.commit()
    shown = code if purpose is CodePurpose.SIGN_IN else f"{code[:4]}-{code[4:]}"
    return IssuedCode(shown, now + CODE_LIFETIME)


async def issue_for_client(
    uow: UnitOfWork,
    clock: Clock,
    account_id: str,
    purpose: CodePurpose,
    *,
    secrets: Secrets,
    client: str,
    platform: str | None,
) -> IssuedCode:
    """A code an internal client asks for: the admin's for any account, a platform client's for its own users."""
    if client == "admin":
        return await issue(uow, clock, account_id, purpose, secrets=secrets, platform=platform, issued_by=client)
    if purpose is CodePurpose.SIGN_IN:
        raise Forbidden(f"Client {client!r} may not issue sign-in links; a chat's /link gives its own.")
    own = next((p for p in Platform if p.value == client), None)
    if own is None or platform not in (None, own.value):
        raise Forbidden(f"Client {client!r} may issue link codes only for its own platform's users.")
    async with uow:
        identities = await uow.accounts.identities(account_id)
    if not any(i.platform is own for i in identities):
        raise Forbidden(f"Client {client!r} may issue link codes only for its own platform's users.")
    return await issue(uow, clock, account_id, purpose, secrets=secrets, platform=own.value, issued_by=client)


async def _take(uow: UnitOfWork, code_hash: str, purpose: CodePurpose, now: datetime) -> LinkCode:
    code = await uow.link_codes.get(code_hash, for_update=True)
    if code is None or code.purpose is not purpose or not code.usable(now):
        raise _not_valid(purpose)
    code.used_at = now
    return code


def _not_valid(purpose: CodePurpose) -> InvalidInput:
    what = "sign-in link" if purpose is CodePurpose.SIGN_IN else "code"
    return InvalidInput(f"That {what} is not valid or has expired; ask for a new one with /link.")


async def _check_guesses(uow: UnitOfWork, account_id: str, now: datetime, limits: GuessLimits) -> None:
    """Refuse any code, right or wrong, while the account (or everyone) has guessed wrong too often."""
    since = now - GUESS_WINDOW
    waits = [
        retry_after(await uow.link_codes.failures_since(since, account_id=account_id), limits.per_account, now),
        retry_after(await uow.link_codes.failures_since(since), limits.overall, now),
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        error = LimitExceeded(f"Too many wrong link codes; try again in {wait // 60 + 1} minutes.")
        error.retry_after = wait
        raise error


async def redeem_sign_in(uow: UnitOfWork, clock: Clock, token: str) -> str:
    """The account a sign-in link belongs to; the link works once."""
    if not 20 <= len(token) <= 100:
        raise InvalidInput("That sign-in link is not valid or has expired; ask for a new one with /link.")
    async with uow:
        code = await _take(uow, _hash(token), CodePurpose.SIGN_IN, clock.now())
        await uow.commit()
        return code.account_id


async def redeem_link(
    uow: UnitOfWork, clock: Clock, raw_code: str, *, account_id: str, limits: GuessLimits | None = None
) -> Account:
    """Merge the signed-in account entering the code into the account that issued it; returns the survivor.

    ``account_id`` must be the caller's own (its web session or chat identity): see the module's rule.
    """
    code_hash = _hash(normalise_code(raw_code))
    async with uow:
        now = clock.now()
        # The guesser's row lock makes its concurrent guesses count one after another (PostgreSQL;
        # SQLite's BEGIN IMMEDIATE already does): thirty at once must not all read "none wrong yet".
        if await uow.accounts.get(account_id, for_update=True) is None:
            raise AccountNotFound()
        await _check_guesses(uow, account_id, now, limits or GuessLimits())
        code = await uow.link_codes.get(code_hash, for_update=True)
        if code is None or code.purpose is not CodePurpose.LINK or not code.usable(now):
            await uow.link_codes.record_failure(account_id, at=now)
            await uow.commit()
            raise _not_valid(CodePurpose.LINK)
        code.used_at = now
        if code.account_id == account_id:
            raise Conflict("That code comes from this same account; enter it on the other platform.")
        survivor, merged = await _lock_pair(uow, code.account_id, account_id)
        await _check_mergeable(uow, survivor, merged)
        await _check_proof(uow, code, survivor)
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
    api_keys.recent.forget(account_id=merged.id)  # its keys now name the survivor
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


async def _check_proof(uow: UnitOfWork, code: LinkCode, survivor: Account) -> None:
    """A code a platform client asked for on the survivor's behalf only links into an account with nothing to take."""
    if code.from_the_account:
        return
    at_stake = survivor.balance_nanos or survivor.held_nanos or survivor.exp
    if at_stake or len(await uow.accounts.identities(survivor.id)) > 1:
        raise Forbidden(
            "That code was not asked for by its account itself; get one with /link in that chat and enter it here."
        )


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
    # A debt from a refunded payment follows the money: the survivor owes it now.
    survivor.owed_nanos += merged.owed_nanos
    merged.owed_nanos = 0
