"""Personal API keys: created once in plain text, stored as a hash, revocable.

A key that was found valid is believed for ``RECHECK_SECONDS`` without asking the database again
(``RecentKeys``), so a busy integrator's requests cost no transaction just to say who they are.
Revoking is still felt at once where it happens and soon everywhere:

- on the process that revokes the key (the web page, the internal API), at once: ``revoke`` drops
  it from this process's memory before it returns;
- on every other process (another ``noema serve`` replica, or the server when ``noema apikey revoke``
  ran as its own process), at most ``RECHECK_SECONDS`` later, when the key is next looked up.

The same holds when an account is merged into another (its keys move): ``forget_account``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from noema.domain.accounts import API_KEY_PREFIX, ApiKey
from noema.domain.errors import AccountNotFound, LimitExceeded, NotFound, Unauthenticated
from noema.ports import Clock, Secrets, UnitOfWork
from noema.services import events

MAX_KEYS_PER_ACCOUNT = 20
#: How long a key found valid is believed without reading it again: the bound on a revocation made
#: by another process.
RECHECK_SECONDS = 5.0
#: Keys remembered at most (each is a valid key that was used; past this the oldest are forgotten).
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class _Seen:
    account_id: str
    key_id: str
    checked_at: datetime


class RecentKeys:
    """Valid keys seen lately in this process, by hash: who they belong to and when that was read."""

    def __init__(self, recheck: timedelta = timedelta(seconds=RECHECK_SECONDS)) -> None:
        self._recheck = recheck
        self._seen: dict[str, _Seen] = {}
        self.forgotten = 0  #: bumped by every ``forget``, so a read that raced one is not remembered

    def account_of(self, key_hash: str, now: datetime) -> str | None:
        """The account of a key read from the database less than the recheck time ago, else None."""
        seen = self._seen.get(key_hash)
        if seen is None or not timedelta(0) <= now - seen.checked_at < self._recheck:
            return None
        return seen.account_id

    def remember(self, key: ApiKey, now: datetime, *, read_after: int) -> None:
        """A key just read from the database and found active (``read_after``: ``forgotten`` before the read)."""
        if read_after != self.forgotten:
            return  # a key was revoked while this one was read: it may have been this one
        if len(self._seen) >= MAX_REMEMBERED:
            oldest = sorted(self._seen.items(), key=lambda item: item[1].checked_at)[: MAX_REMEMBERED // 2]
            for key_hash, _ in oldest:
                del self._seen[key_hash]
        self._seen[key.key_hash] = _Seen(key.account_id, key.id, now)

    def forget(self, *, key_id: str | None = None, account_id: str | None = None) -> None:
        """Drop a key (revoked), or every key of an account (merged away): the next use reads the database."""
        self.forgotten += 1
        for key_hash, seen in list(self._seen.items()):
            if seen.key_id == key_id or seen.account_id == account_id:
                del self._seen[key_hash]


#: This process's memory of valid keys (key hashes are unique, so one is shared by every app in it).
recent = RecentKeys()


def hash_key(plain: str) -> str:
    """The stored form of a key (keys are 256-bit random, so a plain SHA-256 is enough)."""
    return hashlib.sha256(plain.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    plain: str  # shown once, never stored


async def create(
    uow: UnitOfWork, clock: Clock, account_id: str, *, secrets: Secrets, name: str | None = None
) -> NewKey:
    """A new key for the account; the plain text is returned only here."""
    plain = API_KEY_PREFIX + secrets.token(32)
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
    """The account id a key belongs to, or Unauthenticated for an unknown or revoked key.

    A key read less than ``RECHECK_SECONDS`` ago is answered from memory (see the module's note on
    revocation); ``uow`` is entered only when the database must be asked.
    """
    if not plain.startswith(API_KEY_PREFIX) or len(plain) > 200:
        raise Unauthenticated("That API key is not valid.")
    key_hash = hash_key(plain)
    account_id = recent.account_of(key_hash, clock.now())
    if account_id is not None:
        return account_id
    forgotten = recent.forgotten
    async with uow:
        key = await uow.api_keys.by_hash(key_hash)
        if key is None or not key.is_active:
            raise Unauthenticated("That API key is not valid or has been revoked.")
        now = clock.now()
        # Record use at most once a minute: a busy integrator should not turn every read into a write.
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            key.last_used_at = now
            await uow.commit()
        recent.remember(key, now, read_after=forgotten)
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
        recent.forget(key_id=key.id)  # this process stops believing it at once; others within RECHECK_SECONDS
        return key
