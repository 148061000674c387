"""Status at scale: the status, history and web history reads of one account, on a small and on a large database.

``python -m benchmarks --scale`` (or ``python -m benchmarks.status_scale [--quick]``), PostgreSQL only.
Two fresh databases filled with set-based SQL, an app started on each, in one process: the baseline
holds 1,000 generations over 100 accounts; the large one 1,000,000 generations and 100,000 accounts.
On each, two accounts read: one with 10 runs, one with 20,000 (10 on the baseline), two of them live.
The reads go round-robin over both databases, so the shared machine's busy moments hit both alike,
and each is repeated well past PostgreSQL's fifth execution of a prepared statement, where a generic
plan may take over. The figure that matters is each p99 on the large database against the baseline's.
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
    token, _ = await web_sessions.start(
        bench.container.uow(), bench.container.clock, account_id, secrets=bench.container.secrets
    )
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


@dataclass(frozen=True)
class Side:
    """One database's started app and its two accounts."""

    database: str
    bench: Bench
    readers: list[Reader]


async def _measure(sides: list[Side], plan: Plan) -> list[Figure]:
    """Every read of every account on both databases in turn, round after round: a busy moment hits all alike."""
    cursors = {(s.database, r.name): await _deep_cursor(s.bench, r, pages=100) for s in sides for r in s.readers}
    samples: dict[tuple[str, str, str], list[float]] = {}
    for i in range(plan.warmup + plan.requests):
        for side in sides:
            for reader in side.readers:
                for read in READS:
                    elapsed = await _once(side.bench, reader, read, cursors[(side.database, reader.name)])
                    if i >= plan.warmup:
                        samples.setdefault((side.database, reader.name, read), []).append(elapsed)
    return [Figure(read, name, database, values) for (database, name, read), values in samples.items()]


async def _fill_small(url: str, readers: list[Reader], plan: Plan) -> None:
    """1,000 generations over 100 accounts, ten of them (two live) for each reader."""
    await scale_data.add_accounts(url, 1, BASELINE_ACCOUNTS)
    for reader in readers:
        await scale_data.add_account_runs(url, reader.account_id, runs=SMALL_RUNS, live=LIVE_RUNS, tag="base")
    last = BASELINE_RUNS - len(readers) * SMALL_RUNS
    await scale_data.add_background_runs(url, 1, last, accounts=BASELINE_ACCOUNTS, total=plan.generations)
    await scale_data.settle(url)


async def _fill_large(url: str, small: Reader, big: Reader, plan: Plan) -> None:
    """The plan's accounts and generations: ten runs (two live) for ``small``, ``plan.big_runs`` for ``big``."""
    await scale_data.add_accounts(url, 1, plan.accounts - 2)
    await scale_data.add_account_runs(url, small.account_id, runs=SMALL_RUNS, live=LIVE_RUNS, tag="base")
    await scale_data.add_account_runs(url, big.account_id, runs=plan.big_runs, live=LIVE_RUNS, tag="base")
    last = plan.generations - plan.big_runs - SMALL_RUNS
    await scale_data.add_background_runs(url, 1, last, accounts=plan.accounts - 2, total=plan.generations)
    await scale_data.settle(url)


async def run(small_url: str, large_url: str, workdir: Path, *, quick: bool = False) -> ScaleResult:
    """Fill a small and a large database, start an app on each, and time the reads on both side by side."""
    plan = QUICK if quick else FULL
    async with (
        started_app(bench_settings(small_url, workdir / "small")) as small_bench,
        started_app(bench_settings(large_url, workdir / "large")) as large_bench,
    ):
        sides = []
        for database, bench in (("1,000 rows", small_bench), ("large", large_bench)):
            readers = [await _reader(bench, "10 runs"), await _reader(bench, f"{plan.big_runs:,} runs")]
            sides.append(Side(database, bench, readers))
        await _fill_small(small_url, sides[0].readers, plan)
        started = time.perf_counter()
        small_reader, big_reader = sides[1].readers
        await _fill_large(large_url, small_reader, big_reader, plan)
        build = time.perf_counter() - started
        figures = await _measure(sides, plan)
    return ScaleResult(plan, figures, build, await scale_data.count_rows(large_url))


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
            f"{result.plan.warmup} warm-up; milliseconds). Large: {generations:,} generations and "
            f"{accounts:,} accounts, built in {result.build_seconds:.0f} s.",
            table(["read (account)", "1k p50", "1k p99", "large p50", "large p99", "p99 ratio"], rows),
        ]
    )


async def bench_scale(*, quick: bool) -> None:
    """Status and history reads on a small and a large PostgreSQL database (minutes: it builds the large one)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noema-bench-scale-") as tmp:
        async with (
            fresh_database("postgres", Path(tmp)) as small_url,
            fresh_database("postgres", Path(tmp)) as large_url,
        ):
            print("\n=== postgres at scale ===", flush=True)
            print(report(await run(small_url, large_url, Path(tmp), quick=quick)), flush=True)
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
