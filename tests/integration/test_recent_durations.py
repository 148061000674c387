"""A tool's expected run time comes from its recent runs, read at most once per tool per half minute."""

from __future__ import annotations

from datetime import timedelta

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.generation import GenerationStatus
from noema.domain.tools import PrimaryInput, Tool
from noema.services import accounts
from noema.services.durations import RecentDurations
from tests.fakes.clock import FakeClock
from tests.fakes.generations import make_generation
from tests.fakes.ids import new_id

TOOL = Tool(
    id="dep-1",
    command="t",
    display_name="t",
    description="",
    inputs=(),
    primary_input=PrimaryInput.TEXT,
    output_kind=None,
    deployment_id="dep-1",
    machine_id="m",
    gpu="A10G",
    rate_nanos_per_second=337_000,
    expected_seconds=30.0,
)


async def _runs_of(c: Container, clock: FakeClock, seconds: float, count: int) -> None:
    aid = (await accounts.find_or_create(c.uow, clock, platform=Platform.TELEGRAM, platform_id=new_id()[:8])).account.id
    async with c.uow() as uow:
        for _ in range(count):
            start = clock.now()
            uow.generations.add(
                make_generation(
                    GenerationStatus.SUCCEEDED,
                    id=new_id(),
                    account_id=aid,
                    tool_id=TOOL.id,
                    requested_at=start,
                    updated_at=start,
                    started_at=start,
                    finished_at=start + timedelta(seconds=seconds),
                    settled_at=start + timedelta(seconds=seconds),
                )
            )
        await uow.commit()


async def test_the_median_of_recent_runs_is_used_once_there_are_enough(container: Container, clock: FakeClock) -> None:
    fresh = RecentDurations(container.uow, ttl_seconds=0)
    await _runs_of(container, clock, 12.0, 4)
    assert await fresh.expected_seconds(TOOL) == 30.0  # four runs are too few: the tool's own figure
    await _runs_of(container, clock, 12.0, 1)
    assert await fresh.expected_seconds(TOOL) == 12.0


async def test_the_median_is_reused_within_its_time_and_read_again_after(
    container: Container, clock: FakeClock
) -> None:
    cached = RecentDurations(container.uow, ttl_seconds=3600)
    assert await cached.expected_seconds(TOOL) == 30.0
    await _runs_of(container, clock, 12.0, 5)
    assert await cached.expected_seconds(TOOL) == 30.0  # no read within the hour
    assert await RecentDurations(container.uow, ttl_seconds=0).expected_seconds(TOOL) == 12.0
