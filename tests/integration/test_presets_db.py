"""Presets defined through the internal API on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from noema.bootstrap import Container


def _body(n: int) -> dict[str, object]:
    return {"tools": ["txt2img"], "defaults": {"steps": n}, "description": f"Preset {n}"}


async def test_concurrent_definitions_of_different_presets_keep_every_one(container: Container) -> None:
    book = container.chat.presets
    names = [f"p{n}" for n in range(8)]
    await asyncio.gather(*(book.define(name, _body(n)) for n, name in enumerate(names)))
    stored = await book.all()
    assert set(names) <= set(stored)
    assert [stored[name].defaults["steps"] for name in names] == list(range(8))


async def test_concurrent_definitions_after_the_first_keep_every_one(container: Container) -> None:
    book = container.chat.presets
    await book.define("first", _body(0))
    names = [f"q{n}" for n in range(8)]
    await asyncio.gather(*(book.define(name, _body(n)) for n, name in enumerate(names)))
    await asyncio.gather(book.remove("q0"), book.define("q8", _body(8)), book.remove("q1"))
    assert set(await book.all()) == {"first", *names[2:], "q8"}
