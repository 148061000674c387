"""Two real ComfyUI 0.3.64 servers (the peer, twice; marker ``comfyui``) behind one Noema, on SQLite and PostgreSQL.

Runs spread over both, each charged at its own server's GPU rate; one server killed mid-run: the
run it had started fails ("the GPU server restarted", nothing charged), the one waiting in its
queue is sent again once, new runs go to the other; restarted, it gets work again.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.services import economy
from tests.conftest import funded_key, running_app, wait_terminal
from tests.e2e.test_comfyui_backend import balance, picture_uri, start, until
from tests.e2e.test_comfyui_pool import charged_at_their_servers_rates, pool, server_of
from tests.fakes.comfyui_peer import Server, kill, launch

pytestmark = pytest.mark.comfyui

#: A job of some seconds on the real peer; its colour is an input so no two runs hit ComfyUI's cache.
LONG = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1, "color": 1}},
    "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 9, "sigma": 4.0}},
    "3": {"class_type": "ImageSharpen", "inputs": {"image": ["2", 0], "sharpen_radius": 9, "sigma": 4.0, "alpha": 2.0}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "long"}},
}
LONG_TOML = """description = "Some seconds of work"
output = "image"
expected_seconds = 5
max_seconds = 300
[inputs.color]
node = "1"
field = "color"
type = "integer"
default = 1
min = 0
max = 16777215
[inputs.batch]
node = "1"
field = "batch_size"
type = "integer"
default = 1
min = 1
max = 64
"""
LONG_SECONDS = 3.0  #: how long the long job should run on this machine as it is loaded now


def calibrated_batch(url: str) -> int:
    """The batch size that makes the long job run about ``LONG_SECONDS`` on the server (measured once, directly)."""
    prompt = json.loads(json.dumps(LONG))
    prompt["1"]["inputs"].update(batch_size=2, color=random.randrange(1, 0xFFFFFF))
    with httpx.Client(base_url=url, timeout=120) as http:
        sent = http.post("/prompt", json={"prompt": prompt}).json()["prompt_id"]
        deadline = time.monotonic() + 120
        while sent not in (found := http.get(f"/history/{sent}").json()):
            assert time.monotonic() < deadline, "the calibration job did not finish"
            time.sleep(0.05)
    messages = dict(found[sent]["status"]["messages"])
    ms: int = max(1, messages["execution_success"]["timestamp"] - messages["execution_start"]["timestamp"])
    return max(1, min(64, round(2 * LONG_SECONDS * 1000 / ms)))


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Two real peers, each in its own folder (the list is updated when a test restarts one)."""
    servers = [launch(tmp_path_factory.mktemp(f"peer-{n}")) for n in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            kill(server)


def queue_of(url: str) -> tuple[list[str], list[str]]:
    """(running, pending) prompt ids on a server."""
    with httpx.Client(base_url=url, timeout=30) as http:
        queue = http.get("/queue").json()
    return [i[1] for i in queue["queue_running"]], [i[1] for i in queue["queue_pending"]]


async def prompt_id(app: FastAPI, gid: str) -> str | None:
    c: Container = app.state.container
    assert c.comfyui is not None
    async with c.uow() as tx:
        generation = await tx.generations.get(gid)
    assert generation is not None and generation.run_id is not None
    return c.comfyui.scheduler.runs[generation.run_id].prompt_id


async def blur_runs(client: httpx.AsyncClient, auth: dict[str, str], n: int) -> list[str]:
    gids = [await start(client, auth, "blur", {"image": picture_uri(), "radius": 3}) for _ in range(n)]
    ended = await asyncio.gather(*(wait_terminal(client, gid, auth, seconds=300) for gid in gids))
    assert all(body["status"] == "succeeded" for body in ended), ended
    return gids


async def test_runs_spread_over_two_real_servers_and_one_killed_mid_run_loses_only_what_it_had_started(
    db_url: str, tmp_path: Path, peers: list[Server]
) -> None:
    settings = pool(tmp_path, [p.url for p in peers], comfyui_slots=2, max_concurrent_runs=30, max_runs_per_minute=100)
    folder = Path(str(settings["comfyui_workflows_dir"]))
    (folder / "long.json").write_text(json.dumps(LONG))
    (folder / "long.toml").write_text(LONG_TOML)
    async with running_app(db_url, tmp_path, **settings) as (app, client):
        c: Container = app.state.container
        assert c.comfyui is not None
        aid, auth = await funded_key(app, "10")
        every = await blur_runs(client, auth, 20)
        spread = await charged_at_their_servers_rates(app, client, auth, every)
        assert min(spread.values()) >= 4, spread  # both servers took a fair share

        # On each server a long run, and a short one waiting in its queue behind it.
        batch = calibrated_batch(peers[0].url)
        colors = random.sample(range(1, 0xFFFFFF), 4)
        longs = [await start(client, auth, "long", {"color": colors[n], "batch": batch}) for n in range(2)]
        longs += [await start(client, auth, "long", {"color": colors[n]}) for n in range(2, 4)]
        victim_url = (await server_of(app, longs[0]))[0]
        mine = [gid for gid in longs if (await server_of(app, gid))[0] == victim_url]
        assert len(mine) == 2, mine

        async def one_running_one_waiting() -> bool:
            running, pending = queue_of(victim_url)
            prompts = [await prompt_id(app, gid) for gid in mine]
            return bool(running) and all(p in running + pending for p in prompts)

        await until(one_running_one_waiting, 120)

        async def started_in_noema() -> bool:
            statuses = [(await client.get(f"/api/v1/generations/{g}", headers=auth)).json()["status"] for g in mine]
            return "running" in statuses

        await until(started_in_noema, 60)
        running, _ = queue_of(victim_url)
        prompts = {gid: await prompt_id(app, gid) for gid in mine}
        started, waiting = sorted(mine, key=lambda gid: prompts[gid] not in running)
        lost_prompt = prompts[waiting]
        index = next(i for i, p in enumerate(peers) if p.url == victim_url)
        kill(peers[index], signal.SIGKILL)
        victim = next(s for s in c.comfyui.servers if s.url == victim_url)

        async def seen_down() -> bool:
            return not victim.up

        await until(seen_down, 30)
        meanwhile = await blur_runs(client, auth, 2)
        for gid in meanwhile:  # new runs go to the other server
            assert (await server_of(app, gid))[0] != victim_url

        port = urlsplit(victim_url).port
        log = peers[index].log
        assert log is not None
        peers[index] = launch(log.parent, port)  # the same address, its queue and history gone
        lost = await wait_terminal(client, started, auth, seconds=120)
        assert lost["status"] == "failed" and "restarted" in lost["failureReason"], lost
        assert lost["costUsd"] == "0.000000000"
        again = await wait_terminal(client, waiting, auth, seconds=300)
        assert again["status"] == "succeeded", again
        assert await prompt_id(app, waiting) != lost_prompt  # sent again under a new prompt
        for gid in longs:
            await wait_terminal(client, gid, auth, seconds=300)

        later = await blur_runs(client, auth, 4)
        assert victim_url in [(await server_of(app, gid))[0] for gid in later]  # it gets work again
        await charged_at_their_servers_rates(app, client, auth, later)
        every += longs + meanwhile + later
        costs = [(await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()["costUsd"] for gid in every]
        total = sum(int(cost.replace(".", "")) for cost in costs)
        assert await balance(app, aid) == (10_000_000_000 - total, 0)
        assert await economy.verify(c.uow()) == (1, [])
