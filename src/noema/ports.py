"""The ports: what the services need from the outside world, as Protocols.

Adapters implement them (SQLAlchemy, httpx clients, platform bots); tests use the fakes in
``tests/fakes`` that subclass these.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from noema.domain.accounts import Account, ApiKey, Identity, Platform
from noema.domain.delivery import Delivery, DeliveryStatus
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.ledger import LedgerEntry
from noema.domain.linking import LinkCode, WebSession
from noema.domain.loras import Lora
from noema.domain.payments import CREDIT_TYPE, GIVE_BACK_TYPE, REPAY_TYPE, TAKE_BACK_TYPE, Payment, PaymentProvider
from noema.domain.platform_updates import PlatformUpdate
from noema.domain.runs import (
    DeploymentInfo,
    MachineInfo,
    RunUpdate,
    UploadedFile,
    WorkflowInfo,
    WorkflowVersionInfo,
)
from noema.domain.sessions import Event, Session

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current UTC time, timezone-aware."""
        ...


class IdFactory(Protocol):
    """Makes the ids of new rows: UUID strings, each new one sorting after those made before it.

    Lists are ordered by (created_at, id); two rows of one transaction share created_at, and ids in
    random order would list them in random order.
    """

    def new(self) -> str:
        """A new id."""
        ...


class Secrets(Protocol):
    """Unguessable values for tokens, codes and seeds, from the OS's randomness.

    Services get them here rather than from Python's ``secrets``, as ids come from an IdFactory.
    """

    def token(self, nbytes: int) -> str:
        """``nbytes`` random bytes as URL-safe base64 text (about 1.3 characters a byte)."""
        ...

    def token_hex(self, nbytes: int) -> str:
        """``nbytes`` random bytes as lowercase hex (two characters a byte)."""
        ...

    def code(self, alphabet: str, length: int) -> str:
        """``length`` characters, each drawn uniformly from ``alphabet``."""
        ...

    def randbits(self, k: int) -> int:
        """A random non-negative integer of at most ``k`` bits."""
        ...


class Backend(Protocol):
    """A GPU backend that runs deployed workflows (ComfyDeploy, or the sandbox speaking its API)."""

    #: shown to users; the sandbox says it is one
    label: str

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """Queue a run of a deployment and return the backend's run id."""
        ...

    async def get_run(self, run_id: str) -> RunUpdate:
        """The run's current status, progress and outputs."""
        ...

    async def cancel_run(self, run_id: str) -> None:
        """Ask the backend to stop a run."""
        ...

    async def list_deployments(self) -> list[DeploymentInfo]:
        """Every deployment the key can run."""
        ...

    async def list_machines(self) -> list[MachineInfo]:
        """Every machine, with its GPU."""
        ...

    async def list_workflows(self) -> list[WorkflowInfo]:
        """Every workflow."""
        ...

    async def list_workflow_versions(self, workflow_id: str) -> list[WorkflowVersionInfo]:
        """The versions of one workflow, newest first."""
        ...

    async def upload_file(self, *, filename: str, content: bytes, content_type: str) -> UploadedFile:
        """Store a file at the backend and return a URL usable as an input value."""
        ...


@runtime_checkable
class RoomAware(Protocol):
    """A backend that can say a run would wait (own servers down or full), so a caller may try another first."""

    async def has_room(self, deployment_id: str) -> bool:
        """Whether a run of this deployment would start now rather than wait."""
        ...


@dataclass(frozen=True)
class RequestCheck:
    """What a new generation request is checked against, read with the account's row lock in one statement."""

    account: Account
    defaults: dict[str, Any]  #: the account's defaults for the tool asked for
    live: int  #: its generations that have not ended
    recent: int  #: its generations asked for since the time given
    replayed_id: str | None  #: the generation its Idempotency-Key already made, if one was given and did


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first, and the cursor of the next page (None at the end)."""

    items: list[T]
    next_cursor: str | None


class AccountRepository(Protocol):
    async def get(self, account_id: str, *, for_update: bool = False) -> Account | None:
        """The account, locked for update when asked (PostgreSQL row lock)."""
        ...

    async def lock_for_request(
        self, account_id: str, *, tool_id: str, since: datetime, idempotency_key: str | None
    ) -> RequestCheck | None:
        """The account row-locked, with what a new generation request is checked against (None: no such account)."""
        ...

    def add(self, account: Account) -> None:
        """Stage a new account."""
        ...

    async def by_identity(self, platform: Platform, platform_id: str) -> Account | None:
        """The account that holds this platform identity."""
        ...

    async def identities(self, account_id: str) -> list[Identity]:
        """Every identity of the account."""
        ...

    async def identity(self, platform: Platform, platform_id: str) -> Identity | None:
        """One identity."""
        ...

    def add_identity(self, identity: Identity) -> None:
        """Stage a new identity."""
        ...

    async def wallets(self) -> dict[str, tuple[int, int]]:
        """Every account's stored (balance, held), by account id."""
        ...

    async def page(self, *, limit: int, cursor: str | None) -> Page[Account]:
        """Accounts not merged into another, newest first."""
        ...

    async def identities_of(self, account_ids: list[str]) -> dict[str, list[Identity]]:
        """The identities of several accounts, by account id (oldest first)."""
        ...

    async def move_records(self, from_id: str, to_id: str) -> None:
        """Give everything ``from_id`` owns (identities, generations, events, keys, browser sessions) to ``to_id``."""
        ...


class SessionRepository(Protocol):
    async def get(self, session_id: str) -> Session | None:
        """One session."""
        ...

    async def active(self, account_id: str, platform: str) -> Session | None:
        """The active session of the account on the platform, locked for update."""
        ...

    def add(self, session: Session) -> None:
        """Stage a new session."""
        ...

    async def list_for_account(self, account_id: str, *, limit: int, cursor: str | None) -> Page[Session]:
        """The account's sessions, newest first."""
        ...

    async def inactive_since(self, before: datetime, *, limit: int) -> list[Session]:
        """Active sessions whose last activity is older than ``before``."""
        ...


class EventRepository(Protocol):
    def add(self, event: Event) -> None:
        """Stage an event."""
        ...

    async def get(self, event_id: str) -> Event | None:
        """One event."""
        ...

    async def list(
        self, *, account_id: str | None = None, session_id: str | None = None, limit: int, cursor: str | None
    ) -> Page[Event]:
        """Events of an account or a session, newest first."""
        ...


class LedgerRepository(Protocol):
    def add(self, entry: LedgerEntry) -> None:
        """Stage an entry."""
        ...

    async def by_key(self, idempotency_key: str) -> LedgerEntry | None:
        """The entry posted under this key, if any."""
        ...

    async def get(self, entry_id: str) -> LedgerEntry | None:
        """One entry."""
        ...

    async def list_for_account(self, account_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        """The account's entries, newest first."""
        ...

    async def totals(self) -> dict[str, tuple[int, int]]:
        """Per account: (sum of balance deltas, sum of held deltas)."""
        ...


class ApiKeyRepository(Protocol):
    def add(self, key: ApiKey) -> None:
        """Stage a new key."""
        ...

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash."""
        ...

    async def get(self, key_id: str) -> ApiKey | None:
        """One key."""
        ...

    async def list_for_account(self, account_id: str) -> list[ApiKey]:
        """The account's keys, newest first."""
        ...


@dataclass
class PaymentTotals:
    """One account's payments: credit given and taken back by their rows, the ledger's sums by type, owed."""

    LEDGER_TYPES = (CREDIT_TYPE, TAKE_BACK_TYPE, REPAY_TYPE, GIVE_BACK_TYPE)

    credited_nanos: int = 0
    taken_back_nanos: int = 0
    owed_nanos: int = 0
    posted: dict[str, int] = field(default_factory=dict)


class PaymentRepository(Protocol):
    def add(self, payment: Payment) -> None:
        """Stage a new payment."""
        ...

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        """One payment, row-locked when asked."""
        ...

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
        ...

    async def list(self, *, account_id: str | None, limit: int, cursor: str | None) -> Page[Payment]:
        """Payments (of one account, or all), newest first."""
        ...

    async def opened_since(self, account_id: str, provider: PaymentProvider, since: datetime) -> tuple[datetime, ...]:
        """When each of the account's unpaid payments made after ``since`` was made (still open to be paid)."""
        ...

    async def seen_event(self, provider: PaymentProvider, event_id: str) -> bool:
        """Whether this provider event was already applied."""
        ...

    async def record_event(
        self, provider: PaymentProvider, event_id: str, *, event_type: str, payment_id: str | None, at: datetime
    ) -> None:
        """Remember an applied event."""
        ...

    async def totals(self) -> dict[str, PaymentTotals]:
        """Per account: credit given and taken back by payments, and the payment entries of the ledger."""
        ...


@dataclass(frozen=True)
class CheckoutSession:
    """A hosted checkout the payer is sent to: the provider's id for it and its URL."""

    id: str
    url: str


class CardGateway(Protocol):
    """A card payment provider with hosted checkout (Stripe Checkout)."""

    async def create_checkout(
        self, *, payment_id: str, account_id: str, amount_cents: int, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        """A checkout for ``amount_cents`` USD, idempotent on the payment id."""
        ...

    async def refund(self, *, payment_intent_id: str, amount_minor: int | None, idempotency_key: str) -> str:
        """Refund (part of) a payment; returns the provider's refund id. Its webhook takes the credit back."""
        ...

    async def payment_of_charge(self, charge_id: str) -> str | None:
        """The payment id the provider's charge carries (None when it knows no such charge or it is not ours)."""
        ...


class StarsGateway(Protocol):
    """Telegram's Stars payments API, for what Noema starts itself (refunds)."""

    async def refund(self, *, user_id: int, charge_id: str) -> None:
        """Refund a Stars payment in full (refundStarPayment); raises NoemaError when Telegram refuses."""
        ...


class UnitOfWork(Protocol):
    """One transaction: repositories that share it, committed explicitly, rolled back otherwise."""

    @property
    def ids(self) -> IdFactory:
        """Where the ids of the rows it adds come from (usable outside ``async with`` too)."""
        ...

    @property
    def accounts(self) -> AccountRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def events(self) -> EventRepository: ...
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def api_keys(self) -> ApiKeyRepository: ...
    @property
    def generations(self) -> GenerationRepository: ...
    @property
    def deliveries(self) -> DeliveryRepository: ...
    @property
    def kv(self) -> KeyValueRepository: ...
    @property
    def link_codes(self) -> LinkCodeRepository: ...
    @property
    def web_sessions(self) -> WebSessionRepository: ...
    @property
    def preferences(self) -> PreferenceRepository: ...
    @property
    def loras(self) -> LoraRepository: ...
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def platform_updates(self) -> PlatformUpdateRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None:
        """Make the staged changes permanent."""
        ...

    def announce(self, generation_id: str) -> None:
        """Once this commits, wake the live readers (SSE streams) of the generation in this process."""
        ...

    async def rollback(self) -> None:
        """Drop the staged changes."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork:
        """A new unit of work."""
        ...


@dataclass(frozen=True)
class GenerationFilter:
    """Which generations a list asks for."""

    account_id: str | None = None
    session_id: str | None = None
    status_in: tuple[GenerationStatus, ...] = ()
    status_not_in: tuple[GenerationStatus, ...] = ()
    run_id: str | None = None
    tool_id: str | None = None
    delivery_status: DeliveryStatus | None = None


class GenerationRepository(Protocol):
    async def get(self, generation_id: str, *, for_update: bool = False) -> Generation | None:
        """One generation, row-locked when asked."""
        ...

    def add(self, generation: Generation) -> None:
        """Stage a new generation."""
        ...

    async def lock_with_progress(self, generation_ids: list[str]) -> dict[str, tuple[Generation, Delivery | None]]:
        """Several generations, row-locked in id order, each with its progress outbox row, in one statement.

        The outbox rows are read, not locked: see ``progress_batches``.
        """
        ...

    async def by_idempotency_key(self, account_id: str, key: str) -> Generation | None:
        """The account's generation made under this Idempotency-Key."""
        ...

    async def count_live(self, account_id: str) -> int:
        """The account's generations that have not ended."""
        ...

    async def count_requested_since(self, account_id: str, since: datetime) -> int:
        """How many generations the account asked for since ``since``."""
        ...

    async def save_submit(self, generation: Generation) -> bool:
        """Write a submit (status, run id, times, inputs) if the stored row is still pending and not cancelled.

        False, and nothing written, otherwise.
        """
        ...

    async def search(self, where: GenerationFilter, *, limit: int, cursor: str | None) -> Page[Generation]:
        """Generations matching the filter, newest first."""
        ...

    async def claim_due_polls(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Generation]:
        """Live generations due a poll, pushed ``lease_seconds`` ahead (skipping rows others hold)."""
        ...

    async def recent_durations(self, tool_id: str, *, limit: int) -> list[float]:
        """Seconds on the GPU of the tool's latest successful runs."""
        ...

    async def count_by_status(self) -> dict[str, int]:
        """How many generations are in each status."""
        ...

    async def written_off(self) -> tuple[int, int]:
        """The cost no account paid (the sum of shortfalls, in nanos) and over how many generations."""
        ...

    async def count_by_tool(self) -> dict[str, int]:
        """How many generations each tool has had."""
        ...

    async def count_live_by_tool(self) -> dict[str, int]:
        """How many generations of each tool are in flight."""
        ...


class DeliveryRepository(Protocol):
    def add(self, delivery: Delivery) -> None:
        """Stage a new delivery."""
        ...

    async def by_key(self, key: str, *, for_update: bool = False) -> Delivery | None:
        """The delivery with this dedupe key."""
        ...

    def remember(self, rows: Mapping[str, Delivery | None]) -> None:
        """Rows (or their absence), by key, that this transaction read under their generations' locks.

        ``by_key`` answers them without a statement.
        """
        ...

    async def claim_due(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Delivery]:
        """Pending deliveries that are due, leased to this worker (skipping rows others hold)."""
        ...

    async def for_generation(self, generation_id: str) -> list[Delivery]:
        """Every delivery of a generation."""
        ...


class PreferenceRepository(Protocol):
    async def get(self, account_id: str, tool_id: str) -> dict[str, Any]:
        """The account's defaults for a tool (empty when none are set)."""
        ...

    async def put(self, account_id: str, tool_id: str, inputs: dict[str, Any], *, now: datetime) -> None:
        """Replace the account's defaults for a tool."""
        ...

    async def move_owner(self, from_id: str, to_id: str) -> None:
        """Give a merged account's defaults to the survivor (the survivor's own win)."""
        ...


class PlatformUpdateRepository(Protocol):
    async def seen(self, update: PlatformUpdate) -> bool:
        """Whether this update was answered already."""
        ...

    async def record(self, update: PlatformUpdate, *, at: datetime) -> bool:
        """Remember the update as answered (with the answer's own changes); False when it already was."""
        ...

    async def forget_before(self, cutoff: datetime, *, limit: int) -> int:
        """Forget at most ``limit`` updates answered before ``cutoff``; how many were forgotten."""
        ...


class KeyValueRepository(Protocol):
    async def get(self, key: str) -> Any:
        """The stored JSON value, or None."""
        ...

    async def get_for_update(self, key: str, *, default: Any, now: datetime) -> Any:
        """The stored value, locked until the transaction ends (``default`` is stored first if absent)."""
        ...

    async def put(self, key: str, value: Any, *, now: datetime) -> None:
        """Store a JSON value."""
        ...


class Notifier(Protocol):
    """Tells a user about their generation on one platform (the delivery worker's outlet)."""

    async def send(self, delivery: Delivery, generation: Generation) -> None:
        """Deliver, or raise NotifierError (``retryable`` says whether to try again)."""
        ...


class Metrics(Protocol):
    """What the services count (Prometheus in production; ``CountingMetrics`` of ``tests/fakes`` in tests)."""

    def generation_status(self, status: str) -> None:
        """A generation reached ``status``."""
        ...

    def webhook_applied(self, seconds: float) -> None:
        """A webhook was applied in ``seconds``."""
        ...

    def delivery(self, platform: str, outcome: str) -> None:
        """A delivery attempt ended with ``outcome`` (sent, retry, failed, skipped)."""
        ...

    def backend_error(self, kind: str) -> None:
        """The backend failed in this way."""
        ...


class LinkCodeRepository(Protocol):
    def add(self, code: LinkCode) -> None:
        """Stage a new code."""
        ...

    async def get(self, code_hash: str, *, for_update: bool = False) -> LinkCode | None:
        """The code with this hash."""
        ...

    async def record_failure(self, account_id: str, *, at: datetime) -> None:
        """Count one wrong code entered by the account."""
        ...

    async def failures_since(self, since: datetime, *, account_id: str | None = None) -> list[datetime]:
        """When wrong codes were entered after ``since`` (by the account, or by anyone), oldest first."""
        ...


class WebSessionRepository(Protocol):
    def add(self, session: WebSession) -> None:
        """Stage a new browser session."""
        ...

    async def get(self, token_hash: str) -> WebSession | None:
        """The browser session with this token hash."""
        ...


@dataclass(frozen=True)
class LoraRecord:
    """A stored LoRA, with when it was added and last changed."""

    lora: Lora
    created_at: datetime
    updated_at: datetime


class LoraRepository(Protocol):
    async def all(self) -> list[Lora]:
        """Every LoRA, switched off ones included (the resolver warns about those)."""
        ...

    async def get(self, slug: str) -> LoraRecord | None:
        """One LoRA by slug, case-insensitively."""
        ...

    async def by_slugs(self, slugs: Collection[str]) -> dict[str, LoraRecord]:
        """The stored LoRAs among ``slugs``, keyed by lower-case slug."""
        ...

    async def add(self, lora: Lora, *, now: datetime) -> None:
        """Insert a new LoRA."""
        ...

    async def replace(self, lora: Lora, *, now: datetime) -> None:
        """Overwrite a stored LoRA's fields, keeping its usage count and creation time."""
        ...

    async def list(self, *, limit: int, cursor: str | None, enabled: bool | None = None) -> Page[LoraRecord]:
        """LoRAs in slug order (case-insensitive), optionally only enabled or disabled ones."""
        ...

    async def count_usage(self, slugs: Collection[str]) -> None:
        """Add one to the usage count of each LoRA in ``slugs``, atomically in the database."""
        ...

    async def move_owner(self, from_id: str, to_id: str, *, now: datetime) -> None:
        """Give ``from_id``'s LoRAs, and its places on allowed lists, to ``to_id`` (account merge)."""
        ...

    async def existing_accounts(self, account_ids: Collection[str]) -> set[str]:
        """Which of ``account_ids`` name accounts."""
        ...
