"""Personal API keys: created once in plain text, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from noema.domain.accounts import API_KEY_PREFIX, ApiKey
from noema.domain.errors import AccountNotFound, LimitExceeded, NotFound, Unauthenticated
from noema.ports import Clock, UnitOfWork
from noema.services import events

MAX_KEYS_PER_ACCOUNT = 20


def hash_key(plain: str) -> str:
    """The stored form of a key (keys are 256-bit random, so a plain SHA-256 is enough)."""
    return hashlib.sha256(plain.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    plain: str  # shown once, never stored


async def create(uow: UnitOfWork, clock: Clock, account_id: str, *, name: str | None = None) -> NewKey:
    """A new key for the account; the plain text is returned only here."""
    plain = API_KEY_PREFIX + secrets.token_urlsafe(32)
    async with uow:
        if await uow.accounts.get(account_id) is None:
            raise AccountNotFound()
        active = [k for k in await uow.api_keys.list_for_account(account_id) if k.is_active]
        if len(active) >= MAX_KEYS_PER_ACCOUNT:
            raise LimitExceeded(f"An account may hold at most {MAX_KEYS_PER_ACCOUNT} active keys; revoke one first.")
        now = clock.now()
        key = ApiKey(
            id=uow.ids.new(),
            account_id=account_id,
            prefix=plain[: len(API_KEY_PREFIX) + 6],
            key_hash=hash_key(plain),
            created_at=now,
            name=(name or None) and name[:100],
        )
        uow.api_keys.add(key)
        events.record(uow, "api_key_created", now=now, account_id=account_id, data={"prefix": key.prefix})
        await uow.commit()
        return NewKey(key, plain)


async def authenticate(uow: UnitOfWork, clock: Clock, plain: str) -> str:
    """The account id a key belongs to, or Unauthenticated for an unknown or revoked key."""
    if not plain.startswith(API_KEY_PREFIX) or len(plain) > 200:
        raise Unauthenticated("That API key is not valid.")
    async with uow:
        key = await uow.api_keys.by_hash(hash_key(plain))
        if key is None or not key.is_active:
            raise Unauthenticated("That API key is not valid or has been revoked.")
        now = clock.now()
        # Record use at most once a minute: a busy integrator should not turn every read into a write.
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            key.last_used_at = now
            await uow.commit()
        return key.account_id


async def list_keys(uow: UnitOfWork, account_id: str) -> list[ApiKey]:
    """The account's keys, newest first (hashes only)."""
    async with uow:
        return await uow.api_keys.list_for_account(account_id)


async def revoke(uow: UnitOfWork, clock: Clock, account_id: str, key_id: str) -> ApiKey:
    """Revoke one of the account's keys (revoking twice changes nothing)."""
    async with uow:
        key = await uow.api_keys.get(key_id)
        if key is None or key.account_id != account_id:
            raise NotFound("No such API key on this account.")
        if key.revoked_at is None:
            key.revoked_at = clock.now()
            events.record(
                uow, "api_key_revoked", now=key.revoked_at, account_id=account_id, data={"prefix": key.prefix}
            )
            await uow.commit()
        return key
