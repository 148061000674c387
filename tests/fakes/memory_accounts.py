"""In-memory repositories for accounts, sessions, events, the ledger, API keys and browser sessions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from noema.adapters.db.pagination import decode_cursor, encode_cursor
from noema.domain.accounts import Account, ApiKey, Identity, Platform
from noema.domain.generation import LIVE
from noema.domain.ledger import LedgerEntry
from noema.domain.linking import WebSession
from noema.domain.sessions import EndReason, Event, Session
from noema.ports import (
    AccountRepository,
    ApiKeyRepository,
    EventRepository,
    LedgerRepository,
    Page,
    RequestCheck,
    SessionRepository,
    WebSessionRepository,
)
from tests.fakes.memory_store import Tables, stage


class _Row(Protocol):
    """A stored entity: what ``paginate`` orders by, after its time stamp."""

    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_Row)


def paginate(rows: Iterable[T], *, limit: int, cursor: str | None, stamp: str = "created_at") -> Page[T]:
    """Newest first by (``stamp``, id), as ``adapters/db/pagination.paginate`` pages, with the same cursors."""
    ordered = sorted(rows, key=lambda r: (getattr(r, stamp), r.id), reverse=True)
    if cursor:
        after = decode_cursor(cursor)
        ordered = [r for r in ordered if (getattr(r, stamp), r.id) < after]
    items = ordered[:limit]
    more = len(ordered) > limit
    return Page(items, encode_cursor(getattr(items[-1], stamp), items[-1].id) if more and items else None)


class MemoryRepo:
    """A repository over one unit of work's copy of the tables."""

    def __init__(self, tables: Tables, now: Callable[[], datetime]) -> None:
        self._t = tables
        self._now = now


class MemoryAccounts(MemoryRepo, AccountRepository):
    async def get(self, account_id: str, *, for_update: bool = False) -> Account | None:
        """The account (a lock is a no-op: one unit of work runs at a time)."""
        return self._t.accounts.get(account_id)

    async def lock_for_request(
        self, account_id: str, *, tool_id: str, since: datetime, idempotency_key: str | None
    ) -> RequestCheck | None:
        """The account with what a new generation request is checked against."""
        account = self._t.accounts.get(account_id)
        if account is None:
            return None
        mine = [g for g in self._t.generations.values() if g.account_id == account_id]
        replayed = next((g.id for g in mine if idempotency_key and g.idempotency_key == idempotency_key), None)
        return RequestCheck(
            account=account,
            defaults=json.loads(json.dumps(self._t.preferences.get((account_id, tool_id), {}))),
            live=sum(1 for g in mine if g.status in LIVE),
            recent=sum(1 for g in mine if g.requested_at >= since),
            replayed_id=replayed,
        )

    def add(self, account: Account) -> None:
        """Stage a new account."""
        stage(self._t.accounts, account.id, account, self._t)

    async def by_identity(self, platform: Platform, platform_id: str) -> Account | None:
        """The account that holds this platform identity."""
        found = await self.identity(platform, platform_id)
        return self._t.accounts.get(found.account_id) if found else None

    async def identities(self, account_id: str) -> list[Identity]:
        """Every identity of the account, oldest first."""
        return sorted((i for i in self._t.identities.values() if i.account_id == account_id), key=_created)

    async def identity(self, platform: Platform, platform_id: str) -> Identity | None:
        """One identity."""
        matches = (i for i in self._t.identities.values() if i.platform == platform and i.platform_id == platform_id)
        return next(matches, None)

    def add_identity(self, identity: Identity) -> None:
        """Stage a new identity."""
        stage(self._t.identities, identity.id, identity, self._t)

    async def wallets(self) -> dict[str, tuple[int, int]]:
        """Every account's stored (balance, held)."""
        return {a.id: (a.balance_nanos, a.held_nanos) for a in self._t.accounts.values()}

    async def page(self, *, limit: int, cursor: str | None) -> Page[Account]:
        """Accounts not merged into another, newest first."""
        live = (a for a in self._t.accounts.values() if a.merged_into is None)
        return paginate(live, limit=limit, cursor=cursor)

    async def identities_of(self, account_ids: list[str]) -> dict[str, list[Identity]]:
        """The identities of several accounts, oldest first."""
        found: dict[str, list[Identity]] = {aid: [] for aid in account_ids}
        for identity in sorted(self._t.identities.values(), key=lambda i: (i.created_at, i.id)):
            if identity.account_id in found:
                found[identity.account_id].append(identity)
        return found

    async def move_records(self, from_id: str, to_id: str) -> None:
        """Give everything ``from_id`` owns to ``to_id``; its active sessions end (at the store's clock)."""
        t = self._t
        owned: list[Iterable[Any]] = [t.identities.values(), t.generations.values(), t.deliveries.values()]
        owned += [t.events.values(), t.api_keys.values(), t.web_sessions.values(), t.link_codes.values()]
        owned.append(t.payments.values())
        for row in (row for rows in owned for row in rows):
            if row.account_id == from_id:
                row.account_id = to_id
        for session in t.sessions.values():
            if session.account_id == from_id and session.ended_at is None:
                session.ended_at, session.end_reason = self._now(), EndReason.MERGED.value


class MemorySessions(MemoryRepo, SessionRepository):
    async def get(self, session_id: str) -> Session | None:
        """One session."""
        return self._t.sessions.get(session_id)

    async def active(self, account_id: str, platform: str) -> Session | None:
        """The active session of the account on the platform."""
        matches = (s for s in self._t.sessions.values() if (s.account_id, s.platform) == (account_id, platform))
        return next((s for s in matches if s.ended_at is None), None)

    def add(self, session: Session) -> None:
        """Stage a new session."""
        stage(self._t.sessions, session.id, session, self._t)

    async def list_for_account(self, account_id: str, *, limit: int, cursor: str | None) -> Page[Session]:
        """The account's sessions, newest first."""
        mine = (s for s in self._t.sessions.values() if s.account_id == account_id)
        return paginate(mine, limit=limit, cursor=cursor, stamp="started_at")

    async def inactive_since(self, before: datetime, *, limit: int) -> list[Session]:
        """Active sessions idle since before ``before``, longest idle first."""
        idle = (s for s in self._t.sessions.values() if s.ended_at is None and s.last_activity_at < before)
        return sorted(idle, key=lambda s: s.last_activity_at)[:limit]


class MemoryEvents(MemoryRepo, EventRepository):
    def add(self, event: Event) -> None:
        """Stage an event."""
        stage(self._t.events, event.id, event, self._t)

    async def get(self, event_id: str) -> Event | None:
        """One event."""
        return self._t.events.get(event_id)

    async def list(
        self, *, account_id: str | None = None, session_id: str | None = None, limit: int, cursor: str | None
    ) -> Page[Event]:
        """Events of an account or a session, newest first."""
        rows = (
            e
            for e in self._t.events.values()
            if (account_id is None or e.account_id == account_id) and (session_id is None or e.session_id == session_id)
        )
        return paginate(rows, limit=limit, cursor=cursor)


class MemoryLedger(MemoryRepo, LedgerRepository):
    def add(self, entry: LedgerEntry) -> None:
        """Stage an entry."""
        stage(self._t.ledger, entry.id, entry, self._t)

    async def by_key(self, idempotency_key: str) -> LedgerEntry | None:
        """The entry posted under this key, if any."""
        return next((e for e in self._t.ledger.values() if e.idempotency_key == idempotency_key), None)

    async def get(self, entry_id: str) -> LedgerEntry | None:
        """One entry."""
        return self._t.ledger.get(entry_id)

    async def list_for_account(self, account_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        """The account's entries, newest first."""
        return paginate((e for e in self._t.ledger.values() if e.account_id == account_id), limit=limit, cursor=cursor)

    async def totals(self) -> dict[str, tuple[int, int]]:
        """Per account: (sum of balance deltas, sum of held deltas)."""
        sums: dict[str, tuple[int, int]] = {}
        for e in self._t.ledger.values():
            balance, held = sums.get(e.account_id, (0, 0))
            sums[e.account_id] = (balance + e.balance_delta, held + e.held_delta)
        return sums


class MemoryApiKeys(MemoryRepo, ApiKeyRepository):
    def add(self, key: ApiKey) -> None:
        """Stage a new key."""
        stage(self._t.api_keys, key.id, key, self._t)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash."""
        return next((k for k in self._t.api_keys.values() if k.key_hash == key_hash), None)

    async def get(self, key_id: str) -> ApiKey | None:
        """One key."""
        return self._t.api_keys.get(key_id)

    async def list_for_account(self, account_id: str) -> list[ApiKey]:
        """The account's keys, newest first."""
        mine = (k for k in self._t.api_keys.values() if k.account_id == account_id)
        return sorted(mine, key=_created, reverse=True)


class MemoryWebSessions(MemoryRepo, WebSessionRepository):
    def add(self, session: WebSession) -> None:
        """Stage a new browser session."""
        stage(self._t.web_sessions, session.token_hash, session, self._t)

    async def get(self, token_hash: str) -> WebSession | None:
        """The browser session with this token hash."""
        return self._t.web_sessions.get(token_hash)


def _created(row: Identity | ApiKey) -> datetime:
    return row.created_at
