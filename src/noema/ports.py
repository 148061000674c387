"""The ports: what the services need from the outside world, as Protocols.

Adapters implement them (SQLAlchemy, httpx clients, platform bots); tests use the fakes in
``tests/fakes`` that subclass these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from noema.domain.accounts import Account, ApiKey, Identity, Platform
from noema.domain.ledger import LedgerEntry
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


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first, and the cursor of the next page (None at the end)."""

    items: list[T]
    next_cursor: str | None


class AccountRepository(Protocol):
    async def get(self, account_id: str, *, for_update: bool = False) -> Account | None:
        """The account, locked for update when asked (PostgreSQL row lock)."""
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


class UnitOfWork(Protocol):
    """One transaction: repositories that share it, committed explicitly, rolled back otherwise."""

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

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None:
        """Make the staged changes permanent."""
        ...

    async def rollback(self) -> None:
        """Drop the staged changes."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork:
        """A new unit of work."""
        ...
