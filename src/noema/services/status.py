"""The status report: what a user sees with /status and on the account panel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from noema.domain.economy import level_of
from noema.domain.errors import AccountNotFound
from noema.domain.generation import LIVE
from noema.domain.ids import short_id
from noema.domain.money import points
from noema.ports import GenerationFilter, UnitOfWork
from noema.services.history import cost_so_far


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
    account_id: str
    points: int
    balance_nanos: int
    held_nanos: int
    exp: int
    level: int
    level_progress: float
    level_bar: str
    wallet_address: str | None
    live_tasks: list[LiveTask] = field(default_factory=list)
    owed_nanos: int = 0  #: taken back from a refunded payment and not yet paid; new runs wait for it


async def report(uow: UnitOfWork, account_id: str, now: datetime) -> StatusReport:
    """Points, balance, level and the account's live tasks."""
    async with uow:
        account = await uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()
        live = await uow.generations.search(
            GenerationFilter(account_id=account_id, status_in=tuple(LIVE)), limit=50, cursor=None
        )
        level = level_of(account.exp)
        return StatusReport(
            account_id=account.id,
            points=points(account.balance_nanos - account.held_nanos),
            balance_nanos=account.balance_nanos,
            held_nanos=account.held_nanos,
            exp=account.exp,
            level=level.level,
            level_progress=round(level.progress, 4),
            level_bar=level.bar,
            wallet_address=account.wallet_address,
            owed_nanos=account.owed_nanos,
            live_tasks=[
                LiveTask(
                    id_hash=short_id(g.id),
                    tool_name=g.tool_command,
                    status=g.status.value,
                    progress=g.progress,
                    live_status=g.live_status,
                    cost_nanos=cost_so_far(g, now),
                    estimated_cost_nanos=g.estimated_cost_nanos,
                    started_at=g.started_at,
                )
                for g in live.items
            ],
        )
