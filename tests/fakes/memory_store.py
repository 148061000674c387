"""The in-memory database behind the fake unit of work: tables of entity copies and their constraints.

A unit of work works on its own copy of every table and puts it back on commit, so a rollback (or
leaving without committing) drops everything it changed. The constraints checked on commit are the
schema's (``adapters/db/tables.py``): primary and unique keys, foreign keys to accounts, and the
money checks; a violation becomes ``Conflict``, as ``SqlUnitOfWork.commit`` makes it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from noema.domain.accounts import Account, ApiKey, Identity
from noema.domain.delivery import Delivery
from noema.domain.errors import Conflict
from noema.domain.generation import Generation
from noema.domain.ledger import LedgerEntry
from noema.domain.linking import LinkCode, WebSession
from noema.domain.payments import Payment
from noema.domain.sessions import Event, Session
from noema.ports import LoraRecord

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

E = TypeVar("E", bound="DataclassInstance")
CONFLICT = "That conflicts with a change made at the same time; try again."


def clone(entity: E) -> E:
    """A detached copy of a domain dataclass (built through ``__init__``, so a mapped class stays valid)."""
    values = {f.name: copy.deepcopy(getattr(entity, f.name)) for f in dataclasses.fields(entity)}
    return dataclasses.replace(entity, **values)


@dataclass
class StoredLora:
    """A LoRA row: the record the port returns plus the row id the schema gives it."""

    id: str
    record: LoraRecord


#: the tables of mutable domain entities (the services change them in place; the copies must not share them)
ENTITY_TABLES = (
    "accounts",
    "identities",
    "sessions",
    "events",
    "ledger",
    "api_keys",
    "generations",
    "deliveries",
    "link_codes",
    "web_sessions",
    "payments",
)


@dataclass
class Tables:
    """Every table, keyed by its primary key."""

    accounts: dict[str, Account] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    generations: dict[str, Generation] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    link_codes: dict[str, LinkCode] = field(default_factory=dict)
    link_failures: list[tuple[str, datetime]] = field(default_factory=list)
    web_sessions: dict[str, WebSession] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    payment_events: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    platform_updates: dict[tuple[str, str], datetime] = field(default_factory=dict)
    kv: dict[str, Any] = field(default_factory=dict)
    preferences: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    loras: dict[str, StoredLora] = field(default_factory=dict)
    #: keys added twice in this transaction (the flush would fail): reported on commit
    duplicates: list[str] = field(default_factory=list)

    def copy(self) -> Tables:
        """A deep copy whose entities share nothing with these."""
        copied = Tables(
            link_failures=list(self.link_failures),
            payment_events=copy.deepcopy(self.payment_events),
            platform_updates=dict(self.platform_updates),
            kv=copy.deepcopy(self.kv),
            preferences=copy.deepcopy(self.preferences),
            loras={k: StoredLora(v.id, v.record) for k, v in self.loras.items()},  # a LoraRecord is immutable
        )
        for name in ENTITY_TABLES:
            setattr(copied, name, {key: clone(row) for key, row in getattr(self, name).items()})
        return copied


def stage(table: dict[str, E], key: str, row: E, tables: Tables) -> None:
    """Add a new row; a primary key already taken fails the commit, as the flush would."""
    if key in table and table[key] is not row:
        tables.duplicates.append(key)
        return
    table[key] = row


def check(tables: Tables) -> None:
    """Raise Conflict when the tables break one of the schema's constraints."""
    if tables.duplicates or any(_violations(tables)):
        raise Conflict(CONFLICT)


def _violations(t: Tables) -> Iterable[bool]:
    yield _repeats((i.platform, i.platform_id) for i in t.identities.values())
    yield _repeats((i.account_id, i.platform) for i in t.identities.values())
    yield _repeats((s.account_id, s.platform) for s in t.sessions.values() if s.ended_at is None)
    yield _repeats(e.idempotency_key for e in t.ledger.values())
    yield _repeats(k.key_hash for k in t.api_keys.values())
    yield _repeats((g.account_id, g.idempotency_key) for g in t.generations.values() if g.idempotency_key is not None)
    yield _repeats(d.key for d in t.deliveries.values())
    for column in ("external_id", "payment_intent_id", "charge_id"):
        yield _repeats((p.provider, getattr(p, column)) for p in t.payments.values() if getattr(p, column))
    yield any(_money_broken(a) for a in t.accounts.values())
    yield any(e.amount_nanos < 0 or e.balance_after < 0 for e in t.ledger.values())
    yield any(min(g.cost_nanos, g.hold_nanos, g.shortfall_nanos) < 0 for g in t.generations.values())
    yield any(_payment_broken(p) for p in t.payments.values())
    yield not _references_hold(t)


def _repeats(keys: Iterable[object]) -> bool:
    return any(n > 1 for n in Counter(keys).values())


def _money_broken(a: Account) -> bool:
    return a.balance_nanos < 0 or a.owed_nanos < 0 or not 0 <= a.held_nanos <= a.balance_nanos


def _payment_broken(p: Payment) -> bool:
    amounts = (p.credit_nanos, p.refunded_minor, p.disputed_minor, p.dispute_fee_minor, p.taken_back_nanos)
    return p.amount_minor <= 0 or min(amounts) < 0 or p.taken_back_nanos > p.credit_nanos


def _references_hold(t: Tables) -> bool:
    """Every row that names an account (or a generation) names one that exists."""
    accounts = t.accounts.keys()
    owned: list[Callable[[], Iterable[str | None]]] = [
        lambda: (i.account_id for i in t.identities.values()),
        lambda: (s.account_id for s in t.sessions.values()),
        lambda: (e.account_id for e in t.events.values()),
        lambda: (e.account_id for e in t.ledger.values()),
        lambda: (k.account_id for k in t.api_keys.values()),
        lambda: (g.account_id for g in t.generations.values()),
        lambda: (c.account_id for c in t.link_codes.values()),
        lambda: (w.account_id for w in t.web_sessions.values()),
        lambda: (p.account_id for p in t.payments.values()),
        lambda: (account_id for account_id, _tool in t.preferences),
        lambda: (s.record.lora.owner_id for s in t.loras.values()),
    ]
    if any(ref is not None and ref not in accounts for refs in owned for ref in refs()):
        return False
    return all(d.generation_id in t.generations for d in t.deliveries.values())
