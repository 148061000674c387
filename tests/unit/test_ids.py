"""Ids come from an injected IdFactory: time-ordered UUIDs in a running Noema, a fixed sequence in tests."""

from __future__ import annotations

import uuid

from noema.adapters.ids import TimeOrderedIds
from noema.domain.accounts import Platform
from noema.services import accounts
from tests.fakes.clock import FakeClock
from tests.fakes.ids import SequentialIds
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory


def test_ids_are_uuids_that_sort_in_the_order_they_were_made() -> None:
    ids = TimeOrderedIds()
    made = [ids.new() for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == 5000
    assert all(uuid.UUID(i).version == 7 for i in made[:10])


def test_the_test_sequence_is_the_same_every_run_and_sorts_in_order() -> None:
    first, second = SequentialIds(), SequentialIds()
    made = [first.new() for _ in range(300)]
    assert made == [second.new() for _ in range(300)] == sorted(made)
    assert made[0] == "00000000-0000-7000-8000-000000000001" and uuid.UUID(made[0]).version == 7


async def test_the_rows_a_use_case_adds_take_their_ids_from_the_unit_of_works_factory() -> None:
    clock = FakeClock()
    uows = MemoryUnitOfWorkFactory(clock, ids=SequentialIds(start=41))
    found = await accounts.find_or_create(uows, clock, platform=Platform.TELEGRAM, platform_id="7")
    assert found.account.id == "00000000-0000-7000-8000-000000000029"  # the 41st id
    assert [i.id for i in found.identities] == ["00000000-0000-7000-8000-00000000002a"]
