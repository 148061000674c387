"""The status report: what a user sees with /status and on the account panel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from noema.domain.economy import level_of
from noema.domain.errors import AccountNotFound
from noema.domain.money import points
from noema.ports import UnitOfWork


@dataclass(frozen=True)
class LiveTask:
    id_hash: str
    tool_name: str
    status: str
    progress: float | None
    live_status: str | None
    cost_nanos: int
    estimated_cost_nanos: int
    started_at: datetime | None


@dataclass(frozen=True)
class StatusReport:
    points: int
    balance_nanos: int
    held_nanos: int
    exp: int
    level: int
    level_progress: float
    level_bar: str
    wallet_address: str | None
    live_tasks: list[LiveTask] = field(default_factory=list)


async def report(uow: UnitOfWork, account_id: str) -> StatusReport:
    """Points, balance, level and the account's live tasks."""
    async with uow:
        account = await uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()
        level = level_of(account.exp)
        return StatusReport(
            points=points(account.balance_nanos - account.held_nanos),
            balance_nanos=account.balance_nanos,
            held_nanos=account.held_nanos,
            exp=account.exp,
            level=level.level,
            level_progress=round(level.progress, 4),
            level_bar=level.bar,
            wallet_address=account.wallet_address,
            live_tasks=[],
        )
