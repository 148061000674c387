"""Building Generation objects for pure tests."""

from __future__ import annotations

from datetime import UTC, datetime

from noema.domain.generation import Generation, GenerationStatus

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def make_generation(status: GenerationStatus = GenerationStatus.SUBMITTED, **fields: object) -> Generation:
    """A txt2img generation on an A10G with a $0.01011 hold; ``fields`` override anything."""
    g = Generation(
        id="g",
        account_id="a",
        tool_id="t",
        tool_command="txt2img",
        deployment_id="d",
        inputs={},
        rate_nanos_per_second=337_000,
        estimated_cost_nanos=10_110_000,
        hold_nanos=10_110_000,
        webhook_token_hash="h",
        requested_at=T0,
        updated_at=T0,
        run_id="run-1",
        submitted_at=T0,
        status=status,
    )
    for key, value in fields.items():
        setattr(g, key, value)
    return g
