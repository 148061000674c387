"""Prometheus metrics for what the services count."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class PrometheusMetrics:
    """Counters and histograms in one registry per process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._generations = Counter("noema_generations", "Generations reaching a status", ["status"], registry=registry)
        self._webhooks = Histogram(
            "noema_webhook_apply_seconds", "Time to apply one backend webhook", registry=registry
        )
        self._deliveries = Counter(
            "noema_deliveries", "Delivery attempts by outcome", ["platform", "outcome"], registry=registry
        )
        self._backend_errors = Counter("noema_backend_errors", "GPU backend failures", ["kind"], registry=registry)
        self._ledger = Counter("noema_ledger_nanos", "Nano-USD moved by ledger entries", ["kind"], registry=registry)

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

    def ledger_posted(self, kind: str, nanos: int) -> None:
        """A ledger entry of ``kind`` moved ``nanos``."""
        self._ledger.labels(kind).inc(nanos)
