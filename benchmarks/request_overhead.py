"""Request overhead: from sending ``POST /api/v1/generations`` to the backend's ``queue_run`` being called.

The backend is instant (it records the moment it is called), so what is measured is Noema's own path:
auth, catalog, validation, the hold and the create transaction. The baseline is the same client calling a
no-op route on the same app (time to the handler), interleaved request by request; the figure that
matters is the ratio of the medians.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import NOOP_PATH, Bench, bench_settings, funded_account, percentile, started_app, table

GENERATIONS_PATH = "/api/v1/generations"


@dataclass(frozen=True)
class Plan:
    """Measured requests and warm-up requests, sent one at a time."""

    requests: int
    warmup: int


FULL = Plan(requests=500, warmup=25)
QUICK = Plan(requests=100, warmup=10)


@dataclass(frozen=True)
class Timings:
    """Seconds from sending to the call (backend or no-op handler), and to the response."""

    to_call: list[float]
    round_trip: list[float]

    def row(self, label: str) -> list[str]:
        """p50, p99 and mean to the call, and the round trip's p50, in milliseconds."""
        ms = [v * 1000 for v in self.to_call]
        return [
            label,
            str(len(ms)),
            f"{percentile(ms, 0.5):.2f}",
            f"{percentile(ms, 0.99):.2f}",
            f"{statistics.fmean(ms):.2f}",
            f"{percentile(self.round_trip, 0.5) * 1000:.2f}",
        ]


@dataclass(frozen=True)
class OverheadResult:
    plan: Plan
    generation: Timings
    noop: Timings

    @property
    def ratio(self) -> float:
        """Median time to queue_run over the median time to the no-op handler."""
        return percentile(self.generation.to_call, 0.5) / percentile(self.noop.to_call, 0.5)


async def _noop(bench: Bench, body: dict[str, object], auth: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    response = await bench.client.post(NOOP_PATH, json=body, headers=auth)
    ended = time.perf_counter()
    if response.status_code != 200:
        raise RuntimeError(f"no-op: {response.status_code} {response.text[:200]}")
    return bench.noop_calls[-1] - started, ended - started


async def _generation(bench: Bench, body: dict[str, object], auth: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    response = await bench.client.post(GENERATIONS_PATH, json=body, headers=auth)
    ended = time.perf_counter()
    if response.status_code != 202 or response.json()["status"] != "submitted":
        raise RuntimeError(f"generation request: {response.status_code} {response.text[:300]}")
    call = bench.backend.calls[-1]
    if call.generation_id != response.json()["id"] or not started < call.at < ended:
        raise RuntimeError("queue_run was not called for this request")
    await _finish(bench, call.generation_id, call.token, call.run_id)
    return call.at - started, ended - started


async def _finish(bench: Bench, generation_id: str, token: str, run_id: str) -> None:
    """End the run (untimed) with a success webhook, so the account's live runs stay few, as in real use."""
    event = {"event_type": "run.updated", "status": "success", "progress": 1, "run_id": run_id, "outputs": []}
    response = await bench.client.post(
        f"/api/webhook/comfydeploy?generation_id={generation_id}&token={token}",
        content=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"finishing webhook: {response.status_code} {response.text[:200]}")


async def run(db_url: str, workdir: Path, *, quick: bool = False) -> OverheadResult:
    """Warm up, then alternate a no-op request and a generation request, one at a time."""
    plan = QUICK if quick else FULL
    async with started_app(bench_settings(db_url, workdir)) as bench:
        _, auth = await funded_account(bench.container, "1000")
        generation = Timings([], [])
        noop = Timings([], [])
        for i in range(plan.warmup + plan.requests):
            body: dict[str, object] = {"toolId": "txt2img", "inputs": {"input_text": f"a red fox, take {i}"}}
            if i % 2 == 0:  # alternate which goes first, so neither always follows the untimed finish
                n = await _noop(bench, body, auth)
                g = await _generation(bench, body, auth)
            else:
                g = await _generation(bench, body, auth)
                n = await _noop(bench, body, auth)
            if i >= plan.warmup:
                for timings, (to_call, round_trip) in ((generation, g), (noop, n)):
                    timings.to_call.append(to_call)
                    timings.round_trip.append(round_trip)
    return OverheadResult(plan, generation, noop)


def report(result: OverheadResult) -> str:
    """The figures as a small table."""
    rows = [
        result.generation.row("POST /api/v1/generations -> queue_run"),
        result.noop.row("POST no-op -> handler (baseline)"),
    ]
    return "\n".join(
        [
            f"Request overhead to the backend call ({result.plan.requests} requests one at a time, "
            f"after {result.plan.warmup} warm-up; milliseconds)",
            table(["", "n", "p50", "p99", "mean", "round-trip p50"], rows),
            f"ratio of p50s generation/no-op: {result.ratio:.1f}",
        ]
    )
