"""The LoRA library on a real database (SQLite and PostgreSQL): storage, imports, usage counts, the cache."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.errors import Conflict, InvalidInput, LoraNotFound
from noema.domain.linking import CodePurpose
from noema.domain.loras import Cognate, Family, Lora, Visibility, parse_lora_file
from noema.services import accounts, linking
from noema.services.loras import LoraLibrary, SaveOutcome
from tests.fakes.clock import FakeClock


def _lora(slug: str = "cat", **changes: Any) -> Lora:
    base = Lora(
        slug=slug,
        display_name=slug.title(),
        triggers=(slug, f"{slug} ears"),
        cognates=(Cognate("kitty", "cat"),),
        default_weight=0.8,
        family=Family.SDXL,
        owner_id=None,
        visibility=Visibility.PUBLIC,
    )
    return dataclasses.replace(base, **changes)


async def _account(c: Container, pid: str, platform: Platform = Platform.TELEGRAM) -> str:
    return (await accounts.find_or_create(c.uow, c.clock, platform=platform, platform_id=pid)).account.id


async def test_a_lora_survives_the_round_trip_and_is_found_in_any_case(container: Container) -> None:
    owner, friend = await _account(container, "1"), await _account(container, "2")
    lora = _lora("PixelArt", owner_id=owner, visibility=Visibility.ALLOWED, allowed_accounts=frozenset({friend}))
    saved = await container.loras.save(lora)
    assert saved.outcome is SaveOutcome.ADDED and saved.record.lora == lora
    found = await container.loras.get("pixelart")
    assert found.lora == lora and found.created_at == container.clock.now()
    assert await container.loras.loras() == [lora]
    with pytest.raises(LoraNotFound):
        await container.loras.get("nope")


async def test_a_slug_is_unique_whatever_its_case(container: Container) -> None:
    await container.loras.save(_lora("cat"))
    async with container.uow() as uow:
        with pytest.raises(Conflict):
            await uow.loras.add(_lora("CAT"), now=container.clock.now())
    assert [lora.slug for lora in await container.loras.loras()] == ["cat"]


async def test_saving_again_updates_the_definition_but_keeps_usage_and_creation(
    container: Container, clock: FakeClock
) -> None:
    await container.loras.save(_lora("cat"))
    async with container.uow() as uow:
        await uow.loras.count_usage(["cat"])
        await uow.commit()
    created = clock.now()
    clock.advance(minutes=5)
    same = await container.loras.save(_lora("cat"))
    assert same.outcome is SaveOutcome.UNCHANGED and same.record.updated_at == created
    changed = await container.loras.save(_lora("cat", default_weight=0.5, usage_count=0))
    assert changed.outcome is SaveOutcome.UPDATED
    assert changed.record.lora.default_weight == 0.5 and changed.record.lora.usage_count == 1
    assert (changed.record.created_at, changed.record.updated_at) == (created, clock.now())


async def test_the_list_pages_through_every_lora_once_in_slug_order(container: Container) -> None:
    slugs = [f"lora-{i:02d}" for i in range(7)]
    await container.loras.import_loras([_lora(s) for s in reversed(slugs)])
    await container.loras.disable("lora-03")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await container.loras.page(limit=3, cursor=cursor)
        seen += [r.lora.slug for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == slugs
    assert [r.lora.slug for r in (await container.loras.page(limit=10, cursor=None, enabled=False)).items] == [
        "lora-03"
    ]
    with pytest.raises(InvalidInput, match="cursor"):
        await container.loras.page(limit=3, cursor="%%%")


async def test_importing_the_same_file_twice_changes_nothing_and_a_changed_entry_updates(
    container: Container, clock: FakeClock
) -> None:
    entries: list[dict[str, Any]] = [
        {"slug": "cat", "family": "SDXL", "triggers": ["cat"], "usageCount": 7},
        {"slug": "dog", "family": "sd15", "triggers": ["dog"], "_id": "from-elsewhere"},
    ]
    first = await container.loras.import_loras(parse_lora_file({"loras": entries}))
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    before = {r.lora.slug: r for r in (await container.loras.page(limit=10, cursor=None)).items}
    clock.advance(minutes=1)
    again = await container.loras.import_loras(parse_lora_file({"loras": entries}))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert {r.lora.slug: r for r in (await container.loras.page(limit=10, cursor=None)).items} == before
    entries[1] = {**entries[1], "triggers": ["dog", "puppy"]}
    entries[0] = {**entries[0], "usageCount": 0}  # a file's count never overwrites the real one
    changed = await container.loras.import_loras(parse_lora_file(entries))
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 1)
    assert (await container.loras.get("dog")).lora.triggers == ("dog", "puppy")
    assert (await container.loras.get("cat")).lora.usage_count == 7


async def test_an_import_naming_an_unknown_account_changes_nothing(container: Container) -> None:
    owner = await _account(container, "1")
    entries = [
        {"slug": "mine", "family": "SDXL", "ownerId": owner, "visibility": "private"},
        {"slug": "ghost", "family": "SDXL", "ownerId": "7b0e5a4c-0000-4000-8000-000000000000", "visibility": "private"},
    ]
    with pytest.raises(InvalidInput, match="LoRA entry 2") as raised:
        await container.loras.import_loras(parse_lora_file(entries))
    assert raised.value.details == {"entry": 1, "field": "ownerId"}
    with pytest.raises(InvalidInput, match="allowedAccounts"):
        await container.loras.save(_lora("x", owner_id=owner, allowed_accounts=frozenset({"nobody"})))
    assert await container.loras.loras() == []


async def test_a_large_import_reports_progress_in_steps(container: Container) -> None:
    steps: list[int] = []
    summary = await container.loras.import_loras([_lora(f"l{i}") for i in range(450)], on_progress=steps.append)
    assert summary.added == 450 and steps == [200, 200, 50]
    assert len(await container.loras.loras()) == 450


async def test_concurrent_usage_counts_are_never_lost(container: Container) -> None:
    await container.loras.import_loras([_lora("cat"), _lora("dog")])

    async def one_success() -> None:
        async with container.uow() as uow:
            await uow.loras.count_usage(["dog", "cat"])
            await asyncio.sleep(0.01)  # hold the transaction open while the others try
            await uow.commit()

    await asyncio.gather(*(one_success() for _ in range(20)))
    assert [
        lora.usage_count for lora in await LoraLibrary(uow_factory=container.uow, clock=container.clock).loras()
    ] == [
        20,
        20,
    ]


async def test_disabling_switches_a_lora_off_once(container: Container, clock: FakeClock) -> None:
    await container.loras.save(_lora("cat"))
    clock.advance(minutes=1)
    off = await container.loras.disable("CAT")
    assert not off.lora.enabled and off.updated_at == clock.now()
    clock.advance(minutes=1)
    assert (await container.loras.disable("cat")).updated_at == off.updated_at
    with pytest.raises(LoraNotFound):
        await container.loras.disable("nope")


async def test_the_registry_is_cached_until_the_ttl_passes(container: Container, clock: FakeClock) -> None:
    mine = LoraLibrary(uow_factory=container.uow, clock=clock, ttl_seconds=60)
    other_replica = LoraLibrary(uow_factory=container.uow, clock=clock, ttl_seconds=60)
    assert await mine.loras() == []
    await other_replica.save(_lora("cat"))
    assert [lora.slug for lora in await other_replica.loras()] == ["cat"]  # its own write: at once
    clock.advance(seconds=59)
    assert await mine.loras() == []  # someone else's write: still the cached registry
    clock.advance(seconds=1)
    assert [lora.slug for lora in await mine.loras()] == ["cat"]


async def test_linking_accounts_hands_private_loras_to_the_survivor(container: Container, clock: FakeClock) -> None:
    chat, friend = await _account(container, "1"), await _account(container, "3")
    web = await _account(container, "2", Platform.WEB)
    await container.loras.save(_lora("mine", owner_id=web, visibility=Visibility.PRIVATE))
    shared = _lora("shared", owner_id=friend, visibility=Visibility.ALLOWED, allowed_accounts=frozenset({web, friend}))
    await container.loras.save(shared)
    code = await linking.issue(container.uow(), clock, chat, CodePurpose.LINK, secrets=container.secrets)
    await linking.redeem_link(container.uow(), clock, code.code, account_id=web)
    assert (await container.loras.get("mine")).lora.owner_id == chat
    assert (await container.loras.get("shared")).lora.allowed_accounts == frozenset({chat, friend})
