"""The ComfyUI backend's kept line in the real databases: first come first served, and a run sent once."""

from __future__ import annotations

import asyncio

from noema.adapters.db.comfyui_line import SqlRunLine
from noema.adapters.db.engine import create_engine


async def test_the_kept_line_comes_back_in_the_order_runs_came_and_a_run_is_claimed_once(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        line = SqlRunLine(engine)
        for n in range(3):
            await line.add(f"r{n}", {"workflow": "blur", "values": {"radius": n}, "generation_id": f"g{n}"})
        assert [run_id for run_id, _ in await line.load()] == ["r0", "r1", "r2"]
        # Two processes that restored the same line both try to send r0: one of them does.
        claims = await asyncio.gather(
            line.claim("r0", server="http://a", prompt_id="p-a"), line.claim("r0", server="http://b", prompt_id="p-b")
        )
        assert sorted(claims) == [False, True]
        assert await line.claim("r0", server="http://a", prompt_id="p-new") is False  # taken under another prompt
        await line.release("r0", resubmitted=True)  # its server lost it: waiting again, may be claimed anew
        assert await line.claim("r0", server="http://a", prompt_id="p-new") is True
        record = dict(await line.load())["r0"]
        assert (record["server"], record["prompt_id"], record["resubmitted"]) == ("http://a", "p-new", True)
        await line.remove("r1")
        assert await line.claim("r1", server="http://a", prompt_id="p") is False  # ended: never sent
        assert [run_id for run_id, _ in await line.load()] == ["r0", "r2"]
    finally:
        await engine.dispose()
