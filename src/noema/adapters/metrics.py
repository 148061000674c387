"""Prometheus metrics for what the services count."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class PrometheusMetrics:
    """Counters and histograms in one registry per process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry  #: what /metrics exposes
        self._generations = Counter("noema_generations", "Generations reaching a status", ["status"], registry=registry)
        self._webhooks = Histogram(
            "noema_webhook_apply_seconds", "Time to apply one backend webhook", registry=registry
        )
        self._deliveries = Counter(
            "noema_deliveries", "Delivery attempts by outcome", ["platform", "outcome"], registry=registry
        )
        self._backend_errors = Counter("noema_backend_errors", "GPU backend failures", ["kind"], registry=registry)
        self._by_status = Gauge(
            "noema_generations_current", "Generations in each status now", ["status"], registry=registry
        )
        self._totals = Gauge("noema_ledger_total_usd", "Sum over all accounts, USD", ["kind"], registry=registry)

    def snapshot(
        self,
        *,
        generations_by_status: Mapping[str, int],
        balance_nanos: int,
        held_nanos: int,
        written_off_nanos: int = 0,
    ) -> None:
        """Totals read from the database at scrape time (``written_off``: run costs no account paid)."""
        for status, count in generations_by_status.items():
            self._by_status.labels(status).set(count)
        self._totals.labels("balance").set(balance_nanos / 1e9)
        self._totals.labels("held").set(held_nanos / 1e9)
        self._totals.labels("written_off").set(written_off_nanos / 1e9)

    def generation_status(self, status: str) -> None:
        """A generation reached ``status``."""
        self._generations.labels(status).inc()

    def webhook_applied(self, seconds: float) -> None:
        """A webhook was applied in ``seconds``."""
        self._webhooks.observe(seconds)

    def delivery(self, platform: str, outcome: str) -> None:
        """A delivery attempt ended with ``outcome``."""
        self._deliveries.labels(platform, outcome).inc()

    def backend_error(self, kind: str) -> None:
        """The backend failed in this way."""
        self._backend_errors.labels(kind).inc()
