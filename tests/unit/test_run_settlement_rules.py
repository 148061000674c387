"""A run's updates settle its hold exactly once, on the in-memory unit of work.

The end-to-end versions (webhooks over HTTP, both databases) are in tests/e2e/test_generations_api.py;
here each rule of settling a hold has its own millisecond test.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from noema.domain.delivery import DeliveryKind, DeliveryStatus
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.runs import OutputKind, RunOutput, RunStatus, RunUpdate
from noema.services import economy, run_updates
from tests.unit.service_world import USD, World, world

QUIET = timedelta(seconds=60)
IMAGE = RunOutput(kind=OutputKind.IMAGE, url="https://files.test/out.png", filename="out.png")


async def update(w: World, g: Generation, status: RunStatus, **fields: Any) -> Generation:
    """Apply one update of the generation's run, as a poll does."""
    change = RunUpdate(run_id=g.run_id or "", status=status, **fields)
    return await run_updates.record_run_update(
        w.uows(), w.clock, g.id, change, token=None, metrics=w.metrics, quiet_for=QUIET
    )


async def started(w: World, platform: str = "telegram") -> tuple[str, Generation]:
    """An account with $1 and a generation of it running since now."""
    aid = await w.account(usd=1)
    g = await w.service.request(w.ask(aid, platform=platform, delivery={"chat_id": 5}))
    return aid, await update(w, g, RunStatus.RUNNING)


async def test_a_successful_run_is_charged_its_seconds_and_its_hold_released() -> None:
    w = world()
    aid, g = await started(w)
    w.clock.advance(seconds=10)
    done = await update(w, g, RunStatus.SUCCESS, outputs=(IMAGE,))
    assert done.status is GenerationStatus.SUCCEEDED and done.cost_nanos == 10 * g.rate_nanos_per_second
    wallet = await economy.wallet(w.uows(), aid)
    assert (wallet.balance_nanos, wallet.held_nanos) == (USD - done.cost_nanos, 0)
    assert await economy.verify(w.uows()) == (1, [])


async def test_a_repeated_success_charges_once_and_delivers_once() -> None:
    w = world()
    aid, g = await started(w)
    w.clock.advance(seconds=10)
    await update(w, g, RunStatus.SUCCESS, outputs=(IMAGE,))
    w.clock.advance(seconds=30)
    again = await update(w, g, RunStatus.SUCCESS, outputs=(IMAGE,))
    assert again.cost_nanos == 10 * g.rate_nanos_per_second
    assert (await economy.wallet(w.uows(), aid)).balance_nanos == USD - again.cost_nanos
    async with w.uows() as uow:
        sent = await uow.deliveries.for_generation(g.id)
    assert [(d.kind, d.status) for d in sent if d.kind is not DeliveryKind.PROGRESS] == [
        (DeliveryKind.RESULT, DeliveryStatus.PENDING)
    ]


async def test_a_failed_run_costs_nothing_and_queues_the_failure_message() -> None:
    w = world()
    aid, g = await started(w)
    w.clock.advance(seconds=20)
    failed = await update(w, g, RunStatus.FAILED, error="out of memory")
    assert failed.status is GenerationStatus.FAILED and failed.cost_nanos == 0
    wallet = await economy.wallet(w.uows(), aid)
    assert (wallet.balance_nanos, wallet.held_nanos) == (USD, 0)
    async with w.uows() as uow:
        failure = await uow.deliveries.by_key(f"{g.id}:failure")
    assert failure is not None and failure.status is DeliveryStatus.PENDING


async def test_a_run_watched_live_gets_no_outbox_row_but_wakes_its_streams() -> None:
    w = world()
    woken: list[str] = []
    w.uows.live = woken.append
    _aid, g = await started(w, platform="api")
    w.clock.advance(seconds=5)
    await update(w, g, RunStatus.SUCCESS, outputs=(IMAGE,))
    async with w.uows() as uow:
        assert await uow.deliveries.for_generation(g.id) == []
    assert g.id in woken


async def test_an_update_of_another_run_never_touches_the_generation() -> None:
    w = world()
    aid, g = await started(w)
    stranger = RunUpdate(run_id="someone-elses-run", status=RunStatus.SUCCESS, outputs=(IMAGE,))
    same = await run_updates.record_run_update(
        w.uows(), w.clock, g.id, stranger, token=None, metrics=w.metrics, quiet_for=QUIET
    )
    assert same.status is GenerationStatus.RUNNING
    assert (await economy.wallet(w.uows(), aid)).held_nanos == g.hold_nanos
