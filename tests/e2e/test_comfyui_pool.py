"""A pool of two ComfyUI servers of different GPUs behind one Noema (the fake), on SQLite and PostgreSQL.

A tool is held at the dearest server able to run it; each run is charged at the GPU rate of the
server that ran it, from that server's own execution times.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.domain.money import format_usd
from noema.domain.pricing import charge_nanos, parse_rates
from noema.services import economy
from tests.conftest import funded_key, running_app, wait_terminal
from tests.e2e.test_comfyui_backend import balance, picture_uri, start
from tests.fakes.comfyui import FakeComfyUI

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"
RATES = parse_rates({})
GPUS = ("A10G", "L40S")


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[list[FakeComfyUI]]:
    servers = [FakeComfyUI(tmp_path / f"fake-comfyui-{gpu}", node_seconds=0.1) for gpu in GPUS]
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def pool(tmp_path: Path, urls: list[str], **more: object) -> dict[str, object]:
    """Settings for Noema over the given servers (A10G, then L40S) with the example blur."""
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    for name in ("blur.json", "blur.toml"):
        shutil.copy(EXAMPLES / name, folder / name)
    servers = ",".join(f"{url}={gpu}" for url, gpu in zip(urls, GPUS, strict=True))
    return {
        "backend": "comfyui",
        "comfyui_servers": servers,
        "comfyui_workflows_dir": str(folder),
        "media_dir": str(tmp_path / "media"),
        **more,
    }


async def server_of(app: FastAPI, gid: str) -> tuple[str, str, str]:
    """(server URL, its GPU, the prompt id) of the server a generation was sent to."""
    c: Container = app.state.container
    assert c.comfyui is not None
    async with c.uow() as tx:
        generation = await tx.generations.get(gid)
    assert generation is not None and generation.run_id is not None
    run = c.comfyui.scheduler.runs[generation.run_id]
    assert run.server is not None and run.server.gpu is not None
    return run.server.url, run.server.gpu, run.prompt_id or ""  # no prompt id yet while it is being sent


def gpu_ms(url: str, prompt_id: str) -> int:
    """The server's own execution_start → execution_success of a prompt, in milliseconds."""
    with httpx.Client(base_url=url, timeout=30) as http:
        entry = http.get(f"/history/{prompt_id}").json()[prompt_id]
    messages = dict(entry["status"]["messages"])
    return int(messages["execution_success"]["timestamp"] - messages["execution_start"]["timestamp"])


async def charged_at_their_servers_rates(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], gids: list[str]
) -> dict[str, int]:
    """Assert each run was charged its server's GPU time at its server's rate; runs per GPU."""
    per_gpu: dict[str, int] = dict.fromkeys(GPUS, 0)
    for gid in gids:
        body: dict[str, Any] = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()
        assert body["status"] == "succeeded", body
        url, gpu, prompt_id = await server_of(app, gid)
        cost = charge_nanos(RATES[gpu], gpu_ms(url, prompt_id))
        assert body["costUsd"] == format_usd(cost), (gpu, body)
        assert body["usdPerSecond"] == format_usd(RATES[gpu])
        per_gpu[gpu] += 1
    return per_gpu


async def test_each_run_is_charged_at_the_rate_of_the_server_that_ran_it_though_held_at_the_dearest(
    db_url: str, tmp_path: Path, fakes: list[FakeComfyUI]
) -> None:
    settings = pool(tmp_path, [f.url for f in fakes], comfyui_slots=1, max_concurrent_runs=10)
    async with running_app(db_url, tmp_path, **settings) as (app, client):
        aid, auth = await funded_key(app, "1")
        tools = (await client.get("/api/v1/tools", headers=auth)).json()
        listed = tools["items"] if isinstance(tools, dict) else tools
        blur = next(t for t in listed if t["id"] == "blur")
        assert blur["usdPerSecond"] == format_usd(RATES["L40S"])  # priced (and held) at the dearest
        gids = [await start(client, auth, "blur", {"image": picture_uri(), "radius": 3}) for _ in range(6)]
        bodies = await asyncio.gather(*(wait_terminal(client, gid, auth, seconds=120) for gid in gids))
        per_gpu = await charged_at_their_servers_rates(app, client, auth, gids)
        assert per_gpu["A10G"] > 0 and per_gpu["L40S"] > 0, per_gpu  # spread over both
        spent = sum(int(b["costUsd"].replace(".", "")) for b in bodies)
        assert await balance(app, aid) == (1_000_000_000 - spent, 0)
        c: Container = app.state.container
        assert await economy.verify(c.uow()) == (1, [])
