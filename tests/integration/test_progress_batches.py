"""Progress webhooks arriving together share one transaction, and each still gets its own answer."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.delivery import Delivery, DeliveryKind, DeliveryStatus, dedupe_key
from noema.domain.errors import Forbidden
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.runs import RunStatus, RunUpdate
from noema.ports import Notifier
from noema.services import accounts
from noema.services.delivery import deliver_due
from noema.services.progress_batches import ProgressBatches
from noema.services.run_updates import hash_token
from tests.fakes.clock import FakeClock
from tests.fakes.generations import make_generation
from tests.fakes.ids import new_id


async def _running(c: Container, clock: FakeClock, platform: str = "telegram") -> str:
    aid = (await accounts.find_or_create(c.uow, clock, platform=Platform.TELEGRAM, platform_id=new_id()[:8])).account.id
    gid = new_id()
    g = make_generation(
        GenerationStatus.RUNNING,
        id=gid,
        account_id=aid,
        platform=platform,
        run_id=f"run-{gid}",
        webhook_token_hash=hash_token(f"token-{gid}"),
        requested_at=clock.now(),
        updated_at=clock.now(),
        started_at=clock.now(),
        delivery={"chat_id": 1},
    )
    async with c.uow() as uow:
        uow.generations.add(g)
        await uow.commit()
    return gid


def _progress(gid: str, progress: float, *, run_id: str | None = None) -> RunUpdate:
    return RunUpdate(run_id=run_id or f"run-{gid}", status=RunStatus.RUNNING, progress=progress, live_status="Sampling")


def _batches(c: Container) -> ProgressBatches:
    assert c.backend_updates.batches is not None
    return c.backend_updates.batches


async def _progress_of(c: Container, gid: str) -> tuple[float, int]:
    """(the generation's progress, how many outbox rows it has)."""
    async with c.uow() as uow:
        g = await uow.generations.get(gid)
        rows = await uow.deliveries.for_generation(gid)
    assert g is not None
    return g.progress, len(rows)


class _Shown(Notifier):
    """A chat that records the progress each progress edit shows."""

    def __init__(self) -> None:
        self.progress: dict[str, float] = {}

    async def send(self, delivery: Delivery, generation: Generation) -> None:
        assert delivery.kind is DeliveryKind.PROGRESS
        self.progress[generation.id] = delivery.payload.progress


async def _shown(c: Container, clock: FakeClock) -> dict[str, float]:
    """What each chat's progress message shows once the delivery worker has sent every edit due."""
    chat = _Shown()
    clock.advance(seconds=10)  # past the edit throttle
    await deliver_due(c.uow, clock, {"telegram": chat}, metrics=c.metrics)
    return chat.progress


async def test_progress_webhooks_sent_at_once_are_all_applied_in_order(container: Container, clock: FakeClock) -> None:
    a, b = await _running(container, clock), await _running(container, clock)
    web = await _running(container, clock, platform="web")
    batches = _batches(container)
    sent = [(a, 0.3), (b, 0.5), (a, 0.6), (web, 0.4), (b, 0.7), (a, 0.9)]
    await asyncio.gather(*(batches.apply(g, _progress(g, p), token=f"token-{g}") for g, p in sent))
    assert await _progress_of(container, a) == (0.9, 1)
    assert await _progress_of(container, b) == (0.7, 1)
    assert await _progress_of(container, web) == (0.4, 0)  # watched live: no outbox row
    assert await _shown(container, clock) == {a: 0.9, b: 0.7}


async def test_webhooks_that_arrive_while_one_is_written_share_the_next_transaction(
    container: Container, clock: FakeClock
) -> None:
    gids = [await _running(container, clock) for _ in range(6)]
    batches = _batches(container)
    commits: list[object] = []
    count = commits.append  # one bound method, so the same listener is removed
    event.listen(container.engine.sync_engine, "commit", count)
    try:
        await asyncio.gather(*(batches.apply(g, _progress(g, 0.5), token=f"token-{g}") for g in gids))
    finally:
        event.remove(container.engine.sync_engine, "commit", count)
    # One transaction each would be 6; the first may go alone while the others gather behind it.
    assert 1 <= len(commits) <= 2, commits
    assert [(await _progress_of(container, g))[0] for g in gids] == [0.5] * 6


async def test_a_wrong_token_in_a_batch_is_refused_alone_and_changes_nothing(
    container: Container, clock: FakeClock
) -> None:
    good, victim = await _running(container, clock), await _running(container, clock)
    batches = _batches(container)
    results = await asyncio.gather(
        batches.apply(good, _progress(good, 0.5), token=f"token-{good}"),
        batches.apply(victim, _progress(victim, 0.8), token=f"token-{good}"),
        batches.apply(new_id(), _progress(good, 0.8), token=f"token-{good}"),  # no such generation
        return_exceptions=True,
    )
    assert not isinstance(results[0], BaseException) and results[0].progress == 0.5
    assert [type(r) for r in results[1:]] == [Forbidden, Forbidden]
    assert await _progress_of(container, good) == (0.5, 1)
    assert await _progress_of(container, victim) == (0.0, 0)
    assert await _shown(container, clock) == {good: 0.5}


async def test_a_foreign_run_in_a_batch_is_ignored_and_the_rest_applied(container: Container, clock: FakeClock) -> None:
    mine, other = await _running(container, clock), await _running(container, clock)
    batches = _batches(container)
    await asyncio.gather(
        batches.apply(mine, _progress(mine, 0.9, run_id="someone-elses-run"), token=f"token-{mine}"),
        batches.apply(other, _progress(other, 0.2), token=f"token-{other}"),
    )
    assert await _progress_of(container, mine) == (0.0, 0)
    assert await _progress_of(container, other) == (0.2, 1)
    assert await _shown(container, clock) == {other: 0.2}


@pytest.mark.parametrize("sent_before", [True, False])
async def test_progress_after_a_sent_edit_waits_for_the_throttle_in_a_batch(
    container: Container, clock: FakeClock, sent_before: bool
) -> None:
    gid = await _running(container, clock)
    batches = _batches(container)
    await batches.apply(gid, _progress(gid, 0.2), token=f"token-{gid}")
    if sent_before:
        async with container.uow() as uow:
            row = await uow.deliveries.by_key(dedupe_key(gid, DeliveryKind.PROGRESS), for_update=True)
            assert row is not None
            row.succeeded(clock.now())
            await uow.commit()
    await asyncio.gather(*(batches.apply(gid, _progress(gid, p), token=f"token-{gid}") for p in (0.4, 0.6)))
    async with container.uow() as uow:
        row = await uow.deliveries.by_key(dedupe_key(gid, DeliveryKind.PROGRESS))
    assert row is not None and row.status is DeliveryStatus.PENDING
    # A progress edit already sent holds the next one back by the throttle; one never sent goes at once.
    assert (row.next_attempt_at > clock.now()) is sent_before
    assert await _shown(container, clock) == {gid: 0.6}  # the edit shows the latest progress


async def test_a_flood_of_progress_on_a_run_whose_edit_is_due_leaves_the_row_alone_and_the_edit_shows_the_last(
    container: Container, clock: FakeClock
) -> None:
    gid = await _running(container, clock)
    batches = _batches(container)
    await batches.apply(gid, _progress(gid, 0.1), token=f"token-{gid}")
    async with container.uow() as uow:
        queued = await uow.deliveries.by_key(dedupe_key(gid, DeliveryKind.PROGRESS))
    assert queued is not None and queued.status is DeliveryStatus.PENDING
    clock.advance(seconds=1)
    for step in range(2, 10):
        await batches.apply(gid, _progress(gid, step / 10), token=f"token-{gid}")
    async with container.uow() as uow:
        row = await uow.deliveries.by_key(dedupe_key(gid, DeliveryKind.PROGRESS))
    # The edit was already due: the events did not rewrite its row (one write per edit, not per event).
    assert row is not None and row.updated_at == queued.updated_at and row.payload == queued.payload
    assert await _progress_of(container, gid) == (0.9, 1)
    assert await _shown(container, clock) == {gid: 0.9}


async def test_a_webhook_that_repeats_what_is_known_writes_nothing(container: Container, clock: FakeClock) -> None:
    gid = await _running(container, clock)
    batches = _batches(container)
    await batches.apply(gid, _progress(gid, 0.5), token=f"token-{gid}")
    async with container.uow() as uow:
        before = await uow.generations.get(gid)
    assert before is not None and before.progress == 0.5
    clock.advance(seconds=30)
    repeated = await batches.apply(gid, _progress(gid, 0.5), token=f"token-{gid}")
    assert repeated.progress == 0.5
    async with container.uow() as uow:
        after = await uow.generations.get(gid)
    assert after is not None
    assert (after.updated_at, after.last_update_at, after.next_poll_at) == (
        before.updated_at,
        before.last_update_at,
        before.next_poll_at,
    )
    # A wrong token is still refused, news or not; a new live status at the same progress is news.
    with pytest.raises(Forbidden):
        await batches.apply(gid, _progress(gid, 0.5), token="token-of-someone-else")
    news = RunUpdate(run_id=f"run-{gid}", status=RunStatus.RUNNING, progress=0.5, live_status="Decoding")
    await batches.apply(gid, news, token=f"token-{gid}")
    async with container.uow() as uow:
        later = await uow.generations.get(gid)
    assert later is not None and later.updated_at == clock.now() and later.last_update_at == clock.now()
