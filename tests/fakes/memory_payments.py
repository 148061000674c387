"""In-memory repositories for payments (and the provider events applied to them) and the LoRA library."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable, Collection
from datetime import datetime

from noema.domain.errors import Conflict, InvalidInput
from noema.domain.loras import Lora, Visibility
from noema.domain.payments import Payment, PaymentProvider, PaymentStatus
from noema.ports import IdFactory, LoraRecord, LoraRepository, Page, PaymentRepository, PaymentTotals
from tests.fakes.memory_accounts import MemoryRepo, paginate
from tests.fakes.memory_store import StoredLora, Tables, stage


class MemoryPayments(MemoryRepo, PaymentRepository):
    def add(self, payment: Payment) -> None:
        """Stage a new payment."""
        stage(self._t.payments, payment.id, payment, self._t)

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        """One payment."""
        return self._t.payments.get(payment_id)

    async def find(
        self,
        provider: PaymentProvider,
        *,
        external_id: str | None = None,
        payment_intent_id: str | None = None,
        charge_id: str | None = None,
        for_update: bool = False,
    ) -> Payment | None:
        """The provider's payment with the first of these ids that is given and known."""
        for column, value in (("external_id", external_id), ("payment_intent_id", payment_intent_id)):
            found = self._by(provider, column, value)
            if found is not None:
                return found
        return self._by(provider, "charge_id", charge_id)

    def _by(self, provider: PaymentProvider, column: str, value: str | None) -> Payment | None:
        rows = self._t.payments.values()
        return next((p for p in rows if value and p.provider == provider and getattr(p, column) == value), None)

    async def list(self, *, account_id: str | None, limit: int, cursor: str | None) -> Page[Payment]:
        """Payments (of one account, or all), newest first."""
        rows = (p for p in self._t.payments.values() if account_id in (None, p.account_id))
        return paginate(rows, limit=limit, cursor=cursor)

    async def opened_since(self, account_id: str, provider: PaymentProvider, since: datetime) -> tuple[datetime, ...]:
        """When each of the account's unpaid payments made after ``since`` was made."""
        return tuple(
            p.created_at
            for p in self._t.payments.values()
            if (p.account_id, p.provider, p.status) == (account_id, provider, PaymentStatus.CREATED)
            and p.paid_at is None
            and p.created_at > since
        )

    async def seen_event(self, provider: PaymentProvider, event_id: str) -> bool:
        """Whether this provider event was already applied."""
        return (provider.value, event_id) in self._t.payment_events

    async def record_event(
        self, provider: PaymentProvider, event_id: str, *, event_type: str, payment_id: str | None, at: datetime
    ) -> None:
        """Remember an applied event (the same one twice fails the commit with Conflict)."""
        row = {"event_type": event_type[:100], "payment_id": payment_id, "received_at": at}
        if (provider.value, event_id) in self._t.payment_events:
            self._t.duplicates.append(event_id)
        self._t.payment_events[(provider.value, event_id)] = row

    async def totals(self) -> dict[str, PaymentTotals]:
        """Per surviving account (merged accounts folded in): payments' credit and take-backs, the ledger's, owed."""
        result: dict[str, PaymentTotals] = {}

        def at(account_id: str) -> PaymentTotals:
            return result.setdefault(self._root(account_id), PaymentTotals())

        for p in self._t.payments.values():
            at(p.account_id).credited_nanos += p.credit_nanos if p.paid_at is not None else 0
            at(p.account_id).taken_back_nanos += p.taken_back_nanos
        for e in self._t.ledger.values():
            if e.transaction_type in PaymentTotals.LEDGER_TYPES:
                posted = at(e.account_id).posted
                posted[e.transaction_type] = posted.get(e.transaction_type, 0) + e.amount_nanos
        for a in self._t.accounts.values():
            if a.owed_nanos:
                at(a.id).owed_nanos += a.owed_nanos
        return result

    def _root(self, account_id: str) -> str:
        seen: set[str] = set()
        while (account := self._t.accounts.get(account_id)) and account.merged_into and account_id not in seen:
            seen.add(account_id)
            account_id = account.merged_into
        return account_id


class MemoryLoras(MemoryRepo, LoraRepository):
    def __init__(self, tables: Tables, now: Callable[[], datetime], ids: IdFactory) -> None:
        super().__init__(tables, now)
        self._ids = ids

    async def all(self) -> list[Lora]:
        """Every LoRA, in slug order."""
        return [self._t.loras[key].record.lora for key in sorted(self._t.loras)]

    async def get(self, slug: str) -> LoraRecord | None:
        """One LoRA by slug, case-insensitively."""
        stored = self._t.loras.get(slug.lower())
        return stored.record if stored else None

    async def by_slugs(self, slugs: Collection[str]) -> dict[str, LoraRecord]:
        """The stored LoRAs among ``slugs``, keyed by lower-case slug."""
        keys = {slug.lower() for slug in slugs}
        return {key: stored.record for key, stored in self._t.loras.items() if key in keys}

    async def add(self, lora: Lora, *, now: datetime) -> None:
        """Insert a new LoRA; a slug taken (in any case) is a Conflict at once, as the insert fails."""
        if lora.slug.lower() in self._t.loras:
            raise Conflict(f"A LoRA called {lora.slug!r} was added at the same time; try again.")
        self._t.loras[lora.slug.lower()] = StoredLora(self._ids.new(), LoraRecord(lora, created_at=now, updated_at=now))

    async def replace(self, lora: Lora, *, now: datetime) -> None:
        """Overwrite a stored LoRA's fields, keeping its usage count and creation time."""
        stored = self._t.loras.get(lora.slug.lower())
        if stored is not None:
            kept = dataclasses.replace(lora, usage_count=stored.record.lora.usage_count)
            stored.record = LoraRecord(kept, created_at=stored.record.created_at, updated_at=now)

    async def list(self, *, limit: int, cursor: str | None, enabled: bool | None = None) -> Page[LoraRecord]:
        """LoRAs in slug order (case-insensitive), optionally only enabled or disabled ones."""
        after = _decode_cursor(cursor) if cursor else ""
        keys = [k for k in sorted(self._t.loras) if k > after]
        records = [self._t.loras[k].record for k in keys if enabled in (None, self._t.loras[k].record.lora.enabled)]
        items = records[:limit]
        more = len(records) > limit
        return Page(items, _encode_cursor(items[-1].lora.slug.lower()) if more and items else None)

    async def count_usage(self, slugs: Collection[str]) -> None:
        """Add one to the usage count of each LoRA in ``slugs``."""
        for key in {slug.lower() for slug in slugs}:
            if stored := self._t.loras.get(key):
                lora = stored.record.lora
                used = dataclasses.replace(lora, usage_count=lora.usage_count + 1)
                stored.record = dataclasses.replace(stored.record, lora=used)

    async def move_owner(self, from_id: str, to_id: str, *, now: datetime) -> None:
        """Give ``from_id``'s LoRAs, and its places on allowed lists, to ``to_id``."""
        for stored in self._t.loras.values():
            lora = stored.record.lora
            allowed = lora.allowed_accounts
            moved = lora.visibility is Visibility.ALLOWED and from_id in allowed
            if lora.owner_id != from_id and not moved:
                continue
            owner = to_id if lora.owner_id == from_id else lora.owner_id
            if moved:
                allowed = frozenset(to_id if a == from_id else a for a in allowed)
            new = dataclasses.replace(lora, owner_id=owner, allowed_accounts=allowed)
            stored.record = LoraRecord(new, created_at=stored.record.created_at, updated_at=now)

    async def existing_accounts(self, account_ids: Collection[str]) -> set[str]:
        """Which of ``account_ids`` name accounts."""
        return {a for a in account_ids if a in self._t.accounts}


def _encode_cursor(slug_key: str) -> str:
    return base64.urlsafe_b64encode(slug_key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        raise InvalidInput("The cursor is not valid; use the nextCursor of a previous page.") from None
