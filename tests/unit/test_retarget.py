"""A generation takes its deployment, GPU and price from its tool, once at creation and again on a fallback."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from noema.domain.errors import InvalidTransition
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.pricing import PriceSnapshot
from noema.domain.runs import OutputKind
from noema.domain.tools import PrimaryInput, Tool
from tests.fakes.generations import T0, make_generation


def _tool(command: str = "big", **fields: Any) -> Tool:
    return replace(
        Tool(
            id=f"dep-{command}",
            command=command,
            display_name=command,
            description="",
            inputs=(),
            primary_input=PrimaryInput.TEXT,
            output_kind=OutputKind.IMAGE,
            deployment_id=f"dep-{command}",
            machine_id=None,
            gpu="H100",
            rate_nanos_per_second=2_338_000,
            max_seconds=300.0,
            price_multiplier=1.5,
        ),
        **fields,
    )


def _target(g: Generation) -> tuple[object, ...]:
    return (g.tool_id, g.tool_command, g.deployment_id, g.gpu, g.price)


def test_a_new_generation_takes_its_tools_deployment_gpu_and_price() -> None:
    tool = _tool()
    g = Generation.for_tool(
        tool, T0, id="g", account_id="a", inputs={}, estimated_cost_nanos=1, hold_nanos=2, webhook_token_hash="h"
    )
    assert _target(g) == ("dep-big", "big", "dep-big", "H100", PriceSnapshot(2_338_000, 1.5, None, 300.0))
    assert (g.status, g.requested_at, g.updated_at) == (GenerationStatus.PENDING, T0, T0)


def test_a_pending_generation_moves_to_another_tool_with_that_tools_price() -> None:
    g = make_generation(GenerationStatus.PENDING, run_id=None, flat_price_nanos=5)
    later = T0 + timedelta(seconds=3)
    g.retarget(_tool(flat_price_nanos=40_000_000), later)
    assert _target(g) == ("dep-big", "big", "dep-big", "H100", PriceSnapshot(2_338_000, 1.5, 40_000_000, 300.0))
    assert g.updated_at == later


@pytest.mark.parametrize(
    ("status", "run_id"),
    [(GenerationStatus.PENDING, "run-1"), (GenerationStatus.SUBMITTED, "run-1"), (GenerationStatus.FAILED, None)],
)
def test_a_generation_a_backend_has_taken_or_that_ended_stays_on_its_tool(
    status: GenerationStatus, run_id: str | None
) -> None:
    g = make_generation(status, run_id=run_id)
    before = _target(g)
    with pytest.raises(InvalidTransition):
        g.retarget(_tool(), T0 + timedelta(seconds=3))
    assert _target(g) == before and g.updated_at == T0


def test_a_tool_with_only_a_flat_price_is_frozen_at_rate_zero_and_its_hold_covers_any_length() -> None:
    price = PriceSnapshot.of(_tool(rate_nanos_per_second=None, flat_price_nanos=50_000_000))
    assert price == PriceSnapshot(0, 1.5, 50_000_000, 300.0)
    assert price.covered_ms(hold_nanos=50_000_000) is None


@pytest.mark.parametrize(
    ("price", "ms", "succeeded", "cost"),
    [
        (PriceSnapshot(337_000), 10_000, True, 3_370_000),
        (PriceSnapshot(337_000, price_multiplier=1.5), 10_000, True, 5_055_000),
        (PriceSnapshot(337_000, flat_price_nanos=50_000_000), 10_000, True, 50_000_000),
        (PriceSnapshot(337_000, flat_price_nanos=50_000_000), 4_000, False, 1_348_000),
        (PriceSnapshot(337_000, flat_price_nanos=50_000_000), 600_000, False, 50_000_000),
        (PriceSnapshot(337_000, flat_price_nanos=50_000_000), 0, True, 0),
    ],
)
def test_what_a_run_costs_at_its_frozen_price(price: PriceSnapshot, ms: int, succeeded: bool, cost: int) -> None:
    assert price.cost(ms, succeeded=succeeded) == cost


def test_a_run_has_used_its_hold_at_the_first_millisecond_that_costs_it() -> None:
    price = PriceSnapshot(337_000)
    covered = price.covered_ms(hold_nanos=3_370_000)
    assert covered == 10_000
    assert price.used(covered) >= 3_370_000 > price.used(covered - 1)
