"""Stored presets and preset runs (PresetBook) on the in-memory unit of work.

tests/integration/test_presets_db.py proves concurrent definitions on both databases, tests/e2e/test_presets.py
the HTTP side; these pin each rule of the book itself.
"""

from __future__ import annotations

import asyncio

import pytest

from noema.domain.errors import Conflict, InvalidInput, ToolNotFound
from noema.domain.generation import GenerationStatus
from noema.domain.presets import preset_from_json
from noema.services.generations import Limits
from noema.services.presets import STORED_KEY, PresetBook
from tests.unit.service_world import World, world


def book(w: World, **from_file: dict[str, object]) -> PresetBook:
    """The world's preset book with these presets from the operator's file."""
    presets = {name: preset_from_json(name, body) for name, body in from_file.items()}
    return PresetBook(presets, catalog=w.catalog, uow_factory=w.uows, clock=w.clock)


async def test_a_stored_preset_is_kept_in_the_database_and_listed_beside_the_files() -> None:
    w = world()
    presets = book(w, house={"tools": ["txt2img"]})
    await presets.define("quick", {"tools": ["txt2img", "big"], "defaults": {"input_text": "a cat"}})
    assert set(await presets.all()) == {"house", "quick"}
    assert (await presets.get("/QUICK")).tools == ("txt2img", "big")
    assert w.uows.tables.kv[STORED_KEY]["quick"]["tools"] == ["txt2img", "big"]
    await presets.remove("quick")
    assert await presets.find("quick") is None
    with pytest.raises(ToolNotFound):
        await presets.remove("quick")


async def test_a_preset_may_not_take_a_file_presets_name_or_be_malformed_and_nothing_is_stored() -> None:
    w = world()
    presets = book(w, house={"tools": ["txt2img"]})
    with pytest.raises(Conflict, match="NOEMA_PRESETS_FILE"):
        await presets.define("house", {"tools": ["big"]})
    with pytest.raises(InvalidInput, match="unknown setting 'colour'"):
        await presets.define("odd", {"tools": ["big"], "colour": "red"})
    assert STORED_KEY not in w.uows.tables.kv


async def test_concurrent_definitions_and_removals_each_land() -> None:
    w = world()
    presets = book(w)
    await asyncio.gather(*(presets.define(f"p{n}", {"tools": ["txt2img"]}) for n in range(6)))
    await asyncio.gather(presets.remove("p0"), presets.define("p6", {"tools": ["big"]}), presets.remove("p1"))
    assert set(await presets.all()) == {"p2", "p3", "p4", "p5", "p6"}


async def test_a_preset_run_tries_its_tools_in_order_with_its_defaults_under_the_users_inputs() -> None:
    w = world()
    presets = book(w, house={"tools": ["txt2img", "big"], "defaults": {"input_text": "a default cat"}})
    aid = await w.account(usd=5)
    req = await presets.request("house", [], account_id=aid, inputs={})
    big = await w.catalog.find("big")
    assert (req.tool_ref, req.fallbacks, req.inputs) == (
        (await w.catalog.find("txt2img")).id,
        (big.id,),
        {"input_text": "a default cat"},
    )
    mine = await presets.request("house", [], account_id=aid, inputs={"input_text": "my fox"})
    assert mine.inputs == {"input_text": "my fox"}
    g = await w.service.request(mine)
    assert g.status is GenerationStatus.SUBMITTED and w.backend.runs[-1].inputs["input_text"] == "my fox"


async def test_a_least_busy_preset_starts_with_the_tool_with_fewest_live_runs() -> None:
    w = world(Limits(max_concurrent=10))
    presets = book(w, spread={"tools": ["txt2img", "big"], "selection": "least_busy"})
    aid = await w.account(usd=5)
    txt2img, big = await w.catalog.find("txt2img"), await w.catalog.find("big")
    assert (await presets.request("spread", [], account_id=aid, inputs={})).tool_ref == txt2img.id
    await w.service.request(w.ask(aid))
    assert (await presets.request("spread", [], account_id=aid, inputs={})).tool_ref == big.id


async def test_a_round_robin_preset_takes_turns() -> None:
    w = world()
    presets = book(w, turns={"tools": ["txt2img", "big"], "selection": "round_robin"})
    aid = await w.account(usd=1)
    firsts = [(await presets.request("turns", [], account_id=aid, inputs={})).tool_ref for _ in range(3)]
    ids = [(await w.catalog.find(c)).id for c in ("txt2img", "big")]
    assert firsts == [ids[0], ids[1], ids[0]]


async def test_a_machine_no_candidate_runs_on_is_refused() -> None:
    w = world()
    presets = book(w, house={"tools": ["txt2img", "big"]})
    aid = await w.account(usd=1)
    assert (await presets.request("house", [], account_id=aid, inputs={}, machine="h100")).tool_ref == (
        await w.catalog.find("big")
    ).id
    with pytest.raises(InvalidInput, match="runs on 'T4'"):
        await presets.request("house", [], account_id=aid, inputs={}, machine="T4")
