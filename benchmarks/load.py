"""Load: one ``noema serve`` replica on PostgreSQL with the embedded sandbox, driven over loopback HTTP.

``python -m benchmarks.load [--quick] [--phase hold|burst]``. Two phases, each on its own fresh database
and server process:

* **in flight:** sandbox runs of 600 s, asked for through the public API by many accounts as fast as the
  replica takes them, until the target number is in flight. At each step the driver pauses and reads
  the server's RSS and its CPU over a few idle seconds (no request open), and counts answers by kind.
* **burst:** short runs asked for at a fixed rate (open loop: a slow answer does not slow the sender)
  for a fixed time; afterwards every accepted run must end, be settled exactly once, and
  ``noema ledger verify`` must be clean.

The figures that matter: errors by kind (any 5xx or client timeout is a failure of the goal), RSS and
idle CPU per step, and the unhandled errors in the server's log. The baseline is the same server's
RSS and idle CPU with nothing in flight, measured first.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from tests.fakes.processes import (
    SANDBOX_KEY,
    NoemaProcess,
    free_port,
    noema_env,
    run_noema,
    start_sandbox,
    start_serve,
)

from benchmarks.harness import fresh_database, table
from noema.adapters.db.tables import LIVE_STATUSES_SQL
from noema.bootstrap import build_container
from noema.config import Settings
from noema.domain.accounts import Platform
from noema.domain.money import parse_usd
from noema.services import accounts, api_keys, economy

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Plan:
    """How far to load: runs in flight, the step between readings, accounts; burst rate and length."""

    in_flight: int
    step: int
    accounts: int
    burst_rate: int
    burst_seconds: int
    idle_seconds: float


FULL = Plan(in_flight=10_000, step=1_000, accounts=100, burst_rate=50, burst_seconds=60, idle_seconds=5.0)
QUICK = Plan(in_flight=1_000, step=500, accounts=10, burst_rate=20, burst_seconds=10, idle_seconds=3.0)


# --- the server -----------------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``noema serve`` and a client for it."""

    process: NoemaProcess
    client: httpx.AsyncClient
    env: dict[str, str]
    cwd: Path
    db_url: str
    keys: list[dict[str, str]]
    #: the sandbox in its own process (``--backend separate``), as a real GPU backend is; None when embedded
    backend: NoemaProcess | None = None


def _env(db_url: str, port: int, workdir: Path, run_seconds: float, backend_port: int | None) -> dict[str, str]:
    separate = (
        {}
        if backend_port is None
        else {
            "NOEMA_BACKEND": "comfydeploy",
            "NOEMA_COMFYDEPLOY_BASE_URL": f"http://127.0.0.1:{backend_port}/api",
            "NOEMA_COMFYDEPLOY_API_KEY": SANDBOX_KEY,
            "NOEMA_COMFYDEPLOY_MAX_RPS": "1000",  # the load asks for 50+ runs a second
        }
    )
    return noema_env(
        {
            **separate,
            "NOEMA_DATABASE_URL": db_url,
            "NOEMA_HOST": "127.0.0.1",
            "NOEMA_PORT": str(port),
            "NOEMA_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NOEMA_SANDBOX_DATA_DIR": str(workdir / "sandbox"),
            "NOEMA_SANDBOX_RUN_SECONDS": str(run_seconds),
            "NOEMA_MAX_CONCURRENT_RUNS": "100",
            "NOEMA_MAX_RUNS_PER_MINUTE": "10000",
            "NOEMA_LOG_FORMAT": "json",
            "NOEMA_LOG_LEVEL": "WARNING",
        }
    )


async def _make_keys(env: dict[str, str], count: int) -> list[dict[str, str]]:
    """``count`` funded API accounts made directly in the database (before the server starts)."""
    settings = Settings(_env_file=None, database_url=env["NOEMA_DATABASE_URL"], workers_enabled=False)
    container = build_container(settings)
    await container.start()
    try:
        keys = []
        for i in range(count):
            found = await accounts.find_or_create(
                container.uow, container.clock, platform=Platform.API, platform_id=f"load-{i}-{uuid.uuid4().hex[:6]}"
            )
            aid = found.account.id
            transfer = economy.Transfer(account_id=aid, amount_nanos=parse_usd("100000"))
            await economy.credit(container.uow(), container.clock, transfer)
            key = await api_keys.create(container.uow(), container.clock, aid, secrets=container.secrets)
            keys.append({"Authorization": f"Bearer {key.plain}"})
        return keys
    finally:
        await container.close()


@contextlib.asynccontextmanager
async def served(workdir: Path, *, run_seconds: float, accounts_count: int, separate: bool) -> AsyncIterator[Server]:
    """A fresh PostgreSQL database, migrated, with funded keys, and ``noema serve`` over it.

    ``separate`` runs the sandbox as its own ``noema sandbox`` process that Noema reaches as ComfyDeploy
    over HTTP, so the replica's figures are its own and not the GPU double's too.
    """
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with fresh_database("postgres", workdir) as db_url, contextlib.AsyncExitStack() as stack:
        port = free_port()
        backend = None
        if separate:
            backend_port = free_port()
            backend = await start_sandbox(
                workdir / "sandbox",
                cwd=workdir,
                port=backend_port,
                run_seconds=run_seconds,
                webhook_base=f"http://127.0.0.1:{port}/api/webhook/",
            )
            stack.callback(backend.stop)
        env = _env(db_url, port, workdir, run_seconds, backend_port if separate else None)
        migrated = await asyncio.to_thread(run_noema, "migrate", env=env, cwd=workdir)
        if migrated.returncode != 0:
            raise RuntimeError(f"noema migrate failed: {migrated.stderr[-2000:]}")
        keys = await _make_keys(env, accounts_count)
        process = await start_serve(env, cwd=workdir, name=f"serve-{port}", port=port, seconds=90)
        try:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits) as client:
                yield Server(process, client, env, workdir, db_url, keys, backend)
        finally:
            process.stop(timeout=30)


# --- readings -------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 1_000_000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True)
class Idle:
    """A few seconds with no request of the driver open: CPU shares of one core, and webhooks applied."""

    cpu: float  #: the replica's
    backend_cpu: float  #: the separate sandbox's (0 when it is embedded)
    webhooks_per_second: float

    @property
    def ms_per_webhook(self) -> float:
        """The replica's CPU per webhook applied, in ms (all of its idle CPU put on the webhooks)."""
        return self.cpu * 1000 / self.webhooks_per_second if self.webhooks_per_second else 0.0


async def idle(server: Server, seconds: float) -> Idle:
    """The replica (and the separate sandbox) over ``seconds`` with no request open."""
    pids = [server.process.pid] + ([] if server.backend is None else [server.backend.pid])
    applied = await webhooks_applied(server)
    before, started = [cpu_seconds(p) for p in pids], time.monotonic()
    await asyncio.sleep(seconds)
    shares = [(cpu_seconds(p) - b) / (time.monotonic() - started) for p, b in zip(pids, before, strict=True)]
    rate = (await webhooks_applied(server) - applied) / seconds
    return Idle(shares[0], shares[1] if len(shares) > 1 else 0.0, rate)


async def webhooks_applied(server: Server) -> float:
    """The replica's count of backend webhooks applied, from its /metrics."""
    text = (await server.client.get("/metrics")).text
    line = next(line for line in text.splitlines() if line.startswith("noema_webhook_apply_seconds_count"))
    return float(line.split()[-1])


@dataclass(frozen=True)
class Reading:
    """The server at one step."""

    in_flight: int  #: runs accepted so far
    rss_mb: float
    idle: Idle
    seconds: float  #: since the phase began
    live: int = 0  #: of those, the ones not yet ended (a slow fill lets the first 600 s runs end)


@dataclass
class Answers:
    """Answers by kind: HTTP status, or the client-side error's name."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    accepted: list[str] = field(default_factory=list)

    def record(self, response: httpx.Response | BaseException) -> None:
        """Count one answer (and keep the id of an accepted run)."""
        if isinstance(response, BaseException):
            self.counts[type(response).__name__] += 1
            return
        self.counts[str(response.status_code)] += 1
        if response.status_code == 202:
            self.accepted.append(response.json()["id"])

    @property
    def failures(self) -> int:
        """5xx answers and client-side errors (timeouts, refused connections)."""
        return sum(n for kind, n in self.counts.items() if not kind.isdigit() or kind.startswith("5"))


async def ask(server: Server, key: dict[str, str], n: int) -> httpx.Response | BaseException:
    """One txt2img request."""
    body = {"toolId": "txt2img", "inputs": {"input_text": f"load {n}"}}
    try:
        return await server.client.post("/api/v1/generations", json=body, headers=key)
    except httpx.HTTPError as exc:
        return exc


def log_problems(process: NoemaProcess) -> collections.Counter[str]:
    """Unhandled errors and never-retrieved task exceptions in the server's output (the first traceback shown)."""
    found: collections.Counter[str] = collections.Counter()
    for path in (process.stdout_path, process.stderr_path):
        text = path.read_text(errors="replace") if path.exists() else ""
        if "Traceback (most recent call last)" in text and not found["Traceback"]:
            first = text.index("Traceback (most recent call last)")
            print(f"  first traceback in {path.name}:\n{text[max(0, first - 600) : first + 2500]}", flush=True)
        found["unhandled_error"] += text.count('"unhandled_error"')
        found["task exception never retrieved"] += text.count("Task exception was never retrieved")
        found["Traceback"] += text.count("Traceback (most recent call last)")
    return found


# --- phase 1: runs in flight ----------------------------------------------------------------------


@dataclass(frozen=True)
class HoldResult:
    """Readings per step, answers, log problems."""

    baseline: Reading
    readings: list[Reading]
    answers: Answers
    problems: collections.Counter[str]


async def hold(workdir: Path, plan: Plan, *, separate: bool) -> HoldResult:
    """Fill the replica up to ``plan.in_flight`` runs of 600 s, reading RSS and idle CPU at each step."""
    async with served(workdir, run_seconds=600, accounts_count=plan.accounts, separate=separate) as server:
        pid = server.process.pid
        started = time.monotonic()
        baseline = Reading(0, rss_mb(pid), await idle(server, plan.idle_seconds), 0.0, 0)
        answers, readings, n = Answers(), [], 0
        per_account = collections.Counter[int]()
        while len(answers.accepted) < plan.in_flight:
            target = min(plan.in_flight, len(answers.accepted) + plan.step)
            while len(answers.accepted) < target and answers.failures < 500:
                batch = []
                for _ in range(min(32, target - len(answers.accepted))):
                    account = n % plan.accounts
                    n += 1
                    if per_account[account] >= 100:  # each account may have 100 runs at once
                        continue
                    per_account[account] += 1
                    batch.append(ask(server, server.keys[account], n))
                if not batch:
                    raise RuntimeError("every account is at its limit of runs in flight")
                for response in await asyncio.gather(*batch):
                    answers.record(response)
            await asyncio.sleep(1.0)  # let the last answers' work settle before reading
            quiet = await idle(server, plan.idle_seconds)
            live = await _count_live(server.db_url)
            readings.append(Reading(len(answers.accepted), rss_mb(pid), quiet, time.monotonic() - started, live))
            print(f"  {readings[-1]}  answers {dict(answers.counts)}", flush=True)
            if answers.failures >= 500:
                break
        return HoldResult(baseline, readings, answers, log_problems(server.process))


async def _count_live(db_url: str) -> int:
    """Generations that have not ended (read after the CPU reading, so it does not count in it)."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM generations WHERE {LIVE_STATUSES_SQL}"))
    finally:
        await conn.close()


# --- phase 2: a burst -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BurstResult:
    """Answers of the burst and what became of the accepted runs."""

    rate: int
    seconds: int
    answers: Answers
    ended: int
    settled_twice: int
    ledger_clean: bool
    problems: collections.Counter[str]


async def burst(workdir: Path, plan: Plan, *, separate: bool) -> BurstResult:
    """A burst of runs, each then cancelled: every one must end and be settled exactly once.

    ``plan.burst_rate`` requests a second for ``plan.burst_seconds`` (runs of 600 s, as in the operator's
    day); then every accepted run is cancelled through the API.
    """
    async with served(workdir, run_seconds=600, accounts_count=plan.accounts, separate=separate) as server:
        answers = Answers()
        tasks = []
        start = time.monotonic()
        for n in range(plan.burst_rate * plan.burst_seconds):
            delay = start + n / plan.burst_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(ask(server, server.keys[n % plan.accounts], n)))
        owners = {}
        for n, response in enumerate(await asyncio.gather(*tasks)):
            answers.record(response)
            if isinstance(response, httpx.Response) and response.status_code == 202:
                owners[response.json()["id"]] = server.keys[n % plan.accounts]
        await _cancel_all(server, owners)
        ended, twice = await _wait_ended(server.db_url, answers.accepted, seconds=180)
        verified = await asyncio.to_thread(run_noema, "ledger", "verify", env=server.env, cwd=server.cwd)
        return BurstResult(
            plan.burst_rate,
            plan.burst_seconds,
            answers,
            ended,
            twice,
            verified.returncode == 0,
            log_problems(server.process),
        )


async def _cancel_all(server: Server, owners: dict[str, dict[str, str]]) -> None:
    """Cancel every run (16 at a time), retrying what Noema asks to retry."""
    gate = asyncio.Semaphore(16)

    async def cancel(gid: str, key: dict[str, str]) -> None:
        async with gate:
            for _ in range(20):
                response = await server.client.post(f"/api/v1/generations/{gid}/cancel", headers=key)
                if response.status_code not in (429, 503):
                    return
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))

    await asyncio.gather(*(cancel(gid, key) for gid, key in owners.items()))


async def _wait_ended(db_url: str, ids: list[str], *, seconds: float) -> tuple[int, int]:
    """(runs ended and settled, runs with more than one settlement debit) once all end or time is up."""
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + seconds
        while True:
            ended = await conn.fetchval(
                "SELECT count(*) FROM generations WHERE id = ANY($1::text[]) AND settled_at IS NOT NULL", ids
            )
            if ended == len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT idempotency_key FROM ledger_entries WHERE idempotency_key LIKE 'settle:%' "
            "GROUP BY idempotency_key HAVING count(*) > 1) AS doubled"
        )
        return int(ended), int(twice)
    finally:
        await conn.close()


# --- report ---------------------------------------------------------------------------------------


def hold_report(held: HoldResult, *, separate: bool) -> list[str]:
    """The in-flight phase as a table."""
    rows = [
        [
            f"{r.in_flight:,}",
            f"{r.live:,}",
            f"{r.rss_mb:.0f}",
            f"{r.idle.cpu * 100:.1f}",
            f"{r.idle.webhooks_per_second:.0f}",
            f"{r.idle.ms_per_webhook:.2f}",
            f"{r.seconds:.0f}",
        ]
        + ([f"{r.idle.backend_cpu * 100:.1f}"] if separate else [])
        for r in [held.baseline, *held.readings]
    ]
    where = "in its own process" if separate else "embedded in the replica"
    headers = ["accepted", "live", "RSS MB", "idle CPU %", "webhooks/s", "CPU ms/webhook", "at s"]
    return [
        f"Runs in flight on one replica (PostgreSQL, sandbox runs of 600 s, the sandbox {where}); "
        "idle CPU in % of one core, and the backend's webhooks applied meanwhile",
        table(headers + (["sandbox CPU %"] if separate else []), rows),
        f"answers: {dict(held.answers.counts)}; failures (5xx, client errors): {held.answers.failures}",
        f"server log: {dict(held.problems)}",
    ]


def burst_report(b: BurstResult) -> list[str]:
    """The burst phase."""
    return [
        f"Burst: {b.rate} requests/s for {b.seconds} s (runs of 600 s, then every one cancelled)",
        f"answers: {dict(b.answers.counts)}; failures (5xx, client errors): {b.answers.failures}",
        f"accepted {len(b.answers.accepted)}, ended and settled {b.ended}, settled twice {b.settled_twice}, "
        f"ledger verify {'clean' if b.ledger_clean else 'FAILED'}",
        f"server log: {dict(b.problems)}",
    ]


async def main_async(quick: bool, phases: str = "both", *, separate: bool = False) -> int:
    """The phases asked for; exit 1 when a goal's condition (no failure, every run ended once) is broken."""
    plan = QUICK if quick else FULL
    backend = "separate" if separate else "embedded"
    print(f"Load ({'quick' if quick else 'full'}, {phases}, sandbox {backend}): {plan}", flush=True)
    lines: list[str] = []
    broken = False
    with tempfile.TemporaryDirectory(prefix="noema-load-") as tmp:
        if phases in ("both", "hold"):
            held = await hold(Path(tmp) / "hold", plan, separate=separate)
            lines += hold_report(held, separate=separate)
            broken = broken or held.answers.failures > 0
        if phases in ("both", "burst"):
            b = await burst(Path(tmp) / "burst", plan, separate=separate)
            lines += ["", *burst_report(b)] if lines else burst_report(b)
            broken = (
                broken
                or b.answers.failures > 0
                or b.ended != len(b.answers.accepted)
                or b.settled_twice > 0
                or not b.ledger_clean
            )
    print("\n".join(lines), flush=True)
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 in flight and a 10 s burst")
    parser.add_argument(
        "--phase", choices=("both", "hold", "burst"), default="both", help="run only the in-flight or the burst phase"
    )
    parser.add_argument(
        "--backend",
        choices=("embedded", "separate"),
        default="embedded",
        help="the sandbox inside the replica (the default set-up) or in its own process, as a real GPU backend is",
    )
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args.quick, args.phase, separate=args.backend == "separate"))


if __name__ == "__main__":
    sys.exit(main())
