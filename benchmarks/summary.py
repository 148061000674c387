"""Issue 15's goal figures of a ``python -m benchmarks`` run: one table across the databases, and as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.delivery import DeliveryResult
from benchmarks.harness import percentile, table
from benchmarks.request_overhead import OverheadResult
from benchmarks.webhooks import WebhookResult

#: Where the latest run's figures are written (git-ignored, like every other scratch file).
DEFAULT_JSON = Path(".cache/benchmarks/latest.json")


@dataclass(frozen=True)
class DatabaseFigures:
    """The goal figures of one database, in milliseconds and ratios."""

    ingest_ratio: float  #: goal 3: webhook events/s over a no-op request's, >= 0.5
    webhooks_per_second: float
    request_p50_ms: float  #: goal 4: request -> backend call, p99 <= 10 ms
    request_p99_ms: float
    delivery_p50_ms: float  #: goal 1: final webhook -> result at the platform, p50 <= 100, p95 <= 250
    delivery_p95_ms: float
    chats_lag_p95_ms: float  #: goal 2: many chats at once, lag p95 <= 1 s and the last result within 2 s
    chats_last_result_ms: float

    @classmethod
    def of(cls, hooks: WebhookResult, overhead: OverheadResult, delivered: DeliveryResult) -> DatabaseFigures:
        """The figures read off the three benchmarks' results."""
        return cls(
            ingest_ratio=round(hooks.ratio, 3),
            webhooks_per_second=round(hooks.webhook_rate, 1),
            request_p50_ms=_ms(overhead.generation.to_call, 0.5),
            request_p99_ms=_ms(overhead.generation.to_call, 0.99),
            delivery_p50_ms=_ms(delivered.woken, 0.5),
            delivery_p95_ms=_ms(delivered.woken, 0.95),
            chats_lag_p95_ms=_ms(delivered.burst.lags, 0.95),
            chats_last_result_ms=round(delivered.burst.tail * 1000, 1),
        )

    def met(self) -> dict[str, bool]:
        """Each goal, met or not."""
        return {
            "goal 1 delivery": self.delivery_p50_ms <= 100 and self.delivery_p95_ms <= 250,
            "goal 2 many chats": self.chats_lag_p95_ms <= 1000 and self.chats_last_result_ms <= 2000,
            "goal 3 ingest": self.ingest_ratio >= 0.5,
            "goal 4 request p99": self.request_p99_ms <= 10,
        }


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 2)


def report(figures: dict[str, DatabaseFigures]) -> str:
    """One table: a row per figure, a column per database."""
    kinds = list(figures)
    rows = [
        ["goal 3: webhook ingest / no-op (>= 0.5)", *(f"{figures[k].ingest_ratio:.3f}" for k in kinds)],
        ["goal 4: request -> backend p50 / p99 ms (p99 <= 10)"]
        + [f"{figures[k].request_p50_ms:.2f} / {figures[k].request_p99_ms:.2f}" for k in kinds],
        ["goal 1: final webhook -> Telegram p50 / p95 ms (100 / 250)"]
        + [f"{figures[k].delivery_p50_ms:.1f} / {figures[k].delivery_p95_ms:.1f}" for k in kinds],
        ["goal 2: many chats (300; 60 quick) lag p95 / last result ms (1000 / 2000)"]
        + [f"{figures[k].chats_lag_p95_ms:.1f} / {figures[k].chats_last_result_ms:.0f}" for k in kinds],
        ["goals met", *(", ".join(g.split()[1] for g, ok in figures[k].met().items() if ok) or "-" for k in kinds)],
    ]
    return table(["figure", *kinds], rows)


def write_json(figures: dict[str, DatabaseFigures], path: Path, *, quick: bool) -> None:
    """The figures and which goals they meet, per database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "run": "quick" if quick else "full",
        "databases": {k: {**vars(f), "met": f.met()} for k, f in figures.items()},
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
