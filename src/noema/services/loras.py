"""The LoRA library: adding, importing and switching off LoRAs, and the cached read used per request.

Writes go through ``LoraLibrary`` so that this process sees them at once; other replicas see them
when their cache expires (the TTL). An import is one transaction: it applies completely or not at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import structlog

from noema.domain.errors import InvalidInput, LoraNotFound
from noema.domain.loras import Lora
from noema.ports import Clock, LoraRecord, Page, UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)
IMPORT_CHUNK = 200  #: LoRAs looked up and written per step of an import (one progress tick)


class SaveOutcome(str, Enum):
    """What saving one LoRA did."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Saved:
    """A LoRA as stored after saving it, and what the save did."""

    record: LoraRecord
    outcome: SaveOutcome


@dataclass(frozen=True)
class ImportSummary:
    """How many entries of an import file were new, changed, or already as the file says."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        """Every entry of the file."""
        return self.added + self.updated + self.unchanged


class LoraLibrary:
    """The LoRA library: writes, and the whole registry read at most once per TTL (by ``clock``)."""

    def __init__(self, *, uow_factory: UnitOfWorkFactory, clock: Clock, ttl_seconds: float = 60.0) -> None:
        self.uow_factory, self.clock, self.ttl = uow_factory, clock, timedelta(seconds=ttl_seconds)
        self._cached: list[Lora] | None = None
        self._loaded_at: datetime | None = None
        self._lock = asyncio.Lock()
        self._writes = 0  #: bumped by every invalidation, so a read that raced a write is not kept

    async def loras(self) -> list[Lora]:
        """Every LoRA (switched off ones too), from the cache while it is fresh."""
        async with self._lock:
            now = self.clock.now()
            if self._cached is not None and self._loaded_at is not None and now - self._loaded_at < self.ttl:
                return list(self._cached)
            writes = self._writes
            async with self.uow_factory() as uow:
                loaded = await uow.loras.all()
            if writes == self._writes:
                self._cached, self._loaded_at = loaded, now
            return list(loaded)

    def invalidate(self) -> None:
        """Forget the cached registry: the next read goes to the database."""
        self._cached, self._loaded_at = None, None
        self._writes += 1

    async def get(self, slug: str) -> LoraRecord:
        """One LoRA by slug (any case), or LoraNotFound."""
        async with self.uow_factory() as uow:
            record = await uow.loras.get(slug)
        if record is None:
            raise LoraNotFound(f"There is no LoRA called {slug[:100]!r}.")
        return record

    async def page(self, *, limit: int, cursor: str | None, enabled: bool | None = None) -> Page[LoraRecord]:
        """A page of the library in slug order."""
        async with self.uow_factory() as uow:
            return await uow.loras.list(limit=limit, cursor=cursor, enabled=enabled)

    async def save(self, lora: Lora) -> Saved:
        """Add a LoRA, or update the one with its slug (its usage count is kept)."""
        async with self.uow_factory() as uow:
            await _check_accounts(uow, [lora])
            now = self.clock.now()
            outcome = await _upsert(uow, lora, await uow.loras.get(lora.slug), now)
            record = await uow.loras.get(lora.slug)
            await uow.commit()
        self.invalidate()
        assert record is not None
        log.info("lora_saved", slug=lora.slug, outcome=outcome.value)
        return Saved(record, outcome)

    async def import_loras(
        self, loras: Sequence[Lora], *, on_progress: Callable[[int], None] | None = None
    ) -> ImportSummary:
        """Add or update every LoRA of a parsed import file; the same file again changes nothing."""
        counts = {outcome: 0 for outcome in SaveOutcome}
        async with self.uow_factory() as uow:
            await _check_accounts(uow, loras)
            now = self.clock.now()
            # Rows are written in slug order, the order settlements lock them in: the two never deadlock.
            ordered = sorted(loras, key=lambda lora: lora.slug.lower())
            for start in range(0, len(ordered), IMPORT_CHUNK):
                chunk = ordered[start : start + IMPORT_CHUNK]
                stored = await uow.loras.by_slugs([lora.slug for lora in chunk])
                for lora in chunk:
                    counts[await _upsert(uow, lora, stored.get(lora.slug.lower()), now)] += 1
                if on_progress is not None:
                    on_progress(len(chunk))
            await uow.commit()
        self.invalidate()
        summary = ImportSummary(counts[SaveOutcome.ADDED], counts[SaveOutcome.UPDATED], counts[SaveOutcome.UNCHANGED])
        log.info("loras_imported", added=summary.added, updated=summary.updated, unchanged=summary.unchanged)
        return summary

    async def disable(self, slug: str) -> LoraRecord:
        """Switch a LoRA off: prompts stop applying it (its tags are removed with a warning)."""
        async with self.uow_factory() as uow:
            record = await uow.loras.get(slug)
            if record is None:
                raise LoraNotFound(f"There is no LoRA called {slug[:100]!r}.")
            if record.lora.enabled:
                await uow.loras.replace(dataclasses.replace(record.lora, enabled=False), now=self.clock.now())
                record = await uow.loras.get(slug)
                await uow.commit()
        self.invalidate()
        assert record is not None
        log.info("lora_disabled", slug=record.lora.slug)
        return record


async def _upsert(uow: UnitOfWork, lora: Lora, stored: LoraRecord | None, now: datetime) -> SaveOutcome:
    if stored is None:
        await uow.loras.add(lora, now=now)
        return SaveOutcome.ADDED
    if _definition(stored.lora) == _definition(lora):
        return SaveOutcome.UNCHANGED
    await uow.loras.replace(lora, now=now)
    return SaveOutcome.UPDATED


def _definition(lora: Lora) -> Lora:
    """What an import or a save may change: everything but the usage count, which only runs count."""
    return dataclasses.replace(lora, usage_count=0)


async def _check_accounts(uow: UnitOfWork, loras: Sequence[Lora]) -> None:
    """Refuse owners and allowed accounts that name no account (InvalidInput naming the entry)."""
    named = {a for lora in loras for a in (lora.owner_id, *lora.allowed_accounts) if a is not None}
    known = await uow.loras.existing_accounts(named) if named else set()
    for index, lora in enumerate(loras):
        for field, ids in (("ownerId", [lora.owner_id]), ("allowedAccounts", sorted(lora.allowed_accounts))):
            missing = next((a for a in ids if a is not None and a not in known), None)
            if missing is not None:
                where = f"LoRA entry {index + 1} ({lora.slug!r})" if len(loras) > 1 else f"LoRA {lora.slug!r}"
                raise InvalidInput(
                    f"{where}: {field} {missing[:40]!r} is not an account id.",
                    details={"entry": index, "field": field} if len(loras) > 1 else {"field": field},
                )
