"""A committed outbox row wakes the delivery worker at once.

In process, and in other replicas through PostgreSQL's NOTIFY. Leases, retries and rolled-back
transactions wake nobody.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from noema.adapters.db.engine import create_engine
from noema.adapters.db.outbox_signal import OutboxSignal
from noema.adapters.db.uow import SqlUnitOfWorkFactory
from noema.adapters.metrics import PrometheusMetrics
from noema.bootstrap import Container
from noema.domain.delivery import DeliveryKind
from noema.domain.errors import NotifierError
from noema.domain.generation import GenerationStatus
from noema.ports import UnitOfWorkFactory
from noema.services import delivery
from noema.services.outbox import enqueue
from tests.fakes.clock import FakeClock
from tests.fakes.generations import make_generation
from tests.fakes.ids import new_id
from tests.fakes.notifier import ScriptedNotifier
from tests.integration.test_delivery_db import _finished_generation


async def stage_result(
    uow_factory: UnitOfWorkFactory, clock: FakeClock, *, account_id: str, commit: bool = True, chat_id: int = 1
) -> str:
    """A finished Telegram generation and its pending result row (committed unless told not to)."""
    g = make_generation(
        GenerationStatus.SUCCEEDED,
        id=new_id(),
        account_id=account_id,
        platform="telegram",
        hold_nanos=0,
        requested_at=clock.now(),
        updated_at=clock.now(),
        delivery={"chat_id": chat_id},
    )
    async with uow_factory() as uow:
        uow.generations.add(g)
        await enqueue(uow, g, DeliveryKind.RESULT, clock.now())
        if commit:
            await uow.commit()
    return g.id


async def test_a_committed_delivery_wakes_the_worker_and_a_lease_or_retry_does_not(
    container: Container, clock: FakeClock
) -> None:
    signal = container.uow.signal
    assert signal is not None
    assert not await signal.wait(0)  # nothing yet
    gid = await _finished_generation(container, clock)  # commits a pending result row
    assert await signal.wait(0), "the commit of a pending delivery must wake the worker"
    notifier = ScriptedNotifier(NotifierError("Telegram is down"))
    metrics = PrometheusMetrics(container.registry.__class__())
    assert await delivery.deliver_due(container.uow, clock, {"telegram": notifier}, metrics=metrics) == 1
    assert not await signal.wait(0), "a lease and a scheduled retry are not new work"
    async with container.uow() as uow:
        row = await uow.deliveries.by_key(f"{gid}:result")
    assert row is not None and row.attempts == 1


async def test_a_rolled_back_delivery_wakes_nobody(container: Container, clock: FakeClock) -> None:
    signal = container.uow.signal
    assert signal is not None
    account_id = await _account(container, clock)
    await signal.wait(0)
    await stage_result(container.uow, clock, account_id=account_id, commit=False)
    assert not await signal.wait(0)
    await stage_result(container.uow, clock, account_id=account_id, commit=True)
    assert await signal.wait(0)


async def _account(c: Container, clock: FakeClock) -> str:
    from noema.domain.accounts import Platform
    from noema.services import accounts

    found = await accounts.find_or_create(c.uow, clock, platform=Platform.TELEGRAM, platform_id=new_id()[:8])
    return found.account.id


@pytest.mark.postgres
async def test_another_replica_is_woken_through_postgres_notify(pg_database: str, clock: FakeClock) -> None:
    from tests.conftest import _truncate

    await _truncate(pg_database)
    writer_engine, listener_engine = create_engine(pg_database), create_engine(pg_database)
    writer = SqlUnitOfWorkFactory(writer_engine, OutboxSignal())
    other = OutboxSignal()
    listening = asyncio.create_task(other.listen(listener_engine.url, retry_seconds=0.1))
    try:
        assert await other.wait(10), "listening starts with one wake-up for rows committed meanwhile"
        from noema.domain.accounts import Platform
        from noema.services import accounts

        found = await accounts.find_or_create(writer, clock, platform=Platform.TELEGRAM, platform_id=new_id()[:8])
        await other.wait(0)
        await stage_result(writer, clock, account_id=found.account.id, commit=False)
        assert not await other.wait(0.5), "NOTIFY is sent only when the transaction commits"
        await stage_result(writer, clock, account_id=found.account.id, commit=True)
        assert await other.wait(10), "the other replica must hear the commit"
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await writer_engine.dispose()
        await listener_engine.dispose()
