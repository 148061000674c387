"""In-memory repositories for generations and what goes with them.

The delivery outbox, the key-value store, link codes, preferences and answered chat updates.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from noema.domain.delivery import Delivery, DeliveryKind, DeliveryStatus, dedupe_key
from noema.domain.generation import LIVE, Generation, GenerationStatus
from noema.domain.linking import LinkCode
from noema.domain.platform_updates import PlatformUpdate
from noema.ports import (
    DeliveryRepository,
    GenerationFilter,
    GenerationRepository,
    KeyValueRepository,
    LinkCodeRepository,
    Page,
    PlatformUpdateRepository,
    PreferenceRepository,
)
from tests.fakes.memory_accounts import MemoryRepo, paginate
from tests.fakes.memory_store import stage

_LATEST = datetime.max.replace(tzinfo=UTC)  #: where PostgreSQL sorts a NULL time: after every real one


class MemoryGenerations(MemoryRepo, GenerationRepository):
    async def get(self, generation_id: str, *, for_update: bool = False) -> Generation | None:
        """One generation."""
        return self._t.generations.get(generation_id)

    def add(self, generation: Generation) -> None:
        """Stage a new generation."""
        stage(self._t.generations, generation.id, generation, self._t)

    async def lock_with_progress(self, generation_ids: list[str]) -> dict[str, tuple[Generation, Delivery | None]]:
        """The generations found, by id, each with its progress outbox row (None when it has none)."""
        progress = {d.key: d for d in self._t.deliveries.values() if d.kind is DeliveryKind.PROGRESS}
        found: dict[str, tuple[Generation, Delivery | None]] = {}
        for generation_id in sorted(set(generation_ids)):
            generation = self._t.generations.get(generation_id)
            if generation is not None:
                found[generation_id] = (generation, progress.get(dedupe_key(generation_id, DeliveryKind.PROGRESS)))
        return found

    async def by_idempotency_key(self, account_id: str, key: str) -> Generation | None:
        """The account's generation made under this Idempotency-Key."""
        rows = self._t.generations.values()
        return next((g for g in rows if g.account_id == account_id and g.idempotency_key == key), None)

    async def count_live(self, account_id: str) -> int:
        """The account's generations that have not ended."""
        return sum(1 for g in self._t.generations.values() if g.account_id == account_id and g.status in LIVE)

    async def count_requested_since(self, account_id: str, since: datetime) -> int:
        """How many generations the account asked for since ``since``."""
        rows = self._t.generations.values()
        return sum(1 for g in rows if g.account_id == account_id and g.requested_at >= since)

    async def save_submit(self, generation: Generation) -> bool:
        """Write a submit if the stored generation is still pending and not cancelled."""
        stored = self._t.generations.get(generation.id)
        if stored is None or stored.status is not GenerationStatus.PENDING or stored.cancel_requested:
            return False
        stored.status, stored.run_id = generation.status, generation.run_id
        stored.submitted_at, stored.updated_at, stored.inputs = (
            generation.submitted_at,
            generation.updated_at,
            dict(generation.inputs),
        )
        return True

    async def search(self, where: GenerationFilter, *, limit: int, cursor: str | None) -> Page[Generation]:
        """Generations matching the filter, newest first."""
        rows = (g for g in self._t.generations.values() if self._matches(g, where))
        return paginate(rows, limit=limit, cursor=cursor, stamp="requested_at")

    def _matches(self, g: Generation, where: GenerationFilter) -> bool:
        fields = ((where.account_id, g.account_id), (where.session_id, g.session_id), (where.run_id, g.run_id))
        if any(wanted and wanted != value for wanted, value in (*fields, (where.tool_id, g.tool_id))):
            return False
        if (where.status_in and g.status not in where.status_in) or g.status in where.status_not_in:
            return False
        return where.delivery_status is None or any(
            d.generation_id == g.id and d.kind is not DeliveryKind.PROGRESS and d.status is where.delivery_status
            for d in self._t.deliveries.values()
        )

    async def claim_due_polls(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Generation]:
        """Live generations due a poll, pushed ``lease_seconds`` ahead."""
        due = [
            g
            for g in self._t.generations.values()
            if g.status in LIVE and g.next_poll_at is not None and g.next_poll_at <= now
        ]
        claimed = sorted(due, key=lambda g: g.next_poll_at or _LATEST)[:limit]
        for generation in claimed:
            generation.next_poll_at = now + timedelta(seconds=lease_seconds)
        return claimed

    async def recent_durations(self, tool_id: str, *, limit: int) -> list[float]:
        """Seconds on the GPU of the tool's latest successful runs (the backend's times when it gave them)."""
        done = [
            g
            for g in self._t.generations.values()
            if g.tool_id == tool_id and g.status is GenerationStatus.SUCCEEDED and g.started_at is not None
        ]
        done.sort(key=lambda g: g.finished_at or _LATEST, reverse=True)
        return [
            (
                (g.run_ended_at - g.run_started_at) if g.run_started_at and g.run_ended_at else (end - start)
            ).total_seconds()
            for g in done[:limit]
            if (start := g.started_at) and (end := g.finished_at)
        ]

    async def count_by_status(self) -> dict[str, int]:
        """How many generations are in each status."""
        return dict(Counter(g.status.value for g in self._t.generations.values()))

    async def written_off(self) -> tuple[int, int]:
        """The sum of shortfalls and over how many generations."""
        short = [g.shortfall_nanos for g in self._t.generations.values() if g.shortfall_nanos > 0]
        return sum(short), len(short)

    async def count_by_tool(self) -> dict[str, int]:
        """How many generations each tool has had."""
        return dict(Counter(g.tool_id for g in self._t.generations.values()))

    async def count_live_by_tool(self) -> dict[str, int]:
        """How many generations of each tool are in flight."""
        return dict(Counter(g.tool_id for g in self._t.generations.values() if g.status in LIVE))


class MemoryDeliveries(MemoryRepo, DeliveryRepository):
    def add(self, delivery: Delivery) -> None:
        """Stage a new delivery."""
        stage(self._t.deliveries, delivery.id, delivery, self._t)

    async def by_key(self, key: str, *, for_update: bool = False) -> Delivery | None:
        """The delivery with this dedupe key."""
        return next((d for d in self._t.deliveries.values() if d.key == key), None)

    def remember(self, rows: Mapping[str, Delivery | None]) -> None:
        """Nothing to keep.

        ``by_key`` reads this unit of work's own copy of the table, which already holds every row the
        caller read (the SQL repository keeps them to save a statement).
        """
        return None

    async def claim_due(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Delivery]:
        """Pending deliveries that are due, leased (next attempt pushed ahead, attempts counted)."""
        rows = self._t.deliveries.values()
        due = [d for d in rows if d.status is DeliveryStatus.PENDING and d.next_attempt_at <= now]
        claimed = sorted(due, key=lambda d: d.next_attempt_at)[:limit]
        for delivery in claimed:
            delivery.next_attempt_at = now + timedelta(seconds=lease_seconds)
            delivery.attempts += 1
        return claimed

    async def for_generation(self, generation_id: str) -> list[Delivery]:
        """Every delivery of a generation, oldest first."""
        mine = (d for d in self._t.deliveries.values() if d.generation_id == generation_id)
        return sorted(mine, key=lambda d: d.created_at)


def _json(value: Any) -> Any:
    """The value as a JSON column gives it back (tuples become lists; a copy that shares nothing)."""
    return json.loads(json.dumps(value))


class MemoryKeyValue(MemoryRepo, KeyValueRepository):
    async def get(self, key: str) -> Any:
        """The stored JSON value (a copy, as a database read gives), or None."""
        return _json(self._t.kv.get(key))

    async def get_for_update(self, key: str, *, default: Any, now: datetime) -> Any:
        """The stored value (``default`` stored first if absent)."""
        self._t.kv.setdefault(key, _json(default))
        return _json(self._t.kv[key])

    async def put(self, key: str, value: Any, *, now: datetime) -> None:
        """Store a JSON value."""
        self._t.kv[key] = _json(value)


class MemoryLinkCodes(MemoryRepo, LinkCodeRepository):
    def add(self, code: LinkCode) -> None:
        """Stage a new code."""
        stage(self._t.link_codes, code.code_hash, code, self._t)

    async def get(self, code_hash: str, *, for_update: bool = False) -> LinkCode | None:
        """The code with this hash."""
        return self._t.link_codes.get(code_hash)

    async def record_failure(self, account_id: str, *, at: datetime) -> None:
        """Count one wrong code entered by the account."""
        self._t.link_failures.append((account_id, at))

    async def failures_since(self, since: datetime, *, account_id: str | None = None) -> list[datetime]:
        """When wrong codes were entered after ``since``, oldest first."""
        rows = self._t.link_failures
        return sorted(at for who, at in rows if at > since and account_id in (None, who))


class MemoryPreferences(MemoryRepo, PreferenceRepository):
    async def get(self, account_id: str, tool_id: str) -> dict[str, Any]:
        """The account's defaults for a tool (empty when none are set)."""
        inputs: dict[str, Any] = _json(self._t.preferences.get((account_id, tool_id), {}))
        return inputs

    async def put(self, account_id: str, tool_id: str, inputs: dict[str, Any], *, now: datetime) -> None:
        """Replace the account's defaults for a tool (an empty object removes them)."""
        self._t.preferences.pop((account_id, tool_id), None)
        if inputs:
            self._t.preferences[(account_id, tool_id)] = _json(inputs)

    async def move_owner(self, from_id: str, to_id: str) -> None:
        """A merged account's defaults go to the survivor, except for tools the survivor has its own for."""
        for account_id, tool_id in list(self._t.preferences):
            if account_id == from_id:
                inputs = self._t.preferences.pop((account_id, tool_id))
                self._t.preferences.setdefault((to_id, tool_id), inputs)


class MemoryPlatformUpdates(MemoryRepo, PlatformUpdateRepository):
    async def seen(self, update: PlatformUpdate) -> bool:
        """Whether this update was answered already."""
        return (update.platform, update.update_id) in self._t.platform_updates

    async def record(self, update: PlatformUpdate, *, at: datetime) -> bool:
        """Remember the update as answered; False when it already was."""
        key = (update.platform, update.update_id)
        if key in self._t.platform_updates:
            return False
        self._t.platform_updates[key] = at
        return True

    async def forget_before(self, cutoff: datetime, *, limit: int) -> int:
        """Forget at most ``limit`` updates answered before ``cutoff``; how many were forgotten."""
        old = [key for key, at in self._t.platform_updates.items() if at < cutoff][:limit]
        for key in old:
            del self._t.platform_updates[key]
        return len(old)
