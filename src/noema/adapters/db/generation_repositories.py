"""SQLAlchemy repositories for generations, the delivery outbox and the small key-value store."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Update, bindparam, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from noema.adapters.db.inserts import insert_if_absent
from noema.adapters.db.pagination import paginate
from noema.adapters.db.tables import LIVE_STATUSES, deliveries, generations, kv_store, link_failures
from noema.domain.delivery import Delivery, DeliveryKind, DeliveryStatus, dedupe_key
from noema.domain.generation import LIVE, Generation, GenerationStatus
from noema.domain.linking import LinkCode, WebSession
from noema.ports import GenerationFilter, Page

G, D, KV = generations.c, deliveries.c, kv_store.c
_LIVE = [s.value for s in LIVE]


class SqlGenerations:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, generation_id: str, *, for_update: bool = False) -> Generation | None:
        """One generation, row-locked when asked."""
        return await self._s.get(Generation, generation_id, with_for_update=for_update, populate_existing=for_update)

    def add(self, generation: Generation) -> None:
        """Stage a new generation."""
        self._s.add(generation)

    async def save_submit(self, generation: Generation) -> bool:
        """Write a submit (status, run id, times, inputs) in one statement if the row is still pending.

        False, and nothing written, when anything moved the generation on meanwhile (an early
        webhook, a cancel): the caller then locks and reads it instead.
        """
        params = {
            "gid": generation.id,
            "status": generation.status,
            "run_id": generation.run_id,
            "submitted_at": generation.submitted_at,
            "updated_at": generation.updated_at,
            "inputs": generation.inputs,
        }
        return bool(getattr(await self._s.execute(_save_submit(), params), "rowcount", 0) == 1)

    async def lock_with_progress(self, generation_ids: list[str]) -> dict[str, tuple[Generation, Delivery | None]]:
        """Several generations locked in id order (batches never deadlock), each with its progress row: one statement.

        Only the generations are locked (``FOR UPDATE OF generations``): the progress row is written
        only under its generation's lock, and the delivery worker's own writes to it are not ordered by
        a lock on it either (it sends outside any transaction).
        """
        ids = sorted(set(generation_ids))
        return {g.id: (g, d) for g, d in (await self._s.execute(_with_progress(), {"ids": ids})).all()}

    async def by_idempotency_key(self, account_id: str, key: str) -> Generation | None:
        """The account's generation made under this Idempotency-Key."""
        stmt = select(Generation).where(G.account_id == account_id, G.idempotency_key == key)
        return (await self._s.scalars(stmt)).first()

    async def count_live(self, account_id: str) -> int:
        """The account's generations that have not ended."""
        return int((await self._s.execute(live_count(account_id))).scalar_one())

    async def count_requested_since(self, account_id: str, since: datetime) -> int:
        """How many generations the account asked for since ``since``."""
        return int((await self._s.execute(requested_since(account_id, since))).scalar_one())

    async def search(self, where: GenerationFilter, *, limit: int, cursor: str | None) -> Page[Generation]:
        """Generations matching the filter, newest first."""
        return await paginate(
            self._s,
            _filtered(select(Generation), where),
            created_col=G.requested_at,
            id_col=G.id,
            limit=limit,
            cursor=cursor,
            stamp_attr="requested_at",
        )

    async def claim_due_polls(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Generation]:
        """Live generations due a poll, pushed ``lease_seconds`` ahead (skipping rows others hold).

        Read as a range of ``ix_generations_status_poll`` per live status: only the due rows, however
        many runs are in flight. Every live generation has a ``next_poll_at`` (set when it is made,
        moved by each update), so no ``IS NULL`` branch is needed, and one would make the database read
        every live row to find the due ones.
        """
        stmt = (
            select(Generation)
            .where(G.status.in_(_LIVE), G.next_poll_at <= now)
            .order_by(G.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed = list((await self._s.scalars(stmt)).all())
        for generation in claimed:
            generation.next_poll_at = now + timedelta(seconds=lease_seconds)
        return claimed

    async def recent_durations(self, tool_id: str, *, limit: int) -> list[float]:
        """Seconds on the GPU of the tool's latest successful runs."""
        stmt = (
            select(G.started_at, G.finished_at, G.run_started_at, G.run_ended_at)
            .where(G.tool_id == tool_id, G.status == GenerationStatus.SUCCEEDED.value, G.started_at.is_not(None))
            .order_by(G.finished_at.desc())
            .limit(limit)
        )
        rows = await self._s.execute(stmt)
        # The backend's own times when it confirmed them (what the run was billed for), else Noema's.
        return [
            ((run_end - run_start) if run_start and run_end else (end - start)).total_seconds()
            for start, end, run_start, run_end in rows
            if start and end
        ]

    async def count_by_status(self) -> dict[str, int]:
        """How many generations are in each status."""
        rows = await self._s.execute(select(G.status, func.count()).group_by(G.status))
        return {_value(status): int(n) for status, n in rows}

    async def written_off(self) -> tuple[int, int]:
        """The cost no account paid (the sum of shortfalls, in nanos) and over how many generations."""
        row = (
            await self._s.execute(
                select(func.coalesce(func.sum(G.shortfall_nanos), 0), func.count()).where(G.shortfall_nanos > 0)
            )
        ).one()
        return int(row[0]), int(row[1])

    async def count_live_by_tool(self) -> dict[str, int]:
        """How many generations of each tool are in flight (least-busy selection reads it)."""
        rows = await self._s.execute(select(G.tool_id, func.count()).where(G.status.in_(_LIVE)).group_by(G.tool_id))
        return {str(tool_id): int(n) for tool_id, n in rows}

    async def count_by_tool(self) -> dict[str, int]:
        """How many generations each tool has had (chat menus rank tools by it)."""
        rows = await self._s.execute(select(G.tool_id, func.count()).group_by(G.tool_id))
        return {str(tool_id): int(n) for tool_id, n in rows}


@functools.cache
def _save_submit() -> Update:
    """The submit of a row still pending and not cancelled (``gid`` and the new values bound): built once."""
    return (
        generations.update()
        .where(G.id == bindparam("gid"), G.status == GenerationStatus.PENDING.value, G.cancel_requested.is_(False))
        .values(
            status=bindparam("status", type_=G.status.type),
            run_id=bindparam("run_id", type_=G.run_id.type),
            submitted_at=bindparam("submitted_at", type_=G.submitted_at.type),
            updated_at=bindparam("updated_at", type_=G.updated_at.type),
            inputs=bindparam("inputs", type_=G.inputs.type),
        )
    )


@functools.cache
def _with_progress() -> Select[Generation, Delivery]:
    """Generations by id (``ids``, expanding), each with its progress row, only the generations locked: built once."""
    progress_key = G.id.concat(dedupe_key("", DeliveryKind.PROGRESS))
    return (
        select(Generation, Delivery)
        .outerjoin(Delivery, D.key == progress_key)
        .where(G.id.in_(bindparam("ids", expanding=True)))
        .order_by(G.id)
        .with_for_update(of=generations)
        .execution_options(populate_existing=True)
    )


def live_count(account_id: str | ColumnElement[str]) -> Select[Any]:
    """How many of the account's generations have not ended (the live-runs partial index answers it)."""
    return select(func.count()).where(G.account_id == account_id, _status_in(LIVE_STATUSES))


def requested_since(account_id: str | ColumnElement[str], since: datetime | ColumnElement[datetime]) -> Select[Any]:
    """How many generations the account asked for since ``since``."""
    return select(func.count()).where(G.account_id == account_id, G.requested_at >= since)


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def _status_in(values: Iterable[str]) -> ColumnElement[bool]:
    """``status IN (…)`` with the values written into the SQL, sorted.

    Bound values would let PostgreSQL's generic plan for a prepared statement (used after five runs)
    guess an account's rows instead of proving the live-runs partial index applies; statuses are a
    closed set of our own words, so inlining them is safe.
    """
    return G.status.in_(bindparam("statuses", sorted(set(values)), expanding=True, literal_execute=True, unique=True))


def _filtered(stmt: Select[Any], where: GenerationFilter) -> Select[Any]:
    if where.account_id:
        stmt = stmt.where(G.account_id == where.account_id)
    if where.session_id:
        stmt = stmt.where(G.session_id == where.session_id)
    if where.status_in:
        stmt = stmt.where(_status_in(s.value for s in where.status_in))
    if where.status_not_in:
        stmt = stmt.where(~_status_in(s.value for s in where.status_not_in))
    if where.run_id:
        stmt = stmt.where(G.run_id == where.run_id)
    if where.tool_id:
        stmt = stmt.where(G.tool_id == where.tool_id)
    if where.delivery_status:
        stmt = stmt.where(
            exists().where(D.generation_id == G.id, D.kind != "progress", D.status == where.delivery_status.value)
        )
    return stmt


class SqlDeliveries:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        #: rows (or their absence) this transaction read (locked, or under their generation's lock): no statement again
        self._known: dict[str, Delivery | None] = {}

    def add(self, delivery: Delivery) -> None:
        """Stage a new delivery."""
        self._s.add(delivery)
        self._known[delivery.key] = delivery

    async def by_key(self, key: str, *, for_update: bool = False) -> Delivery | None:
        """The delivery with this dedupe key."""
        if key in self._known:
            return self._known[key]
        stmt = select(Delivery).where(D.key == key)
        if for_update:
            stmt = stmt.with_for_update()
        found = (await self._s.scalars(stmt)).first()
        if for_update:
            self._known[key] = found
        return found

    def remember(self, rows: Mapping[str, Delivery | None]) -> None:
        """Rows (or their absence) this transaction read under their generations' locks: no statement for them again.

        An absent key stays absent: only a transaction holding the generation's lock adds its row.
        """
        for key, row in rows.items():
            self._known.setdefault(key, row)

    async def claim_due(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Delivery]:
        """Pending deliveries that are due, leased to this worker (skipping rows others hold)."""
        stmt = (
            select(Delivery)
            .where(D.status == DeliveryStatus.PENDING.value, D.next_attempt_at <= now)
            .order_by(D.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed = list((await self._s.scalars(stmt)).all())
        for delivery in claimed:
            # The lease: if this worker dies mid-send, the row becomes due again after it.
            delivery.next_attempt_at = now + timedelta(seconds=lease_seconds)
            delivery.attempts += 1
        return claimed

    async def for_generation(self, generation_id: str) -> list[Delivery]:
        """Every delivery of a generation."""
        stmt = select(Delivery).where(D.generation_id == generation_id).order_by(D.created_at)
        return list((await self._s.scalars(stmt)).all())


class SqlKeyValue:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, key: str) -> Any:
        """The stored JSON value, or None."""
        return (await self._s.execute(select(KV.value).where(KV.key == key))).scalar_one_or_none()

    async def get_for_update(self, key: str, *, default: Any, now: datetime) -> Any:
        """The stored value, its row locked until the transaction ends (``default`` is stored first if absent)."""
        await insert_if_absent(self._s, kv_store, {"key": key, "value": default, "updated_at": now})
        return (await self._s.execute(select(KV.value).where(KV.key == key).with_for_update())).scalar_one()

    async def put(self, key: str, value: Any, *, now: datetime) -> None:
        """Store a JSON value (replacing the old one)."""
        updated = await self._s.execute(kv_store.update().where(KV.key == key).values(value=value, updated_at=now))
        if getattr(updated, "rowcount", 0) == 0:
            await self._s.execute(kv_store.insert().values(key=key, value=value, updated_at=now))


class SqlLinkCodes:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add(self, code: LinkCode) -> None:
        """Stage a new code."""
        self._s.add(code)

    async def get(self, code_hash: str, *, for_update: bool = False) -> LinkCode | None:
        """The code with this hash."""
        return await self._s.get(LinkCode, code_hash, with_for_update=for_update, populate_existing=for_update)

    async def record_failure(self, account_id: str, *, at: datetime) -> None:
        """Count one wrong code entered by the account."""
        await self._s.execute(insert(link_failures).values(account_id=account_id, failed_at=at))

    async def failures_since(self, since: datetime, *, account_id: str | None = None) -> list[datetime]:
        """When wrong codes were entered after ``since`` (by the account, or by anyone), oldest first."""
        query = select(link_failures.c.failed_at).where(link_failures.c.failed_at > since)
        if account_id is not None:
            query = query.where(link_failures.c.account_id == account_id)
        rows = await self._s.execute(query.order_by(link_failures.c.failed_at))
        return [row[0] for row in rows]


class SqlWebSessions:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add(self, session: WebSession) -> None:
        """Stage a new browser session."""
        self._s.add(session)

    async def get(self, token_hash: str) -> WebSession | None:
        """The browser session with this token hash."""
        return await self._s.get(WebSession, token_hash)
