"""The LoRA library's table, read and written with SQL expressions.

``Lora`` is a frozen value (tuples, a frozenset), so it is not mapped onto the table: rows are
turned into LoRAs here, and a usage count only ever moves by ``usage_count = usage_count + 1``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from noema.adapters.db.tables import accounts, loras
from noema.domain.errors import Conflict, InvalidInput
from noema.domain.loras import Cognate, Family, Lora, Visibility
from noema.ports import IdFactory, LoraRecord, Page

L = loras.c
_IN_CHUNK = 500  #: ids per IN (...) list, well under every driver's parameter limit


class SqlLoras:
    def __init__(self, session: AsyncSession, ids: IdFactory) -> None:
        self._s, self._ids = session, ids

    async def all(self) -> list[Lora]:
        """Every LoRA, switched off ones included (the resolver warns about those)."""
        rows = await self._s.execute(select(loras).order_by(L.slug_key))
        return [_lora(row) for row in rows.mappings()]

    async def get(self, slug: str) -> LoraRecord | None:
        """One LoRA by slug, case-insensitively."""
        row = (await self._s.execute(select(loras).where(L.slug_key == slug.lower()))).mappings().first()
        return _record(row) if row is not None else None

    async def by_slugs(self, slugs: Collection[str]) -> dict[str, LoraRecord]:
        """The stored LoRAs among ``slugs``, keyed by lower-case slug."""
        keys = sorted({slug.lower() for slug in slugs})
        found: dict[str, LoraRecord] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            rows = await self._s.execute(select(loras).where(L.slug_key.in_(keys[start : start + _IN_CHUNK])))
            found.update({row["slug_key"]: _record(row) for row in rows.mappings()})
        return found

    async def add(self, lora: Lora, *, now: datetime) -> None:
        """Insert a new LoRA."""
        values = {**_values(lora), "id": self._ids.new(), "usage_count": lora.usage_count, "created_at": now}
        try:
            await self._s.execute(loras.insert().values(**values, updated_at=now))
        except IntegrityError as exc:  # the same slug added at the same moment by someone else
            raise Conflict(f"A LoRA called {lora.slug!r} was added at the same time; try again.") from exc

    async def replace(self, lora: Lora, *, now: datetime) -> None:
        """Overwrite a stored LoRA's fields, keeping its usage count and creation time."""
        stmt = loras.update().where(L.slug_key == lora.slug.lower()).values(**_values(lora), updated_at=now)
        await self._s.execute(stmt)

    async def list(self, *, limit: int, cursor: str | None, enabled: bool | None = None) -> Page[LoraRecord]:
        """LoRAs in slug order (case-insensitive), optionally only enabled or disabled ones."""
        stmt = select(loras).order_by(L.slug_key).limit(limit + 1)
        if cursor:
            stmt = stmt.where(L.slug_key > _decode_cursor(cursor))
        if enabled is not None:
            stmt = stmt.where(L.enabled == enabled)
        records = [_record(row) for row in (await self._s.execute(stmt)).mappings()]
        more = len(records) > limit
        items = records[:limit]
        return Page(items, _encode_cursor(items[-1].lora.slug.lower()) if more and items else None)

    async def count_usage(self, slugs: Collection[str]) -> None:
        """Add one to the usage count of each LoRA in ``slugs``, atomically in the database."""
        # One statement per LoRA in slug order: concurrent settlements lock rows in the same order.
        for key in sorted({slug.lower() for slug in slugs}):
            await self._s.execute(loras.update().where(L.slug_key == key).values(usage_count=L.usage_count + 1))

    async def move_owner(self, from_id: str, to_id: str, *, now: datetime) -> None:
        """Give ``from_id``'s LoRAs, and its places on allowed lists, to ``to_id`` (account merge)."""
        await self._s.execute(loras.update().where(L.owner_id == from_id).values(owner_id=to_id, updated_at=now))
        rows = await self._s.execute(select(L.id, L.allowed_accounts).where(L.visibility == Visibility.ALLOWED.value))
        for row_id, allowed in rows:
            if isinstance(allowed, list) and from_id in allowed:
                moved = sorted({to_id if a == from_id else a for a in allowed})
                await self._s.execute(
                    loras.update().where(L.id == row_id).values(allowed_accounts=moved, updated_at=now)
                )

    async def existing_accounts(self, account_ids: Collection[str]) -> set[str]:
        """Which of ``account_ids`` name accounts."""
        ids = sorted(set(account_ids))
        found: set[str] = set()
        for start in range(0, len(ids), _IN_CHUNK):
            rows = await self._s.execute(select(accounts.c.id).where(accounts.c.id.in_(ids[start : start + _IN_CHUNK])))
            found.update(str(value) for value in rows.scalars())
        return found


def _values(lora: Lora) -> dict[str, Any]:
    """The columns a LoRA's definition fills (everything but id, usage and creation time)."""
    return {
        "slug": lora.slug,
        "slug_key": lora.slug.lower(),
        "display_name": lora.display_name,
        "triggers": list(lora.triggers),
        "cognates": [{"word": c.word, "replaceWith": c.replace_with} for c in lora.cognates],
        "default_weight": lora.default_weight,
        "family": lora.family,
        "owner_id": lora.owner_id,
        "visibility": lora.visibility,
        "allowed_accounts": sorted(lora.allowed_accounts),
        "enabled": lora.enabled,
    }


def _lora(row: RowMapping) -> Lora:
    return Lora(
        slug=row["slug"],
        display_name=row["display_name"],
        triggers=tuple(str(t) for t in row["triggers"] or ()),
        cognates=tuple(Cognate(str(c["word"]), str(c["replaceWith"])) for c in row["cognates"] or ()),
        default_weight=float(row["default_weight"]),
        family=Family(row["family"]),
        owner_id=row["owner_id"],
        visibility=Visibility(row["visibility"]),
        allowed_accounts=frozenset(str(a) for a in row["allowed_accounts"] or ()),
        enabled=bool(row["enabled"]),
        usage_count=int(row["usage_count"]),
    )


def _record(row: RowMapping) -> LoraRecord:
    return LoraRecord(_lora(row), created_at=row["created_at"], updated_at=row["updated_at"])


def _encode_cursor(slug_key: str) -> str:
    return base64.urlsafe_b64encode(slug_key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        slug = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        if "\x00" in slug:  # PostgreSQL refuses NUL in text: a 400 here, not a 500 from the driver
            raise ValueError("NUL in cursor")
        return slug
    except (binascii.Error, ValueError):
        raise InvalidInput("The cursor is not valid; use the nextCursor of a previous page.") from None
