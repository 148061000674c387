"""Run every benchmark: ``python -m benchmarks [--quick] [--db sqlite|postgres|both] [--scale]``.

``--comfyui`` runs instead the self-hosted ComfyUI benchmark against real ComfyUI peers (``benchmarks/comfyui.py``);
``--replicas N`` runs instead webhook ingest and request overhead across real processes, one ``noema serve``
and then N, each time with a ``noema worker``, on one PostgreSQL (``benchmarks/replicas.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import comfyui, delivery, replicas, request_overhead, status_scale, summary, webhooks
from benchmarks.harness import fresh_database, quiet_production_logging


async def bench_database(kind: str, *, quick: bool) -> summary.DatabaseFigures:
    """Every benchmark on one fresh database of this kind (each on its own started app)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"noema-bench-{kind}-") as tmp:
        async with fresh_database(kind, Path(tmp)) as url:
            print(f"\n=== {kind} ===", flush=True)
            hooks = await webhooks.run(url, Path(tmp) / "webhooks", quick=quick)
            print(webhooks.report(hooks), flush=True)
            print(flush=True)
            overhead = await request_overhead.run(url, Path(tmp) / "requests", quick=quick)
            print(request_overhead.report(overhead), flush=True)
            print(flush=True)
            delivered = await delivery.run(url, Path(tmp) / "delivery", quick=quick)
            print(delivery.report(delivered), flush=True)
    print(f"({kind}: {time.perf_counter() - started:.1f} s)", flush=True)
    return summary.DatabaseFigures.of(hooks, overhead, delivered)


async def bench_comfyui(kind: str, *, quick: bool) -> None:
    """The self-hosted ComfyUI benchmark on one fresh database of this kind."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"noema-bench-comfyui-{kind}-") as tmp:
        async with fresh_database(kind, Path(tmp)) as url:
            print(f"\n=== {kind} ===", flush=True)
            print(comfyui.report(await comfyui.run(url, Path(tmp), quick=quick)), flush=True)
    print(f"({kind}: {time.perf_counter() - started:.1f} s)", flush=True)


async def bench_replicas(count: int, *, quick: bool) -> None:
    """Ingest and overhead with one serve replica, then ``count``, each with a worker, on PostgreSQL."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noema-bench-replicas-") as tmp:
        results = await replicas.run(Path(tmp), replicas=count, quick=quick)
    print(f"\n{replicas.report(results)}\n(replicas: {time.perf_counter() - started:.1f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (under ~30 s)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--scale", action="store_true", help="also status and history at 1,000,000 generations (PostgreSQL, minutes)"
    )
    parser.add_argument("--comfyui", action="store_true", help="only the self-hosted ComfyUI benchmark (real peers)")
    parser.add_argument(
        "--replicas",
        type=int,
        metavar="N",
        help="only ingest and overhead across processes: 1 and then N serve replicas with a worker (PostgreSQL)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=summary.DEFAULT_JSON,
        help=f"where the goal figures are written (default {summary.DEFAULT_JSON})",
    )
    args = parser.parse_args(argv)
    quiet_production_logging()
    if args.replicas is not None:
        if args.replicas < 1:
            parser.error("--replicas needs at least 1")
        print(f"Noema benchmarks ({'quick' if args.quick else 'full'}); Python {platform.python_version()}", flush=True)
        asyncio.run(bench_replicas(args.replicas, quick=args.quick))
        return 0
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"Noema benchmarks ({'quick' if args.quick else 'full'}); Python {platform.python_version()}, "
        "in-process httpx.ASGITransport, "
        + ("real ComfyUI peers" if args.comfyui else "instant backend")
        + ", workers off, INFO logs to /dev/null",
        flush=True,
    )
    if args.comfyui:
        for kind in kinds:
            asyncio.run(bench_comfyui(kind, quick=args.quick))
        return 0
    figures = {kind: asyncio.run(bench_database(kind, quick=args.quick)) for kind in kinds}
    print(f"\nIssue 15's goals, side by side\n{summary.report(figures)}", flush=True)
    summary.write_json(figures, args.json, quick=args.quick)
    print(f"(written to {args.json})", flush=True)
    if args.scale:
        asyncio.run(status_scale.bench_scale(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
