"""The database schema and how the domain's entities map onto it (imperative mapping).

The domain classes stay plain dataclasses; SQLAlchemy instruments them here, once.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import registry

from noema.adapters.db.types import DeliveryPayloadJSON, UTCDateTime
from noema.domain.accounts import Account, AccountStatus, ApiKey, Identity, Platform
from noema.domain.delivery import Delivery, DeliveryKind, DeliveryStatus
from noema.domain.generation import LIVE, Generation, GenerationStatus
from noema.domain.ledger import EntryKind, LedgerEntry
from noema.domain.linking import CodePurpose, LinkCode, WebSession
from noema.domain.loras import Family
from noema.domain.loras import Visibility as LoraVisibility
from noema.domain.payments import Payment, PaymentProvider, PaymentStatus
from noema.domain.sessions import Event, Session

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
mapper_registry = registry(metadata=metadata)

#: The live statuses as SQL, in one fixed order: the partial index and the queries must spell them alike.
LIVE_STATUSES = tuple(sorted(s.value for s in LIVE))
LIVE_STATUSES_SQL = "status IN (" + ", ".join(f"'{v}'" for v in LIVE_STATUSES) + ")"


def enum_column(enum: type[Enum], length: int = 32) -> SAEnum:
    """A str-Enum stored as its value in a VARCHAR (no native enum types to migrate)."""
    return SAEnum(
        enum,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        create_constraint=False,
    )


def _id(name: str = "id", *args: Any, **kw: Any) -> Column[str]:
    return Column(name, String(36), *args, **kw)


accounts = Table(
    "accounts",
    metadata,
    _id(primary_key=True),
    Column("status", enum_column(AccountStatus), nullable=False),
    Column("display_name", String(200)),
    Column("username", String(200)),
    Column("last_seen_platform", String(32)),
    Column("balance_nanos", BigInteger, nullable=False, server_default="0"),
    Column("held_nanos", BigInteger, nullable=False, server_default="0"),
    Column("owed_nanos", BigInteger, nullable=False, server_default="0"),
    Column("exp", BigInteger, nullable=False, server_default="0"),
    Column("wallet_address", String(200)),
    Column("profile", JSON, nullable=False),
    Column("merged_into", String(36)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("balance_nanos >= 0", name="balance_not_negative"),
    CheckConstraint("held_nanos >= 0 AND held_nanos <= balance_nanos", name="held_within_balance"),
    CheckConstraint("owed_nanos >= 0", name="owed_not_negative"),
    Index("ix_accounts_created_id", "created_at", "id"),
)

identities = Table(
    "identities",
    metadata,
    _id(primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("platform", enum_column(Platform), nullable=False),
    Column("platform_id", String(128), nullable=False),
    Column("context", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("platform", "platform_id"),
    UniqueConstraint("account_id", "platform"),
)

sessions = Table(
    "sessions",
    metadata,
    _id(primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_activity_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("end_reason", String(64)),
    Column("context", JSON, nullable=False),
    Index("ix_sessions_account_started", "account_id", "started_at"),
    # The database itself refuses a second active session for the same account and platform.
    Index(
        "uq_sessions_one_active",
        "account_id",
        "platform",
        unique=True,
        sqlite_where=text("ended_at IS NULL"),
        postgresql_where=text("ended_at IS NULL"),
    ),
    Index(
        "ix_sessions_active_activity",
        "last_activity_at",
        sqlite_where=text("ended_at IS NULL"),
        postgresql_where=text("ended_at IS NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    _id(primary_key=True),
    Column("event_type", String(64), nullable=False),
    _id("account_id", ForeignKey("accounts.id")),
    _id("session_id"),
    Column("source_platform", String(32)),
    Column("event_data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_events_account_created", "account_id", "created_at"),
    Index("ix_events_session_created", "session_id", "created_at"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    _id(primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("kind", enum_column(EntryKind), nullable=False),
    Column("amount_nanos", BigInteger, nullable=False),
    Column("balance_delta", BigInteger, nullable=False),
    Column("held_delta", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("held_after", BigInteger, nullable=False),
    # A replayed credit, hold or settlement finds its key taken: it cannot post twice.
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("description", String(500)),
    Column("transaction_type", String(64)),
    _id("generation_id"),
    Column("tool_id", String(100)),
    Column("run_id", String(100)),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("amount_nanos >= 0", name="amount_not_negative"),
    CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
    Index("ix_ledger_entries_account_created", "account_id", "created_at"),
    Index("ix_ledger_entries_generation", "generation_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(100)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

generations = Table(
    "generations",
    metadata,
    _id(primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("tool_id", String(100), nullable=False),
    Column("tool_command", String(64), nullable=False),
    Column("deployment_id", String(100), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("status", enum_column(GenerationStatus), nullable=False),
    Column("progress", Float, nullable=False),
    Column("live_status", String(500)),
    Column("run_id", String(100)),
    Column("gpu", String(32)),
    Column("rate_nanos_per_second", BigInteger, nullable=False),
    Column("price_multiplier", Float, nullable=False),
    Column("flat_price_nanos", BigInteger),
    Column("estimated_cost_nanos", BigInteger, nullable=False),
    Column("hold_nanos", BigInteger, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Column("shortfall_nanos", BigInteger, nullable=False),
    Column("exp_gained", BigInteger, nullable=False),
    Column("webhook_token_hash", String(64), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("submitted_at", UTCDateTime),
    Column("queued_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("settled_at", UTCDateTime),
    Column("last_update_at", UTCDateTime),
    Column("next_poll_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("max_runtime_seconds", Float, nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("failure_reason", String(500)),
    Column("cancel_requested", Boolean, nullable=False),
    Column("platform", String(32), nullable=False),
    Column("delivery", JSON, nullable=False),
    _id("session_id"),
    Column("idempotency_key", String(200)),
    Column("request_fingerprint", String(64)),
    Column("meta", JSON, nullable=False),
    Column("run_started_at", UTCDateTime),
    Column("run_ended_at", UTCDateTime),
    Column("stopped_at_hold", Boolean, nullable=False, server_default=false()),
    CheckConstraint("cost_nanos >= 0 AND hold_nanos >= 0 AND shortfall_nanos >= 0", name="money_not_negative"),
    # An Idempotency-Key names one generation of one account, whatever the retries.
    UniqueConstraint("account_id", "idempotency_key"),
    # History pages read (account, requested_at, id) newest first; the id settles equal times without a sort.
    Index("ix_generations_account_requested_id", "account_id", "requested_at", "id"),
    # Only live runs, whatever an account's history: the status panel and the run cap read these few rows.
    # The statuses are literals in the queries too, so even a prepared statement's generic plan can use it.
    Index(
        "ix_generations_live_account",
        "account_id",
        "requested_at",
        "id",
        sqlite_where=text(LIVE_STATUSES_SQL),
        postgresql_where=text(LIVE_STATUSES_SQL),
    ),
    Index("ix_generations_requested_id", "requested_at", "id"),
    Index("ix_generations_status_poll", "status", "next_poll_at"),
    Index("ix_generations_run_id", "run_id"),
    # The estimate reads a tool's latest successful durations, and the cap counts an account's live runs.
    Index("ix_generations_tool_status_finished", "tool_id", "status", "finished_at"),
    Index("ix_generations_account_status", "account_id", "status"),
)

deliveries = Table(
    "deliveries",
    metadata,
    _id(primary_key=True),
    _id("generation_id", ForeignKey("generations.id"), nullable=False),
    _id("account_id", nullable=False),
    Column("kind", enum_column(DeliveryKind), nullable=False),
    Column("platform", String(32), nullable=False),
    # One result and one failure row per generation, ever: a replay cannot enqueue a second message.
    Column("key", String(100), nullable=False, unique=True),
    Column("target", JSON, nullable=False),
    Column("payload", DeliveryPayloadJSON, nullable=False),
    Column("status", enum_column(DeliveryStatus), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
)

link_codes = Table(
    "link_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("purpose", enum_column(CodePurpose), nullable=False),
    Column("platform", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Column("issued_by", String(32)),
)

#: wrong link codes, kept in the database so every replica counts the same guesses
link_failures = Table(
    "link_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(36), nullable=False, index=True),
    Column("failed_at", UTCDateTime, nullable=False, index=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

loras = Table(
    "loras",
    metadata,
    _id(primary_key=True),
    Column("slug", String(100), nullable=False),
    # Slugs are unique case-insensitively (tags match either way): the lower-case form carries the rule.
    Column("slug_key", String(100), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("triggers", JSON, nullable=False),
    Column("cognates", JSON, nullable=False),
    Column("default_weight", Float, nullable=False),
    Column("family", enum_column(Family, 16), nullable=False),
    _id("owner_id", ForeignKey("accounts.id")),
    Column("visibility", enum_column(LoraVisibility, 16), nullable=False),
    Column("allowed_accounts", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("usage_count", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("usage_count >= 0", name="usage_not_negative"),
)

preferences = Table(
    "preferences",
    metadata,
    _id("account_id", ForeignKey("accounts.id"), primary_key=True),
    Column("tool_id", String(100), primary_key=True),
    Column("inputs", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    _id(primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("provider", enum_column(PaymentProvider), nullable=False),
    Column("status", enum_column(PaymentStatus), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("credit_nanos", BigInteger, nullable=False),
    # One row per provider payment: a second row for the same session or charge cannot exist.
    Column("external_id", String(255)),
    Column("payment_intent_id", String(255)),
    Column("charge_id", String(255)),
    Column("checkout_url", String(2000)),
    Column("paid_at", UTCDateTime),
    Column("refunded_minor", BigInteger, nullable=False, server_default="0"),
    Column("disputed_minor", BigInteger, nullable=False, server_default="0"),
    Column("dispute_fee_minor", BigInteger, nullable=False, server_default="0"),
    Column("taken_back_nanos", BigInteger, nullable=False, server_default="0"),
    Column("dispute_reinstated_minor", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("provider", "external_id"),
    UniqueConstraint("provider", "payment_intent_id"),
    UniqueConstraint("provider", "charge_id"),
    CheckConstraint(
        "amount_minor > 0 AND credit_nanos >= 0 AND refunded_minor >= 0 AND disputed_minor >= 0"
        " AND dispute_fee_minor >= 0 AND taken_back_nanos >= 0 AND taken_back_nanos <= credit_nanos",
        name="amounts_in_range",
    ),
    CheckConstraint("dispute_reinstated_minor >= 0", name="reinstated_not_negative"),
    Index("ix_payments_account_created", "account_id", "created_at"),
)

#: every provider event applied, by its id: a redelivered event finds its id here and changes nothing
payment_events = Table(
    "payment_events",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("event_type", String(100), nullable=False),
    _id("payment_id"),
    Column("received_at", UTCDateTime, nullable=False),
)

#: chat updates already answered, by the platform's id: one delivered again is answered with silence
platform_updates = Table(
    "platform_updates",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("update_id", String(64), primary_key=True),
    Column("handled_at", UTCDateTime, nullable=False),
)

kv_store = Table(
    "kv_store",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


def map_entities() -> None:
    """Instrument the domain classes once (idempotent)."""
    if mapper_registry.mappers:
        return
    mapper_registry.map_imperatively(Account, accounts)
    mapper_registry.map_imperatively(Identity, identities)
    mapper_registry.map_imperatively(Session, sessions)
    mapper_registry.map_imperatively(Event, events)
    mapper_registry.map_imperatively(LedgerEntry, ledger_entries)
    mapper_registry.map_imperatively(ApiKey, api_keys)
    mapper_registry.map_imperatively(Generation, generations)
    mapper_registry.map_imperatively(Delivery, deliveries)
    mapper_registry.map_imperatively(LinkCode, link_codes)
    mapper_registry.map_imperatively(WebSession, web_sessions)
    mapper_registry.map_imperatively(Payment, payments)
