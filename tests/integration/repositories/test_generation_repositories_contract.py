"""Generations and the delivery outbox: the same answers from SQLite, PostgreSQL and the in-memory fake."""

from __future__ import annotations

import pytest

from noema.domain.delivery import Delivery, DeliveryKind, DeliveryStatus
from noema.domain.errors import Conflict
from noema.domain.generation import Generation, GenerationStatus
from noema.ports import GenerationFilter, UnitOfWorkFactory
from tests.fakes.ids import new_id
from tests.integration.repositories.conftest import at, make_account

S = GenerationStatus


def generation(account_id: str, minutes: float = 0, *, status: S = S.PENDING, **fields: object) -> Generation:
    """A generation of tool ``t`` requested ``minutes`` after the start; ``fields`` override the rest."""
    g = Generation(
        id=new_id(),
        account_id=account_id,
        tool_id="t",
        tool_command="txt2img",
        deployment_id="d",
        inputs={"prompt": "a fox"},
        rate_nanos_per_second=337_000,
        estimated_cost_nanos=1_000,
        hold_nanos=1_000,
        webhook_token_hash="h",
        requested_at=at(minutes),
        updated_at=at(minutes),
        status=status,
    )
    for name, value in fields.items():
        setattr(g, name, value)
    return g


def delivery(g: Generation, kind: DeliveryKind = DeliveryKind.RESULT, minutes: float = 0, **fields: object) -> Delivery:
    """The generation's delivery of ``kind``, due ``minutes`` after the start."""
    d = Delivery(
        id=new_id(),
        generation_id=g.id,
        account_id=g.account_id,
        kind=kind,
        platform="telegram",
        key=f"{g.id}:{kind.value}",
        created_at=at(minutes),
        next_attempt_at=at(minutes),
    )
    for name, value in fields.items():
        setattr(d, name, value)
    return d


async def store(uows: UnitOfWorkFactory, *rows: Generation | Delivery) -> None:
    """Commit the generations, then (in a second unit) the deliveries.

    Two units, because SQLAlchemy does not order the inserts of one flush by the foreign key between
    these imperatively mapped tables: a delivery may reach the database before its generation.
    """
    async with uows() as uow:
        for row in rows:
            if isinstance(row, Generation):
                uow.generations.add(row)
        await uow.commit()
    async with uows() as uow:
        for row in rows:
            if isinstance(row, Delivery):
                uow.deliveries.add(row)
        await uow.commit()


async def test_an_idempotency_key_names_one_generation_per_account(uows: UnitOfWorkFactory) -> None:
    a, b = await make_account(uows, new_id()), await make_account(uows, new_id())
    first = generation(a.id, idempotency_key="k")
    await store(uows, first, generation(b.id, idempotency_key="k"), generation(a.id), generation(a.id))
    async with uows() as uow:
        found = await uow.generations.by_idempotency_key(a.id, "k")
        assert found is not None and found.id == first.id
        assert await uow.generations.by_idempotency_key(a.id, "other") is None
    with pytest.raises(Conflict):
        await store(uows, generation(a.id, idempotency_key="k"))


async def test_live_generations_and_recent_requests_are_counted_per_account(uows: UnitOfWorkFactory) -> None:
    a, b = await make_account(uows, new_id()), await make_account(uows, new_id())
    await store(
        uows,
        generation(a.id, 0, status=S.RUNNING),
        generation(a.id, 1, status=S.SUCCEEDED),
        generation(a.id, 2, status=S.PENDING),
        generation(b.id, 2, status=S.QUEUED),
    )
    async with uows() as uow:
        assert await uow.generations.count_live(a.id) == 2
        assert await uow.generations.count_requested_since(a.id, at(1)) == 2
        assert await uow.generations.count_by_status() == {"running": 1, "succeeded": 1, "pending": 1, "queued": 1}
        assert await uow.generations.count_by_tool() == {"t": 4}
        assert await uow.generations.count_live_by_tool() == {"t": 3}


async def test_search_filters_and_pages_newest_first(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    rows = [generation(a.id, n, status=S.SUCCEEDED if n % 2 else S.FAILED, run_id=f"run-{n}") for n in range(5)]
    rows[4].tool_id = "other"
    await store(uows, *rows, delivery(rows[1], status=DeliveryStatus.FAILED), delivery(rows[3], DeliveryKind.PROGRESS))
    async with uows() as uow:
        first = await uow.generations.search(GenerationFilter(account_id=a.id), limit=3, cursor=None)
        rest = await uow.generations.search(GenerationFilter(account_id=a.id), limit=3, cursor=first.next_cursor)
        done = await uow.generations.search(GenerationFilter(status_in=(S.SUCCEEDED,)), limit=9, cursor=None)
        not_done = await uow.generations.search(GenerationFilter(status_not_in=(S.SUCCEEDED,)), limit=9, cursor=None)
        by_run = await uow.generations.search(GenerationFilter(run_id="run-2"), limit=9, cursor=None)
        by_tool = await uow.generations.search(GenerationFilter(tool_id="other"), limit=9, cursor=None)
        failed = GenerationFilter(delivery_status=DeliveryStatus.FAILED)
        undelivered = await uow.generations.search(failed, limit=9, cursor=None)
        progress = await uow.generations.search(
            GenerationFilter(delivery_status=DeliveryStatus.PENDING), limit=9, cursor=None
        )
    ids = [g.id for g in rows]
    assert [g.id for g in first.items + rest.items] == ids[::-1] and rest.next_cursor is None
    assert [g.id for g in done.items] == [ids[3], ids[1]]
    assert [g.id for g in not_done.items] == [ids[4], ids[2], ids[0]]
    assert [g.id for g in by_run.items] == [ids[2]] and [g.id for g in by_tool.items] == [ids[4]]
    assert [g.id for g in undelivered.items] == [ids[1]]
    assert progress.items == []  # a progress row is not a delivery of the result


async def test_claiming_due_polls_leases_live_generations_only(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    due = generation(a.id, status=S.RUNNING, next_poll_at=at(1))
    later = generation(a.id, status=S.RUNNING, next_poll_at=at(30))
    ended = generation(a.id, status=S.FAILED, next_poll_at=at(1))
    await store(uows, due, later, ended)
    async with uows() as uow:
        claimed = await uow.generations.claim_due_polls(at(5), limit=10, lease_seconds=60)
        await uow.commit()
    assert [g.id for g in claimed] == [due.id]
    async with uows() as uow:
        leased = await uow.generations.get(due.id)
        assert leased is not None and leased.next_poll_at == at(6)
        assert await uow.generations.claim_due_polls(at(5), limit=10, lease_seconds=60) == []


async def test_recent_durations_prefer_the_backends_own_times(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    await store(
        uows,
        generation(a.id, status=S.SUCCEEDED, started_at=at(0), finished_at=at(1)),
        generation(
            a.id, status=S.SUCCEEDED, started_at=at(2), finished_at=at(4), run_started_at=at(2), run_ended_at=at(2.5)
        ),
        generation(a.id, status=S.FAILED, started_at=at(0), finished_at=at(1)),
        generation(a.id, status=S.SUCCEEDED, started_at=None, finished_at=at(9)),
    )
    async with uows() as uow:
        assert await uow.generations.recent_durations("t", limit=10) == [30.0, 60.0]
        assert await uow.generations.recent_durations("t", limit=1) == [30.0]


async def test_written_off_sums_the_shortfalls(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    await store(uows, generation(a.id, shortfall_nanos=7), generation(a.id, shortfall_nanos=5), generation(a.id))
    async with uows() as uow:
        assert await uow.generations.written_off() == (12, 2)


async def test_a_generation_changed_in_one_unit_is_saved_and_negative_money_is_refused(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    g = generation(a.id)
    await store(uows, g)
    async with uows() as uow:
        found = await uow.generations.get(g.id, for_update=True)
        assert found is not None
        found.status, found.outputs = S.SUCCEEDED, [{"url": "http://x/1.png"}]
        await uow.commit()
    async with uows() as uow:
        again = await uow.generations.get(g.id)
        assert again is not None and again.status is S.SUCCEEDED and again.outputs == [{"url": "http://x/1.png"}]
        again.cost_nanos = -1
        with pytest.raises(Conflict):
            await uow.commit()


async def test_one_delivery_per_key_and_it_must_name_a_generation(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    g = generation(a.id)
    await store(uows, g, delivery(g))
    async with uows() as uow:
        found = await uow.deliveries.by_key(f"{g.id}:result", for_update=True)
        assert found is not None and found.status is DeliveryStatus.PENDING
    with pytest.raises(Conflict):
        await store(uows, delivery(g))
    orphan = delivery(g, DeliveryKind.FAILURE)
    orphan.generation_id = new_id()
    with pytest.raises(Conflict):
        await store(uows, orphan)


async def test_claiming_due_deliveries_leases_them_and_counts_the_attempt(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    g, h = generation(a.id), generation(a.id)
    first, second = delivery(g, minutes=1), delivery(g, DeliveryKind.FAILURE, minutes=2)
    await store(
        uows,
        g,
        h,
        first,
        second,
        delivery(h, minutes=30),
        delivery(h, DeliveryKind.FAILURE, status=DeliveryStatus.SENT),
    )
    async with uows() as uow:
        claimed = await uow.deliveries.claim_due(at(5), limit=1, lease_seconds=30)
        await uow.commit()
    assert [d.id for d in claimed] == [first.id]
    async with uows() as uow:
        leased = await uow.deliveries.by_key(first.key)
        assert leased is not None and leased.attempts == 1 and leased.next_attempt_at == at(5.5)
        assert [d.id for d in await uow.deliveries.claim_due(at(5), limit=5, lease_seconds=30)] == [second.id]
        assert [d.id for d in await uow.deliveries.for_generation(g.id)] == [first.id, second.id]


async def test_locking_with_progress_gives_each_found_generation_its_progress_row(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    g, h = generation(a.id), generation(a.id)
    progress = delivery(g, DeliveryKind.PROGRESS)
    await store(uows, g, h, progress, delivery(g), delivery(h))
    async with uows() as uow:
        found = await uow.generations.lock_with_progress([h.id, new_id(), g.id, g.id])
        assert sorted(found) == sorted([g.id, h.id])
        assert found[g.id][0].id == g.id and found[h.id][0].id == h.id
        row = found[g.id][1]
        assert row is not None and row.id == progress.id and row.kind is DeliveryKind.PROGRESS
        assert found[h.id][1] is None
        uow.deliveries.remember({progress.key: row, f"{h.id}:progress": None})
        again = await uow.deliveries.by_key(progress.key, for_update=True)
        assert again is not None and again.id == progress.id
        assert await uow.deliveries.by_key(f"{h.id}:progress", for_update=True) is None
