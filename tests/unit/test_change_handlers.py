"""What follows each change to a generation: the handler table, on the in-memory unit of work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from noema.domain.delivery import DeliveryKind, DeliveryStatus
from noema.domain.generation import Change, Generation, GenerationStatus
from noema.domain.money import format_usd
from noema.domain.runs import OutputKind, RunOutput, RunStatus, RunUpdate
from noema.services import change_handlers, run_updates
from noema.services.change_handlers import HANDLERS, Changed, Handler
from tests.fakes.generations import T0, make_generation
from tests.unit.service_world import World, world

QUIET = timedelta(seconds=60)
IMAGE = RunOutput(kind=OutputKind.IMAGE, url="https://files.test/out.png", filename="out.png")


def _recorder(ran: list[str], name: str) -> Handler:
    async def handler(_c: Changed) -> None:
        ran.append(name)

    return handler


async def _changed(w: World) -> Changed:
    return Changed(w.uows(), make_generation(), T0, w.metrics)


async def test_each_handler_runs_once_in_table_order_however_many_of_its_changes_happened() -> None:
    ran: list[str] = []
    first, second, third = (_recorder(ran, name) for name in ("first", "second", "third"))
    table = {Change.STATUS: (first, second), Change.PROGRESS: (second, third), Change.TERMINAL: (third,)}
    changes = [Change.TERMINAL, Change.PROGRESS, Change.STATUS]
    await change_handlers.handle(changes, await _changed(world()), table=table)
    assert ran == ["first", "second", "third"]


async def test_only_the_handlers_of_the_changes_that_happened_run() -> None:
    ran: list[str] = []
    table = {Change.STATUS: (_recorder(ran, "status"),), Change.PROGRESS: (_recorder(ran, "progress"),)}
    await change_handlers.handle([Change.PROGRESS, Change.RUN_ID_LEARNED], await _changed(world()), table=table)
    assert ran == ["progress"]


def test_every_kind_of_change_has_its_row_in_the_table() -> None:
    assert set(HANDLERS) == set(Change)
    assert HANDLERS[Change.TERMINAL][0] is change_handlers.settle  # the money first: the event and message say the cost


async def _update(w: World, g: Generation, status: RunStatus, **fields: Any) -> Generation:
    change = RunUpdate(run_id=g.run_id or "", status=status, **fields)
    return await run_updates.record_run_update(
        w.uows(), w.clock, g.id, change, token=None, metrics=w.metrics, quiet_for=QUIET
    )


async def test_a_run_that_succeeds_is_logged_started_then_completed_at_the_cost_it_was_charged() -> None:
    w = world()
    aid = await w.account(usd=1)
    g = await w.service.request(w.ask(aid, platform="telegram", delivery={"chat_id": 5}))
    g = await _update(w, g, RunStatus.RUNNING)
    w.clock.advance(seconds=10)
    done = await _update(w, g, RunStatus.SUCCESS, outputs=(IMAGE,))
    async with w.uows() as uow:
        logged = (await uow.events.list(account_id=aid, limit=20, cursor=None)).items
        sent = await uow.deliveries.for_generation(g.id)
    ours = [e for e in reversed(logged) if e.event_data.get("generationId") == g.id]
    assert [e.event_type for e in ours] == ["generation_requested", "generation_started", "generation_completed"]
    assert ours[-1].event_data["costUsd"] == format_usd(done.cost_nanos)
    assert done.cost_nanos == 10 * g.rate_nanos_per_second > 0
    assert sorted((d.kind.value, d.status.value) for d in sent) == [
        (DeliveryKind.PROGRESS.value, DeliveryStatus.SKIPPED.value),  # superseded by the result
        (DeliveryKind.RESULT.value, DeliveryStatus.PENDING.value),
    ]
    assert w.metrics.counts["status:succeeded"] == 1


async def test_a_run_ended_from_our_side_queues_its_failure_and_no_progress_edit() -> None:
    w = world()
    aid = await w.account(usd=1)
    g = await w.service.request(w.ask(aid, platform="telegram", delivery={"chat_id": 5}))
    ended = await run_updates.finish(
        w.uows(), w.clock, g.id, GenerationStatus.CANCELLED, reason="Cancelled.", metrics=w.metrics
    )
    async with w.uows() as uow:
        sent = await uow.deliveries.for_generation(g.id)
    assert ended.settled_at == w.clock.now()
    assert [(d.kind, d.status) for d in sent] == [(DeliveryKind.FAILURE, DeliveryStatus.PENDING)]


async def test_an_update_after_the_end_runs_no_handler() -> None:
    w = world()
    aid = await w.account(usd=1)
    g = await w.service.request(w.ask(aid, platform="telegram", delivery={"chat_id": 5}))
    await _update(w, g, RunStatus.FAILED)
    async with w.uows() as uow:
        before = len((await uow.events.list(account_id=aid, limit=20, cursor=None)).items)
    await _update(w, g, RunStatus.SUCCESS, outputs=(IMAGE,), progress=1.0)
    async with w.uows() as uow:
        after = (await uow.events.list(account_id=aid, limit=20, cursor=None)).items
        sent = await uow.deliveries.for_generation(g.id)
    assert len(after) == before
    assert [d.kind for d in sent] == [DeliveryKind.FAILURE]
    assert w.metrics.counts.get("status:succeeded", 0) == 0
