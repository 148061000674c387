"""Paging through an account's history while it keeps running: no run is shown twice, none is skipped."""

from __future__ import annotations

from datetime import timedelta

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.generation import Generation, GenerationStatus
from noema.ports import GenerationFilter
from noema.services import accounts, history
from tests.fakes.clock import FakeClock
from tests.fakes.generations import make_generation
from tests.fakes.ids import new_id


async def _add(c: Container, account_id: str, stamps: list[timedelta], clock: FakeClock) -> list[Generation]:
    made = [
        make_generation(
            GenerationStatus.SUCCEEDED,
            id=new_id(),
            account_id=account_id,
            requested_at=clock.now() + offset,
            updated_at=clock.now(),
        )
        for offset in stamps
    ]
    async with c.uow() as uow:
        for g in made:
            uow.generations.add(g)
        await uow.commit()
    return made


async def test_history_pages_never_repeat_or_skip_a_run_while_new_runs_arrive(
    container: Container, clock: FakeClock
) -> None:
    aid = (await accounts.find_or_create(container.uow, clock, platform=Platform.API, platform_id="pager")).account.id
    # Several runs share each moment, so the id alone orders them within it.
    before = await _add(container, aid, [timedelta(seconds=-(i // 3)) for i in range(17)], clock)
    expected = sorted(before, key=lambda g: (g.requested_at, g.id), reverse=True)
    seen: list[str] = []
    cursor: str | None = None
    for page_number in range(20):
        page = await history.search(container.uow(), GenerationFilter(account_id=aid), limit=4, cursor=cursor)
        seen += [g.id for g in page.items]
        # New runs arrive between pages: now, and at the very moment of the page's last run.
        await _add(container, aid, [timedelta(seconds=page_number + 1)], clock)
        if page.items:
            await _add(container, aid, [page.items[-1].requested_at - clock.now()], clock)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    added = {g.id for g in await _everything(container, aid)} - {g.id for g in before}
    assert len(added) > 0
    assert [i for i in seen if i not in added] == [g.id for g in expected]
    assert len(seen) == len(set(seen))


async def _everything(c: Container, account_id: str) -> list[Generation]:
    page = await history.search(c.uow(), GenerationFilter(account_id=account_id), limit=100, cursor=None)
    return page.items
