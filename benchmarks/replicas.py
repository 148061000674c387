"""Webhook ingest and request overhead across real processes: one or two ``noema serve`` and a ``noema worker``.

``python -m benchmarks --replicas 2 [--quick]`` (PostgreSQL only). Issue 15 goal 7: the figures of
``webhooks`` and ``request_overhead`` must hold with two serve replicas and a worker on one database.
The same measurements run first with one replica, then with two, side by side, each against its
baseline in the same run (the machine is shared):

* **request overhead:** one ``POST /api/v1/generations`` at a time, the replicas taking turns, timed
  from the send to the moment the backend's ``queue`` call reaches it. The backend is a small
  ComfyDeploy front in this process: it answers ``queue`` at once (recording when it arrived and the
  webhook URL) and passes every catalog call on to a ``noema sandbox``. The baseline is a ``GET
  /healthz`` round trip to the same replica, interleaved request by request.
* **webhook ingest:** ``run.updated`` progress events for runs made through the API, sent to the
  replicas in turn with a fixed number in flight, against ``GET /healthz`` sent the same way; the
  figure is the ratio of the rates, and afterwards every run must show the last progress sent.

These runs belong to the API (no chat), so their progress writes no outbox row: compare the single
and the two-replica figures here with each other, not with the in-process benchmark's chat runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.fakes.processes import (
    SANDBOX_KEY,
    NoemaProcess,
    free_port,
    noema_env,
    run_noema,
    start_sandbox,
    start_serve,
)

from benchmarks.harness import fresh_database, percentile, table
from benchmarks.load import _make_keys, log_problems
from benchmarks.webhooks import JSON_HEADERS, EventSource, Target

HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class Plan:
    """Requests timed (and warm-up), webhook events (and warm-up), events in flight, runs fed."""

    requests: int
    warmup_requests: int
    events: int
    warmup_events: int
    in_flight: int
    runs: int


FULL = Plan(requests=400, warmup_requests=20, events=2000, warmup_events=128, in_flight=8, runs=32)
QUICK = Plan(requests=100, warmup_requests=10, events=400, warmup_events=48, in_flight=8, runs=16)


# --- the backend front ----------------------------------------------------------------------------


@dataclass
class Queued:
    """One ``queue`` call: when it arrived (perf_counter), and what its webhook URL says."""

    at: float
    run_id: str
    generation_id: str
    token: str


class BackendFront:
    """A ComfyDeploy front: ``queue`` answered at once and recorded, the catalog passed on to a sandbox."""

    def __init__(self, sandbox_url: str) -> None:
        self.sandbox_url = sandbox_url
        self.queued: dict[str, Queued] = {}  #: by generation id
        self._client = httpx.AsyncClient(base_url=sandbox_url, timeout=30)
        self.app = Starlette(
            routes=[
                Route("/api/run/deployment/queue", self._queue, methods=["POST"]),
                Route("/api/run/{run_id}", self._run, methods=["GET"]),
                Route("/{path:path}", self._pass_on, methods=["GET", "POST"]),
            ]
        )

    async def _queue(self, request: Request) -> Response:
        at = time.perf_counter()
        body = json.loads(await request.body())
        query = parse_qs(urlsplit(str(body.get("webhook") or "")).query)
        run_id = str(uuid.uuid4())
        gid = query["generation_id"][0]
        self.queued[gid] = Queued(at, run_id, gid, query["token"][0])
        return JSONResponse({"run_id": run_id})

    async def _run(self, request: Request) -> Response:
        """A run confirmed as it was last told to end (the benchmark ends runs with a success webhook)."""
        run_id = request.path_params["run_id"]
        return JSONResponse({"run_id": run_id, "status": "success", "progress": 1, "outputs": []})

    async def _pass_on(self, request: Request) -> Response:
        upstream = await self._client.request(
            request.method,
            request.url.path,
            params=dict(request.query_params),
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")},
        )
        return Response(upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type"))

    @contextlib.asynccontextmanager
    async def serving(self, port: int) -> AsyncIterator[None]:
        """Listen on ``port`` (127.0.0.1) in this process."""
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
            yield
        finally:
            server.should_exit = True
            await task
            await self._client.aclose()


# --- the processes --------------------------------------------------------------------------------


@dataclass
class Cluster:
    """Serve replicas (and a client for each) and the worker, on one database."""

    serves: list[NoemaProcess]
    clients: list[httpx.AsyncClient]
    worker: NoemaProcess


def _env(db_url: str, port: int, workdir: Path, front_port: int) -> dict[str, str]:
    return noema_env(
        {
            "NOEMA_DATABASE_URL": db_url,
            "NOEMA_HOST": "127.0.0.1",
            "NOEMA_PORT": str(port),
            "NOEMA_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NOEMA_BACKEND": "comfydeploy",
            "NOEMA_COMFYDEPLOY_BASE_URL": f"http://127.0.0.1:{front_port}/api",
            "NOEMA_COMFYDEPLOY_API_KEY": SANDBOX_KEY,
            "NOEMA_COMFYDEPLOY_MAX_RPS": "1000",
            "NOEMA_SANDBOX_DATA_DIR": str(workdir / "unused-sandbox"),
            "NOEMA_MAX_CONCURRENT_RUNS": "100",
            "NOEMA_MAX_RUNS_PER_MINUTE": "10000",
            "NOEMA_LOG_FORMAT": "json",
            "NOEMA_LOG_LEVEL": "WARNING",
        }
    )


@contextlib.asynccontextmanager
async def cluster(db_url: str, workdir: Path, front_port: int, replicas: int) -> AsyncIterator[Cluster]:
    """``replicas`` × ``noema serve`` (workers off) and one ``noema worker``, each its own process."""
    started: list[NoemaProcess] = []
    clients: list[httpx.AsyncClient] = []
    try:
        worker_env = _env(db_url, free_port(), workdir, front_port)
        started.append(NoemaProcess("worker", ["worker"], env=worker_env, cwd=workdir, log_dir=workdir / "logs"))
        for i in range(replicas):
            port = free_port()
            env = {**_env(db_url, port, workdir, front_port), "NOEMA_WORKERS_ENABLED": "false"}
            started.append(await start_serve(env, cwd=workdir, name=f"serve-{i}-{port}", port=port, seconds=90))
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            clients.append(httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits))
        yield Cluster(started[1:], clients, started[0])
    finally:
        for client in clients:
            await client.aclose()
        for process in reversed(started):
            process.stop(timeout=30)


# --- measurements ---------------------------------------------------------------------------------


@dataclass
class Overhead:
    """Milliseconds from sending the request to the backend's queue call, and the baseline round trips."""

    to_call: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)


async def _generation(client: httpx.AsyncClient, front: BackendFront, key: dict[str, str], n: int) -> Queued:
    body = {"toolId": "txt2img", "inputs": {"input_text": f"a red fox, take {n}"}}
    started = time.perf_counter()
    response = await client.post("/api/v1/generations", json=body, headers=key)
    if response.status_code != 202 or response.json()["status"] != "submitted":
        raise RuntimeError(f"generation request: {response.status_code} {response.text[:300]}")
    queued = front.queued[response.json()["id"]]
    queued.at -= started  # from now on: seconds from the send to the queue call
    return queued


async def _finish(client: httpx.AsyncClient, queued: Queued) -> None:
    event = {"event_type": "run.updated", "status": "success", "progress": 1, "run_id": queued.run_id, "outputs": []}
    response = await client.post(
        f"/api/webhook/comfydeploy?generation_id={queued.generation_id}&token={queued.token}",
        content=json.dumps(event).encode(),
        headers=JSON_HEADERS,
    )
    if response.status_code != 200:
        raise RuntimeError(f"finishing webhook: {response.status_code} {response.text[:200]}")


async def _health(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await client.get(HEALTH_PATH)
    if response.status_code != 200:
        raise RuntimeError(f"{HEALTH_PATH}: {response.status_code}")
    return time.perf_counter() - started


async def overhead(c: Cluster, front: BackendFront, keys: list[dict[str, str]], plan: Plan) -> Overhead:
    """One request at a time, the replicas taking turns; each run ended (untimed) before the next."""
    result = Overhead()
    replicas = itertools.cycle(c.clients)
    for i in range(plan.warmup_requests + plan.requests):
        client = next(replicas)
        key = keys[i % len(keys)]
        if i % 2 == 0:  # alternate which goes first
            baseline = await _health(client)
            queued = await _generation(client, front, key, i)
        else:
            queued = await _generation(client, front, key, i)
            baseline = await _health(client)
        await _finish(client, queued)
        if i >= plan.warmup_requests:
            result.to_call.append(queued.at * 1000)
            result.baseline.append(baseline * 1000)
    return result


@dataclass
class Ingest:
    """Seconds for the same number of webhook events and baseline requests."""

    events: int
    webhook_seconds: float
    baseline_seconds: float

    @property
    def ratio(self) -> float:
        """Webhook throughput as a fraction of the baseline's."""
        return self.baseline_seconds / self.webhook_seconds


async def _drive(c: Cluster, batch: list[list[tuple[str, bytes]]], *, baseline: bool) -> float:
    """Each sender on its own replica (in turn), one request at a time; seconds for all. Non-200 is an error."""
    failures: list[str] = []

    async def sender(client: httpx.AsyncClient, requests: list[tuple[str, bytes]]) -> None:
        for url, body in requests:
            if baseline:
                response = await client.get(HEALTH_PATH)
            else:
                response = await client.post(url, content=body, headers=JSON_HEADERS)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(sender(c.clients[w % len(c.clients)], mine) for w, mine in enumerate(batch)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return elapsed


async def ingest(c: Cluster, front: BackendFront, keys: list[dict[str, str]], plan: Plan) -> Ingest:
    """Progress events for ``plan.runs`` runs made through the API; verified through the API afterwards."""
    made = [await _generation(c.clients[i % len(c.clients)], front, keys[i % len(keys)], i) for i in range(plan.runs)]
    targets = [Target(q.generation_id, q.token, q.run_id) for q in made]
    source = EventSource(targets, plan.in_flight, plan.warmup_events + plan.events)
    warm = source.batch(max(plan.warmup_events, plan.runs))
    await _drive(c, warm, baseline=True)
    await _drive(c, warm, baseline=False)
    hooks = base = 0.0
    rounds = 4
    for r in range(rounds):
        batch = source.batch(plan.events // rounds)
        if r % 2 == 0:
            base += await _drive(c, batch, baseline=True)
            hooks += await _drive(c, batch, baseline=False)
        else:
            hooks += await _drive(c, batch, baseline=False)
            base += await _drive(c, batch, baseline=True)
    owner = {q.generation_id: keys[i % len(keys)] for i, q in enumerate(made)}
    for gid, progress in source.last.items():
        body = (await c.clients[0].get(f"/api/v1/generations/{gid}", headers=owner[gid])).json()
        if body["status"] != "running" or abs(float(body["progress"]) - progress) > 1e-9:
            raise RuntimeError(
                f"generation {gid}: {body['status']} at {body['progress']}, expected running at {progress}"
            )
    return Ingest(rounds * (plan.events // rounds), hooks, base)


# --- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One topology's figures."""

    replicas: int
    overhead: Overhead
    ingest: Ingest


async def run(workdir: Path, *, replicas: int, quick: bool = False) -> list[Measured]:
    """One replica, then ``replicas``, each with a worker, on one fresh PostgreSQL database."""
    plan = QUICK if quick else FULL
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with fresh_database("postgres", workdir) as db_url:
        sandbox_port, front_port = free_port(), free_port()
        sandbox = await start_sandbox(workdir / "sandbox", cwd=workdir, port=sandbox_port, run_seconds=600)
        try:
            front = BackendFront(f"http://127.0.0.1:{sandbox_port}")
            async with front.serving(front_port):
                env = _env(db_url, free_port(), workdir, front_port)
                migrated = await asyncio.to_thread(run_noema, "migrate", env=env, cwd=workdir)
                if migrated.returncode != 0:
                    raise RuntimeError(f"noema migrate failed: {migrated.stderr[-2000:]}")
                keys = await _make_keys(env, 8)
                results = []
                for count in sorted({1, replicas}):
                    async with cluster(db_url, workdir / f"r{count}", front_port, count) as c:
                        measured = Measured(
                            count, await overhead(c, front, keys, plan), await ingest(c, front, keys, plan)
                        )
                        problems = sum(sum(log_problems(p).values()) for p in (*c.serves, c.worker))
                        if problems:
                            raise RuntimeError(f"{problems} unhandled errors in the processes' logs")
                    print(report([measured]), flush=True)
                    results.append(measured)
                return results
        finally:
            sandbox.stop()


def report(results: list[Measured]) -> str:
    """The figures, one row per topology."""
    rows = []
    for m in results:
        o, n = m.overhead, m.ingest
        rows.append(
            [
                f"{m.replicas} serve + worker",
                f"{percentile(o.to_call, 0.5):.2f}",
                f"{percentile(o.to_call, 0.99):.2f}",
                f"{percentile(o.baseline, 0.5):.2f}",
                f"{percentile(o.baseline, 0.99):.2f}",
                f"{n.events / n.webhook_seconds:,.0f}",
                f"{n.events / n.baseline_seconds:,.0f}",
                f"{n.ratio:.3f}",
            ]
        )
    headers = ["", "req->call p50", "p99", "healthz p50", "p99", "webhooks/s", "healthz/s", "ratio"]
    return "\n".join(
        [
            "Across processes on one PostgreSQL (milliseconds; request->backend call vs a /healthz round trip; "
            "progress webhooks vs /healthz at the same concurrency)",
            table(headers, rows),
        ]
    )
