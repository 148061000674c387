"""Status at scale: the status, history and web history reads of one account, on a small and on a large database.

``python -m benchmarks --scale`` (or ``python -m benchmarks.status_scale [--quick]``), PostgreSQL only.
One fresh database, one started app. First it holds 1,000 generations over 100 accounts and the three
reads are timed for two accounts with 10 runs each (2 live): that is the baseline. Then set-based SQL
grows it to 1,000,000 generations and 100,000 accounts, one of the two accounts to 20,000 runs, and the
same reads are timed again. Each read is repeated well past PostgreSQL's fifth execution of a prepared
statement, where a generic plan may take over. The figure that matters is each p99 against its baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import scale_data
from benchmarks.harness import (
    Bench,
    bench_settings,
    fresh_database,
    funded_account,
    percentile,
    quiet_production_logging,
    started_app,
    table,
)
from noema.services import web_sessions

BASELINE_ACCOUNTS, BASELINE_RUNS = 100, 1_000
SMALL_RUNS, LIVE_RUNS = 10, 2
#: The deep page is 10,000 runs into the history (on the small database, the account's only page).
READS = ("me/status", "generations", "web history", "generations, deep page")


@dataclass(frozen=True)
class Plan:
    """The large database's size, the large account's runs, and requests timed per read (after warm-up)."""

    accounts: int
    generations: int
    big_runs: int
    requests: int
    warmup: int


FULL = Plan(accounts=100_000, generations=1_000_000, big_runs=20_000, requests=300, warmup=20)
QUICK = Plan(accounts=10_000, generations=100_000, big_runs=20_000, requests=100, warmup=20)


@dataclass(frozen=True)
class Reader:
    """One account as a client sees it: its API key header and its web session cookie."""

    name: str
    account_id: str
    auth: dict[str, str]
    cookies: dict[str, str]


@dataclass(frozen=True)
class Figure:
    """Milliseconds of one read by one account on one database."""

    read: str
    account: str
    database: str
    samples: list[float]

    @property
    def p50(self) -> float:
        """The median."""
        return percentile(self.samples, 0.5)

    @property
    def p99(self) -> float:
        """The 99th percentile."""
        return percentile(self.samples, 0.99)


@dataclass(frozen=True)
class ScaleResult:
    plan: Plan
    figures: list[Figure]
    build_seconds: float
    rows: tuple[int, int]


async def _reader(bench: Bench, name: str) -> Reader:
    account_id, auth = await funded_account(bench.container, "10")
    token, _ = await web_sessions.start(bench.container.uow(), bench.container.clock, account_id)
    return Reader(name, account_id, auth, {"noema_session": token})


async def _deep_cursor(bench: Bench, reader: Reader, pages: int) -> str:
    """The cursor ``pages`` pages of 100 into the account's history (the last one there is, if fewer)."""
    cursor = ""
    for _ in range(pages):
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        body = (await bench.client.get("/api/v1/generations", params=params, headers=reader.auth)).json()
        if not body.get("nextCursor"):
            break
        cursor = body["nextCursor"]
    return cursor


async def _once(bench: Bench, reader: Reader, read: str, cursor: str) -> float:
    """Milliseconds of one request of one read."""
    started = time.perf_counter()
    if read == "web history":
        response = await bench.client.get("/app/history", cookies=reader.cookies)
    elif read == "me/status":
        response = await bench.client.get("/api/v1/me/status", headers=reader.auth)
    else:
        params = {"cursor": cursor} if read == "generations, deep page" and cursor else {}
        response = await bench.client.get("/api/v1/generations", params=params, headers=reader.auth)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{read}: {response.status_code} {response.text[:200]}")
    return elapsed


async def _measure(bench: Bench, readers: list[Reader], plan: Plan, database: str) -> list[Figure]:
    """Every read of every account in turn, round after round, so a busy moment of the machine hits all alike."""
    cursors = {r.name: await _deep_cursor(bench, r, pages=100) for r in readers}
    samples: dict[tuple[str, str], list[float]] = {(r.name, read): [] for r in readers for read in READS}
    for i in range(plan.warmup + plan.requests):
        for reader in readers:
            for read in READS:
                elapsed = await _once(bench, reader, read, cursors[reader.name])
                if i >= plan.warmup:
                    samples[(reader.name, read)].append(elapsed)
    return [Figure(read, name, database, values) for (name, read), values in samples.items()]


async def run(db_url: str, workdir: Path, *, quick: bool = False) -> ScaleResult:
    """Time the reads on the small database, grow it, and time them again."""
    plan = QUICK if quick else FULL
    async with started_app(bench_settings(db_url, workdir)) as bench:
        small, big = await _reader(bench, "10 runs"), await _reader(bench, f"{plan.big_runs:,} runs")
        await scale_data.add_accounts(db_url, 1, BASELINE_ACCOUNTS)
        for reader in (small, big):
            await scale_data.add_account_runs(db_url, reader.account_id, runs=SMALL_RUNS, live=LIVE_RUNS, tag="base")
        await scale_data.add_background_runs(
            db_url, 1, BASELINE_RUNS - 2 * SMALL_RUNS, accounts=BASELINE_ACCOUNTS, total=plan.generations
        )
        figures = await _measure(bench, [small, big], plan, "1,000 rows")
        started = time.perf_counter()
        await scale_data.add_accounts(db_url, BASELINE_ACCOUNTS + 1, plan.accounts - 2)
        await scale_data.add_account_runs(db_url, big.account_id, runs=plan.big_runs - SMALL_RUNS, live=0, tag="more")
        last = plan.generations - plan.big_runs - SMALL_RUNS
        await scale_data.add_background_runs(
            db_url, BASELINE_RUNS - 2 * SMALL_RUNS + 1, last, accounts=plan.accounts - 2, total=plan.generations
        )
        build = time.perf_counter() - started
        rows = await scale_data.count_rows(db_url)
        figures += await _measure(bench, [small, big], plan, f"{rows[1]:,} rows")
    return ScaleResult(plan, figures, build, rows)


def report(result: ScaleResult) -> str:
    """Each read's p50 and p99 on both databases, and the large database's p99 over the small one's."""
    baseline = {(f.read, f.account): f for f in result.figures if f.database == "1,000 rows"}
    rows = []
    for f in result.figures:
        if f.database == "1,000 rows":
            continue
        base = baseline[(f.read, f.account)]
        rows.append(
            [
                f"{f.read} ({f.account})",
                f"{base.p50:.2f}",
                f"{base.p99:.2f}",
                f"{f.p50:.2f}",
                f"{f.p99:.2f}",
                f"{f.p99 / base.p99:.2f}",
            ]
        )
    accounts, generations = result.rows
    return "\n".join(
        [
            f"Status at scale on PostgreSQL ({result.plan.requests} requests per read one at a time, after "
            f"{result.plan.warmup} warm-up; milliseconds). Grown to {generations:,} generations and "
            f"{accounts:,} accounts in {result.build_seconds:.0f} s.",
            table(["read (account)", "1k p50", "1k p99", "large p50", "large p99", "p99 ratio"], rows),
        ]
    )


async def bench_scale(*, quick: bool) -> None:
    """Status and history reads on a small and a large PostgreSQL database (minutes: it builds the large one)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noema-bench-scale-") as tmp:
        async with fresh_database("postgres", Path(tmp)) as url:
            print("\n=== postgres at scale ===", flush=True)
            print(report(await run(url, Path(tmp), quick=quick)), flush=True)
    print(f"(scale: {time.perf_counter() - started:.1f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.status_scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 generations and 10,000 accounts")
    args = parser.parse_args(argv)
    quiet_production_logging()
    asyncio.run(bench_scale(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
