"""Deliveries run concurrently across chats and one at a time, in order, within a chat (issue 15, goal 2).

A chat is a lane: progress edits never overtake a result, two results' parts never interleave, and one
chat's flood wait or slow upload holds up only that chat. Two workers never send one row twice.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import replace

import pytest

from noema.adapters.db.engine import create_engine
from noema.adapters.db.uow import SqlUnitOfWorkFactory
from noema.adapters.metrics import PrometheusMetrics
from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.delivery import Delivery
from noema.domain.generation import Generation
from noema.entrypoints.workers import worker_loops
from noema.ports import Notifier
from noema.services import accounts, delivery
from tests.fakes.clock import FakeClock
from tests.fakes.ids import new_id
from tests.integration.test_outbox_wakeup import stage_result


class LaneRecorder(Notifier):
    """Records who was sent what, and fails the test if one chat ever gets two sends at once."""

    def __init__(self) -> None:
        self.sent: dict[int, list[str]] = defaultdict(list)  #: chat -> generation ids, in the order sent
        self.all: list[str] = []
        self.busy: set[int] = set()
        self.overlaps = 0
        self.most_at_once = 0
        self.gates: dict[int, asyncio.Event] = {}  #: a chat whose sends wait until its gate opens

    async def send(self, d: Delivery, generation: Generation) -> None:
        chat = int(d.target["chat_id"])
        if chat in self.busy:
            self.overlaps += 1
        self.busy.add(chat)
        self.most_at_once = max(self.most_at_once, len(self.busy))
        try:
            if chat in self.gates:
                await self.gates[chat].wait()
            await asyncio.sleep(0.01)  # a send takes a while: the other lanes run meanwhile
            self.sent[chat].append(generation.id)
            self.all.append(f"{generation.id}:{d.kind.value}")
        finally:
            self.busy.discard(chat)


async def _results(c: Container, clock: FakeClock, chats: int, per_chat: int) -> dict[int, list[str]]:
    """``per_chat`` finished generations in each chat, each committed one second after the last."""
    aid = (await accounts.find_or_create(c.uow, clock, platform=Platform.TELEGRAM, platform_id=new_id()[:8])).account.id
    made: dict[int, list[str]] = defaultdict(list)
    for _ in range(per_chat):
        for chat in range(1, chats + 1):
            gid = await stage_result(c.uow, clock, account_id=aid, chat_id=chat)
            made[chat].append(gid)
            clock.advance(seconds=1)
    return made


def _metrics() -> PrometheusMetrics:
    from prometheus_client import CollectorRegistry

    return PrometheusMetrics(CollectorRegistry())


async def test_chats_are_served_together_and_each_chat_in_order(container: Container, clock: FakeClock) -> None:
    made = await _results(container, clock, chats=6, per_chat=4)
    recorder = LaneRecorder()
    sent = await delivery.deliver_due(container.uow, clock, {"telegram": recorder}, metrics=_metrics(), batch=64)
    assert sent == 24
    assert recorder.overlaps == 0, "two sends to one chat at once could interleave their parts"
    assert recorder.most_at_once > 1, "chats must be served concurrently, not one send at a time"
    assert dict(recorder.sent) == dict(made), "each chat gets its results in the order they were committed"


async def test_one_chats_flood_wait_holds_up_only_that_chat(container: Container, clock: FakeClock) -> None:
    made = await _results(container, clock, chats=3, per_chat=2)
    recorder = LaneRecorder()
    recorder.gates[1] = asyncio.Event()  # chat 1 is stuck (a flood wait, a slow upload)
    dispatcher = delivery.Dispatcher(container.uow, clock, {"telegram": recorder}, metrics=_metrics())
    assert await dispatcher.pump() == 6
    for _ in range(200):  # the other chats finish while chat 1 is still stuck
        if len(recorder.sent[2]) == 2 and len(recorder.sent[3]) == 2:
            break
        await asyncio.sleep(0.01)
    assert recorder.sent[2] == made[2] and recorder.sent[3] == made[3]
    assert recorder.sent[1] == [], "chat 1's sends are still waiting"
    recorder.gates[1].set()
    await dispatcher.drain()
    assert recorder.sent[1] == made[1]
    assert dispatcher.room == 64


async def test_a_full_dispatcher_claims_only_what_it_has_room_for(container: Container, clock: FakeClock) -> None:
    await _results(container, clock, chats=2, per_chat=3)
    recorder = LaneRecorder()
    recorder.gates[1] = asyncio.Event()
    recorder.gates[2] = recorder.gates[1]
    freed: list[int] = []
    dispatcher = delivery.Dispatcher(
        container.uow,
        clock,
        {"telegram": recorder},
        metrics=_metrics(),
        max_in_flight=4,
        on_free=lambda: freed.append(1),
    )
    assert await dispatcher.pump() == 4
    assert await dispatcher.pump() == 0, "no room: nothing more is claimed (so nothing waits out its lease)"
    recorder.gates[1].set()
    await dispatcher.drain()
    assert freed, "freeing room in a full dispatcher wakes the worker to claim the rest"
    assert await dispatcher.pump() == 2
    await dispatcher.drain()
    assert len(recorder.all) == 6


async def test_two_workers_never_send_one_row_twice(container: Container, clock: FakeClock, db_url: str) -> None:
    await _results(container, clock, chats=10, per_chat=4)
    recorder = LaneRecorder()
    other_engine = create_engine(db_url)
    other = SqlUnitOfWorkFactory(other_engine)
    try:
        workers = [
            delivery.Dispatcher(uow_factory, clock, {"telegram": recorder}, metrics=_metrics(), max_in_flight=8)
            for uow_factory in (container.uow, other, container.uow, other)
        ]
        for _ in range(4):  # each round claims at once on all four, then lets them send
            await asyncio.gather(*(w.pump() for w in workers))
            await asyncio.gather(*(w.drain() for w in workers))
    finally:
        await other_engine.dispose()
    assert len(recorder.all) == 40
    assert len(set(recorder.all)) == 40, "a row was sent twice"


@pytest.mark.parametrize("signal_lost", [False, True])
async def test_the_worker_delivers_at_once_and_the_backstop_poll_covers_a_lost_wake_up(
    container: Container, clock: FakeClock, db_url: str, signal_lost: bool
) -> None:
    recorder = LaneRecorder()
    container.notifiers["telegram"] = recorder
    worker = asyncio.create_task(worker_loops(container)["delivery"]())
    other_engine = create_engine(db_url)
    try:
        # A writer without the signal stands for a wake-up that never arrived.
        writer = replace(container, uow=SqlUnitOfWorkFactory(other_engine)) if signal_lost else container
        made = await _results(writer, clock, chats=2, per_chat=1)
        for _ in range(1000):
            if len(recorder.all) == 2:
                break
            await asyncio.sleep(0.01)
        assert sorted(recorder.all) == sorted(f"{gid}:result" for ids in made.values() for gid in ids)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await other_engine.dispose()
