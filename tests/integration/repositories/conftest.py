"""The repository contract: every test here runs on SQLite, on PostgreSQL and on the in-memory fake.

The fake (``tests/fakes/memory_uow.py``) is what the unit tests run the service rules on; holding it
to the same tests as the two real databases is what keeps it from drifting away from them.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from noema.adapters.db.engine import create_engine
from noema.adapters.db.uow import SqlUnitOfWorkFactory
from noema.domain.accounts import Account
from noema.ports import UnitOfWorkFactory
from tests.conftest import _truncate
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
async def uows(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UnitOfWorkFactory]:
    """A factory of units of work over an empty store: SQLite, PostgreSQL, or the in-memory fake."""
    if request.param == "memory":
        yield MemoryUnitOfWorkFactory()
        return
    if request.param == "sqlite":
        target = tmp_path / "noema.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite+aiosqlite:///{target}"
    else:
        url = request.getfixturevalue("pg_database")
        await _truncate(url)
    engine = create_engine(url)
    try:
        yield SqlUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()


def at(minutes: float) -> datetime:
    """A fixed instant ``minutes`` after the contract's start time."""
    return T0 + timedelta(minutes=minutes)


async def make_account(uows: UnitOfWorkFactory, account_id: str, *, minutes: float = 0, **fields: object) -> Account:
    """Commit a new account; ``fields`` set its wallet and the rest."""
    account = Account(id=account_id, created_at=at(minutes), updated_at=at(minutes))
    for name, value in fields.items():
        setattr(account, name, value)
    async with uows() as uow:
        uow.accounts.add(account)
        await uow.commit()
    return account
