"""JSON shapes of the internal and public APIs: camelCase, money as decimal strings, unknown fields refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from noema.domain.accounts import Account, ApiKey, Identity
from noema.domain.ledger import LedgerEntry
from noema.domain.money import format_usd, points
from noema.domain.sessions import Event, Session
from noema.ports import Page
from noema.services.status import StatusReport

T = TypeVar("T")


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class PageOut(ApiModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def page_out(page: Page[Any], render: Callable[[Any], T]) -> PageOut[T]:
    """A page of domain objects as JSON, each rendered by ``render``."""
    return PageOut(items=[render(item) for item in page.items], next_cursor=page.next_cursor)


#: An amount of USD: a decimal string ("1.50") or a whole number; floats are refused as inexact.
UsdIn = Annotated[StrictStr | StrictInt, Field(description='Decimal string such as "1.50".')]
Text = Annotated[str, Field(max_length=500)]


# --- users -------------------------------------------------------------------------------------


class FindOrCreateIn(ApiModel):
    platform: Annotated[str, Field(max_length=32)]
    platform_id: Annotated[StrictStr | StrictInt, Field(description="The user's id on that platform.")]
    platform_context: dict[str, Any] | None = None


class UserOut(ApiModel):
    master_account_id: str
    status: str
    profile: dict[str, Any]
    display_name: str | None
    username: str | None
    platform_identities: dict[str, str]
    last_seen_platform: str | None
    wallet_address: str | None
    created_at: datetime
    updated_at: datetime


def user_out(account: Account, identities: list[Identity]) -> UserOut:
    """The user record of an account."""
    return UserOut(
        master_account_id=account.id,
        status=account.status.value,
        profile=account.profile,
        display_name=account.display_name,
        username=account.username,
        platform_identities={i.platform.value: i.platform_id for i in identities},
        last_seen_platform=account.last_seen_platform,
        wallet_address=account.wallet_address,
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


class FindOrCreateOut(ApiModel):
    master_account_id: str
    user: UserOut
    is_new_user: bool


class UserUpdateIn(ApiModel):
    display_name: Annotated[str, Field(max_length=200)] | None = None
    username: Annotated[str, Field(max_length=200)] | None = None
    status: str | None = None
    wallet_address: Annotated[str, Field(max_length=200)] | None = None
    profile: dict[str, Any] | None = None
    # Read-only fields: accepted by the parser only so that a change to them gets FORBIDDEN_FIELD_UPDATE.
    master_account_id: Any = None
    id: Any = None
    platform_identities: Any = None
    usd_credit: Any = None
    exp: Any = None
    created_at: Any = None
    updated_at: Any = None
    api_keys: Any = None


READ_ONLY_USER_FIELDS = (
    "master_account_id",
    "id",
    "platform_identities",
    "usd_credit",
    "exp",
    "created_at",
    "updated_at",
    "api_keys",
)


# --- sessions and events ---------------------------------------------------------------------------


class SessionIn(ApiModel):
    master_account_id: str
    platform: Annotated[str, Field(max_length=32)]
    context: dict[str, Any] | None = None


class SessionEndIn(ApiModel):
    end_reason: Annotated[str, Field(min_length=1, max_length=64)] = "user_ended"


class SessionOut(ApiModel):
    session_id: str
    master_account_id: str
    platform: str
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    is_active: bool


def session_out(s: Session) -> SessionOut:
    """The JSON of a session."""
    return SessionOut(
        session_id=s.id,
        master_account_id=s.account_id,
        platform=s.platform,
        started_at=s.started_at,
        last_activity_at=s.last_activity_at,
        ended_at=s.ended_at,
        end_reason=s.end_reason,
        is_active=s.is_active,
    )


class EventIn(ApiModel):
    master_account_id: str
    event_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")]
    event_data: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None
    source_platform: Annotated[str, Field(max_length=32)] | None = None


class EventOut(ApiModel):
    event_id: str
    master_account_id: str | None
    session_id: str | None
    event_type: str
    event_data: dict[str, Any]
    source_platform: str | None
    timestamp: datetime


def event_out(e: Event) -> EventOut:
    """The JSON of an event."""
    return EventOut(
        event_id=e.id,
        master_account_id=e.account_id,
        session_id=e.session_id,
        event_type=e.event_type,
        event_data=e.event_data,
        source_platform=e.source_platform,
        timestamp=e.created_at,
    )


# --- economy ---------------------------------------------------------------------------------


class TransferIn(ApiModel):
    amount_usd: UsdIn
    description: Text | None = None
    transaction_type: Annotated[str, Field(max_length=64)] | None = None
    external_transaction_id: Annotated[str, Field(min_length=1, max_length=150)] | None = None


class ExpIn(ApiModel):
    exp_change: Annotated[StrictInt, Field(ge=-1_000_000_000, le=1_000_000_000)]


class EconomyOut(ApiModel):
    master_account_id: str
    usd_credit: str
    held_usd: str
    available_usd: str
    points: int
    exp: int
    updated_at: datetime


def economy_out(a: Account) -> EconomyOut:
    """The JSON of a wallet."""
    return EconomyOut(
        master_account_id=a.id,
        usd_credit=format_usd(a.balance_nanos),
        held_usd=format_usd(a.held_nanos),
        available_usd=format_usd(a.free_nanos),
        points=points(a.free_nanos),
        exp=a.exp,
        updated_at=a.updated_at,
    )


class TransactionOut(ApiModel):
    transaction_id: str
    master_account_id: str
    type: str
    transaction_type: str | None
    amount_usd: str
    balance_before_usd: str
    balance_after_usd: str
    held_after_usd: str
    description: str | None
    external_transaction_id: str | None
    related_items: dict[str, str]
    timestamp: datetime


def transaction_out(t: LedgerEntry) -> TransactionOut:
    """The JSON of a ledger entry."""
    related = {k: v for k, v in (("generationId", t.generation_id), ("toolId", t.tool_id), ("runId", t.run_id)) if v}
    return TransactionOut(
        transaction_id=t.id,
        master_account_id=t.account_id,
        type=t.kind.value,
        transaction_type=t.transaction_type,
        amount_usd=format_usd(t.amount_nanos),
        balance_before_usd=format_usd(t.balance_before),
        balance_after_usd=format_usd(t.balance_after),
        held_after_usd=format_usd(t.held_after),
        description=t.description,
        external_transaction_id=t.data.get("externalTransactionId"),
        related_items=related,
        timestamp=t.created_at,
    )


class TransferOut(ApiModel):
    transaction: TransactionOut
    economy: EconomyOut
    replayed: bool


# --- status report and keys ------------------------------------------------------------------------


class LiveTaskOut(ApiModel):
    id_hash: str
    tool_name: str
    status: str
    progress: float | None
    live_status: str | None
    cost_usd: str
    estimated_cost_usd: str
    started_at: datetime | None


class StatusReportOut(ApiModel):
    account_id: Annotated[str, Field(description="Your account id (what the operator's `noema` commands take).")]
    points: int
    usd_credit: str
    held_usd: str
    exp: int
    level: int
    level_progress: float
    level_bar: str
    wallet_address: str | None
    live_tasks: list[LiveTaskOut]
    owed_usd: str  #: taken back by a refund or dispute and not yet paid; new runs wait for it


def status_out(r: StatusReport) -> StatusReportOut:
    """The JSON of a status report."""
    return StatusReportOut(
        account_id=r.account_id,
        points=r.points,
        usd_credit=format_usd(r.balance_nanos),
        held_usd=format_usd(r.held_nanos),
        exp=r.exp,
        level=r.level,
        level_progress=r.level_progress,
        level_bar=r.level_bar,
        wallet_address=r.wallet_address,
        owed_usd=format_usd(r.owed_nanos),
        live_tasks=[
            LiveTaskOut(
                id_hash=t.id_hash,
                tool_name=t.tool_name,
                status=t.status,
                progress=t.progress,
                live_status=t.live_status,
                cost_usd=format_usd(t.cost_nanos),
                estimated_cost_usd=format_usd(t.estimated_cost_nanos),
                started_at=t.started_at,
            )
            for t in r.live_tasks
        ],
    )


class ApiKeyOut(ApiModel):
    key_id: str
    prefix: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def api_key_out(k: ApiKey) -> ApiKeyOut:
    """The JSON of a key (never its hash)."""
    return ApiKeyOut(
        key_id=k.id,
        prefix=k.prefix,
        name=k.name,
        created_at=k.created_at,
        last_used_at=k.last_used_at,
        revoked_at=k.revoked_at,
    )
