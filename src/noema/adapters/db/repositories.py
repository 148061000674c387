"""SQLAlchemy repositories for accounts, sessions, events, the ledger and API keys.

Queries filter on the tables' columns (``S.platform``), not the mapped classes' attributes, so the
domain classes stay plain dataclasses to the type checker.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from noema.adapters.db.generation_repositories import live_count, requested_since
from noema.adapters.db.pagination import paginate
from noema.adapters.db.tables import (
    accounts,
    api_keys,
    deliveries,
    events,
    generations,
    identities,
    ledger_entries,
    link_codes,
    payments,
    preferences,
    sessions,
    web_sessions,
)
from noema.adapters.db.types import UTCDateTime
from noema.domain.accounts import Account, ApiKey, Identity, Platform
from noema.domain.ledger import LedgerEntry
from noema.domain.sessions import Event, Session
from noema.ports import Page, RequestCheck

A, ID, S, E, L, K = accounts.c, identities.c, sessions.c, events.c, ledger_entries.c, api_keys.c
G, P = generations.c, preferences.c


@functools.cache
def _request_check() -> Select[Any]:
    """What a new generation request is checked against, in one statement built once (after the mapping).

    Each figure is its own scalar subquery, so each keeps its own index; only the account row is
    locked (``FOR UPDATE OF accounts``). A request without an Idempotency-Key binds NULL, which matches no run.
    """
    account_id = bindparam("account_id", type_=String)
    defaults = select(P.inputs).where(P.account_id == account_id, P.tool_id == bindparam("tool_id", type_=String))
    replayed = select(G.id).where(G.account_id == account_id, G.idempotency_key == bindparam("key", type_=String))
    return (
        select(
            Account,
            defaults.scalar_subquery(),
            live_count(account_id).scalar_subquery(),
            requested_since(account_id, bindparam("since", type_=UTCDateTime)).scalar_subquery(),
            replayed.scalar_subquery(),
        )
        .where(A.id == account_id)
        .with_for_update(of=accounts)
        .execution_options(populate_existing=True)
    )


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session


class SqlAccounts(_Repo):
    async def get(self, account_id: str, *, for_update: bool = False) -> Account | None:
        """The account, row-locked when ``for_update`` (SQLite locks the whole database instead)."""
        return await self._s.get(Account, account_id, with_for_update=for_update, populate_existing=for_update)

    async def lock_for_request(
        self, account_id: str, *, tool_id: str, since: datetime, idempotency_key: str | None
    ) -> RequestCheck | None:
        """The account row-locked, its defaults for the tool, its live and recent runs and its replay: one statement."""
        params = {"account_id": account_id, "tool_id": tool_id, "since": since, "key": idempotency_key}
        row = (await self._s.execute(_request_check(), params)).first()
        if row is None:
            return None
        account, stored, live, recent, replayed_id = row
        return RequestCheck(
            account=account,
            defaults=dict(stored) if isinstance(stored, dict) else {},
            live=int(live),
            recent=int(recent),
            replayed_id=replayed_id,
        )

    def add(self, account: Account) -> None:
        """Stage a new account."""
        self._s.add(account)

    async def by_identity(self, platform: Platform, platform_id: str) -> Account | None:
        """The account that holds this platform identity."""
        stmt = (
            select(Account)
            .join(identities, ID.account_id == A.id)
            .where(ID.platform == platform.value, ID.platform_id == platform_id)
        )
        return (await self._s.scalars(stmt)).first()

    async def identities(self, account_id: str) -> list[Identity]:
        """Every identity of the account."""
        stmt = select(Identity).where(ID.account_id == account_id).order_by(ID.created_at)
        return list((await self._s.scalars(stmt)).all())

    async def identity(self, platform: Platform, platform_id: str) -> Identity | None:
        """One identity."""
        stmt = select(Identity).where(ID.platform == platform.value, ID.platform_id == platform_id)
        return (await self._s.scalars(stmt)).first()

    def add_identity(self, identity: Identity) -> None:
        """Stage a new identity."""
        self._s.add(identity)

    async def move_records(self, from_id: str, to_id: str) -> None:
        """Give everything ``from_id`` owns to ``to_id`` (bulk updates, in the caller's transaction)."""
        for table in (identities, generations, deliveries, events, api_keys, web_sessions, link_codes, payments):
            await self._s.execute(table.update().where(table.c.account_id == from_id).values(account_id=to_id))
        await self._s.execute(
            sessions.update()
            .where(sessions.c.account_id == from_id, sessions.c.ended_at.is_(None))
            .values(ended_at=func.now(), end_reason="account_merged")
        )

    async def wallets(self) -> dict[str, tuple[int, int]]:
        """Every account's stored (balance, held), by account id."""
        rows = await self._s.execute(select(A.id, A.balance_nanos, A.held_nanos))
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    async def page(self, *, limit: int, cursor: str | None) -> Page[Account]:
        """Accounts not merged into another, newest first."""
        stmt = select(Account).where(A.merged_into.is_(None))
        return await paginate(self._s, stmt, created_col=A.created_at, id_col=A.id, limit=limit, cursor=cursor)

    async def identities_of(self, account_ids: list[str]) -> dict[str, list[Identity]]:
        """The identities of several accounts, by account id (oldest first)."""
        found: dict[str, list[Identity]] = {aid: [] for aid in account_ids}
        if account_ids:
            stmt = select(Identity).where(ID.account_id.in_(account_ids)).order_by(ID.created_at, ID.id)
            for identity in await self._s.scalars(stmt):
                found[identity.account_id].append(identity)
        return found


class SqlSessions(_Repo):
    async def get(self, session_id: str) -> Session | None:
        """One session."""
        return await self._s.get(Session, session_id)

    async def active(self, account_id: str, platform: str) -> Session | None:
        """The active session, locked for update."""
        stmt = (
            select(Session)
            .where(S.account_id == account_id, S.platform == platform, S.ended_at.is_(None))
            .with_for_update()
        )
        return (await self._s.scalars(stmt)).first()

    def add(self, session: Session) -> None:
        """Stage a new session."""
        self._s.add(session)

    async def list_for_account(self, account_id: str, *, limit: int, cursor: str | None) -> Page[Session]:
        """The account's sessions, newest first."""
        stmt = select(Session).where(S.account_id == account_id)
        return await paginate(
            self._s, stmt, created_col=S.started_at, id_col=S.id, limit=limit, cursor=cursor, stamp_attr="started_at"
        )

    async def inactive_since(self, before: datetime, *, limit: int) -> list[Session]:
        """Active sessions idle since before ``before``, locked (skipping ones another worker holds)."""
        stmt = (
            select(Session)
            .where(S.ended_at.is_(None), S.last_activity_at < before)
            .order_by(S.last_activity_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self._s.scalars(stmt)).all())


class SqlEvents(_Repo):
    def add(self, event: Event) -> None:
        """Stage an event."""
        self._s.add(event)

    async def get(self, event_id: str) -> Event | None:
        """One event."""
        return await self._s.get(Event, event_id)

    async def list(
        self, *, account_id: str | None = None, session_id: str | None = None, limit: int, cursor: str | None
    ) -> Page[Event]:
        """Events of an account or a session, newest first."""
        stmt = select(Event)
        if account_id is not None:
            stmt = stmt.where(E.account_id == account_id)
        if session_id is not None:
            stmt = stmt.where(E.session_id == session_id)
        return await paginate(self._s, stmt, created_col=E.created_at, id_col=E.id, limit=limit, cursor=cursor)


class SqlLedger(_Repo):
    def add(self, entry: LedgerEntry) -> None:
        """Stage an entry."""
        self._s.add(entry)

    async def by_key(self, idempotency_key: str) -> LedgerEntry | None:
        """The entry posted under this key, if any."""
        return (await self._s.scalars(select(LedgerEntry).where(L.idempotency_key == idempotency_key))).first()

    async def get(self, entry_id: str) -> LedgerEntry | None:
        """One entry."""
        return await self._s.get(LedgerEntry, entry_id)

    async def list_for_account(self, account_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        """The account's entries, newest first."""
        stmt = select(LedgerEntry).where(L.account_id == account_id)
        return await paginate(self._s, stmt, created_col=L.created_at, id_col=L.id, limit=limit, cursor=cursor)

    async def totals(self) -> dict[str, tuple[int, int]]:
        """Per account: (sum of balance deltas, sum of held deltas)."""
        stmt = select(L.account_id, func.sum(L.balance_delta), func.sum(L.held_delta)).group_by(L.account_id)
        return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in await self._s.execute(stmt)}


class SqlApiKeys(_Repo):
    def add(self, key: ApiKey) -> None:
        """Stage a new key."""
        self._s.add(key)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash."""
        return (await self._s.scalars(select(ApiKey).where(K.key_hash == key_hash))).first()

    async def get(self, key_id: str) -> ApiKey | None:
        """One key."""
        return await self._s.get(ApiKey, key_id)

    async def list_for_account(self, account_id: str) -> list[ApiKey]:
        """The account's keys, newest first."""
        stmt = select(ApiKey).where(K.account_id == account_id).order_by(K.created_at.desc())
        return list((await self._s.scalars(stmt)).all())
