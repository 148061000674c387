"""Self-hosted ComfyUI: what Noema adds to a run on the real ComfyUI 0.3.64 peer, and how busy it keeps two.

* Overhead: model-free runs one at a time, each its own colour (ComfyUI's cache never answers),
  driven directly against one peer (``POST /prompt``, then ``/history/{id}`` until it is there) and
  the same through Noema's public API to a result the user can fetch (the generation polled until it
  succeeded, then its output downloaded from Noema's media URL); both polled every ``POLL`` seconds.
  The figure is the ratio of the medians.
* Utilisation: two peers behind Noema and a backlog of heavier runs asked for at once; from each
  server's own ``execution_start``/``execution_success`` times, the share of the time from the first
  start to the last end during which both servers were running a prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.fakes.comfyui_peer import Server, kill, launch

from benchmarks.harness import BASE_URL, bench_settings, funded_account, table
from noema.bootstrap import Container, build_container
from noema.entrypoints.http.app import create_app

POLL = 0.02  #: seconds between two looks at a run, directly and through Noema alike
TOML = """description = "{what}"
output = "image"
expected_seconds = 1
max_seconds = 600
[inputs.color]
node = "1"
field = "color"
type = "integer"
default = 0
min = 0
max = 16777215
"""


def graph(side: int, batch: int, *, blur: bool) -> dict[str, Any]:
    """A model-free workflow: a picture of one colour, blurred (heavier) or inverted (light), saved."""
    work = (
        {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 9, "sigma": 4.0}}
        if blur
        else {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}
    )
    empty = {"width": side, "height": side, "batch_size": batch, "color": 0}
    return {
        "1": {"class_type": "EmptyImage", "inputs": empty},
        "2": work,
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bench"}},
    }


LIGHT = graph(256, 1, blur=False)
HEAVY = graph(1024, 2, blur=True)


@dataclass(frozen=True)
class Plan:
    """Runs each way for the overhead, and the backlog for the two servers."""

    runs: int
    backlog: int


FULL = Plan(runs=50, backlog=30)
QUICK = Plan(runs=10, backlog=8)


@dataclass
class Figures:
    direct: list[float]
    noema: list[float]
    both_busy: float
    window: float
    backlog: int
    per_server: list[int]


@contextlib.contextmanager
def peers(workdir: Path, count: int) -> Iterator[list[Server]]:
    """``count`` real ComfyUI peers, stopped after."""
    started: list[Server] = []
    try:
        for n in range(count):
            started.append(launch(workdir / f"peer-{n}"))
        yield started
    finally:
        for server in started:
            kill(server)


def colors(n: int) -> list[int]:
    return random.sample(range(1, 0xFFFFFF), n)


async def direct_run(http: httpx.AsyncClient, prompt: dict[str, Any], color: int) -> float:
    """Seconds from ``POST /prompt`` until the prompt is in ``/history``."""
    body = json.loads(json.dumps(prompt))
    body["1"]["inputs"]["color"] = color
    started = time.perf_counter()
    r = await http.post("/prompt", json={"prompt": body, "client_id": uuid.uuid4().hex})
    prompt_id = r.json()["prompt_id"]
    while prompt_id not in (await http.get(f"/history/{prompt_id}")).json():  # noqa: ASYNC110 - what is measured
        await asyncio.sleep(POLL)
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def noema(
    db_url: str, workdir: Path, urls: list[str], slots: int = 2
) -> AsyncIterator[tuple[Container, httpx.AsyncClient]]:
    """Noema over the given servers (all A10G), the light and heavy workflows in its folder, started."""
    folder = workdir / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    for name, prompt in (("light", LIGHT), ("heavy", HEAVY)):
        (folder / f"{name}.json").write_text(json.dumps(prompt))
        (folder / f"{name}.toml").write_text(TOML.format(what=name))
    settings = bench_settings(
        db_url,
        workdir,
        backend="comfyui",
        comfyui_servers=",".join(f"{url}=A10G" for url in urls),
        comfyui_workflows_dir=str(folder),
        comfyui_slots=slots,
        media_dir=str(workdir / "media"),
    )
    container = build_container(settings)
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=600) as client,
    ):
        yield container, client


async def noema_run(client: httpx.AsyncClient, auth: dict[str, str], tool: str, color: int) -> float:
    """Seconds from ``POST /api/v1/generations`` until its output has been downloaded from Noema."""
    started = time.perf_counter()
    gid = await ask(client, auth, tool, color)
    body = await finished(client, auth, gid)
    served = await client.get(body["outputs"][0]["url"])
    assert served.status_code == 200 and served.content, served.status_code
    return time.perf_counter() - started


async def ask(client: httpx.AsyncClient, auth: dict[str, str], tool: str, color: int) -> str:
    r = await client.post("/api/v1/generations", headers=auth, json={"toolId": tool, "inputs": {"color": color}})
    assert r.status_code == 202, r.text
    gid: str = r.json()["id"]
    return gid


async def finished(client: httpx.AsyncClient, auth: dict[str, str], gid: str) -> dict[str, Any]:
    while True:
        body: dict[str, Any] = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()
        if body["status"] == "succeeded":
            return body
        assert body["status"] not in {"failed", "cancelled", "timed_out"}, body
        await asyncio.sleep(POLL)


def busy_spans(url: str, prompt_ids: set[str]) -> list[tuple[float, float]]:
    """When the server ran each of the prompts: its own start and end, in seconds."""
    with httpx.Client(base_url=url, timeout=60) as http:
        history = http.get("/history").json()
    spans = []
    for prompt_id, entry in history.items():
        if prompt_id in prompt_ids:
            messages = dict(entry["status"]["messages"])
            start, end = messages["execution_start"]["timestamp"], messages["execution_success"]["timestamp"]
            spans.append((start / 1000, end / 1000))
    return spans


def overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Seconds during which some span of ``a`` and some span of ``b`` both cover (spans of one list never overlap)."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


async def utilisation(db_url: str, workdir: Path, urls: list[str], backlog: int) -> tuple[float, float, list[int]]:
    """(seconds both busy, seconds from first start to last end, runs per server) for a backlog on two servers."""
    async with noema(db_url, workdir, urls) as (container, client):
        _, auth = await funded_account(container, "100")
        gids = [await ask(client, auth, "heavy", color) for color in colors(backlog)]
        for gid in gids:
            await finished(client, auth, gid)
        assert container.comfyui is not None
        prompts = {run.prompt_id for run in container.comfyui.scheduler.runs.values() if run.prompt_id}
    spans = [busy_spans(url, prompts) for url in urls]
    every = [s for server in spans for s in server]
    window = max(e for _, e in every) - min(s for s, _ in every)
    return overlap(spans[0], spans[1]), window, [len(s) for s in spans]


async def run(db_url: str, workdir: Path, *, quick: bool) -> Figures:
    """Both measurements on fresh peers."""
    plan = QUICK if quick else FULL
    with peers(workdir, 2) as servers:
        urls = [s.url for s in servers]
        async with httpx.AsyncClient(base_url=urls[0], timeout=60) as http:
            await direct_run(http, LIGHT, 1)  # warm up: the first prompt loads ComfyUI's node code
            direct = [await direct_run(http, LIGHT, c) for c in colors(plan.runs)]
        async with noema(db_url, workdir / "one", urls[:1]) as (container, client):
            _, auth = await funded_account(container, "100")
            await noema_run(client, auth, "light", 2)
            through = [await noema_run(client, auth, "light", c) for c in colors(plan.runs)]
        both, window, per_server = await utilisation(db_url, workdir / "two", urls, plan.backlog)
    return Figures(direct, through, both, window, plan.backlog, per_server)


def report(f: Figures) -> str:
    """The figures as text."""
    med_direct, med_noema = statistics.median(f.direct), statistics.median(f.noema)
    rows = [
        ["direct: POST /prompt → /history", f"{len(f.direct)}", f"{med_direct * 1000:.0f}", "1.00"],
        [
            "Noema API → result downloaded",
            f"{len(f.noema)}",
            f"{med_noema * 1000:.0f}",
            f"{med_noema / med_direct:.2f}",
        ],
    ]
    lines = [
        "Self-hosted ComfyUI (the real 0.3.64 peer on this CPU), model-free runs one at a time:",
        table(["path", "runs", "p50 ms", "ratio"], rows),
        f"Two servers, slots 2, a backlog of {f.backlog} runs (per server {f.per_server}): both busy "
        f"{f.both_busy:.1f} s of {f.window:.1f} s = {f.both_busy / f.window:.0%}",
    ]
    return "\n".join(lines)
