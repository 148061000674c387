"""What a finished generation costs and how its hold is settled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from noema.domain import ledger
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.runs import RunStatus, RunUpdate
from noema.services.settlement import cost_of_run
from tests.fakes.generations import T0, make_generation

S = GenerationStatus


def _finished(status: GenerationStatus, seconds: float | None, **kw: object) -> Generation:
    return make_generation(
        status, started_at=T0 if seconds is not None else None, finished_at=T0 + timedelta(seconds=seconds or 0), **kw
    )


@pytest.mark.parametrize(
    ("status", "seconds", "extra", "cost"),
    [
        (S.SUCCEEDED, 10.5, {}, 3_538_500),  # 10.5 s of A10G
        (S.SUCCEEDED, 0.001, {}, 337),
        (S.SUCCEEDED, 10.0, {"price_multiplier": 1.5}, 5_055_000),
        (S.SUCCEEDED, 10.0, {"flat_price_nanos": 50_000_000}, 50_000_000),  # flat price wins on success
        (S.CANCELLED, 4.0, {}, 1_348_000),  # cancelled: the seconds used
        (S.CANCELLED, 4.0, {"flat_price_nanos": 50_000_000}, 1_348_000),  # ... by the rate, never the flat price
        (S.CANCELLED, 600.0, {"flat_price_nanos": 50_000_000}, 50_000_000),  # ... and never more than it
        (S.CANCELLED, None, {}, 0),  # cancelled before running
        (S.FAILED, 30.0, {}, 0),  # failures are never charged
        (S.TIMED_OUT, 900.0, {}, 0),
    ],
)
def test_what_a_finished_run_costs(
    status: GenerationStatus, seconds: float | None, extra: dict[str, object], cost: int
) -> None:
    assert cost_of_run(_finished(status, seconds, **extra)) == cost


@dataclass
class Wallet:
    balance_nanos: int
    held_nanos: int


@pytest.mark.parametrize(
    ("balance", "cost", "charged", "shortfall", "after"),
    [
        (1_000_000_000, 3_538_500, 3_538_500, 0, 996_461_500),
        (10_110_000, 20_000_000, 10_110_000, 9_890_000, 0),  # longer than held: the hold is the most charged
        (1_000_000_000, 20_000_000, 10_110_000, 9_890_000, 989_890_000),  # ... even with money to spare
        (10_110_000, 0, 0, 0, 10_110_000),
    ],
)
def test_settling_a_hold_charges_the_cost_and_never_goes_negative(
    balance: int, cost: int, charged: int, shortfall: int, after: int
) -> None:
    wallet = Wallet(balance, 10_110_000)
    result = ledger.settle(wallet, held=10_110_000, cost=cost)
    assert (result.charged_nanos, result.shortfall_nanos) == (charged, shortfall)
    assert (wallet.balance_nanos, wallet.held_nanos) == (after, 0)


def test_a_run_is_charged_at_the_rate_of_the_machine_its_backend_says_ran_it() -> None:
    # Held at an L40S (the dearest server able to run the tool), run on an A10G: charged as an A10G.
    g = make_generation(S.RUNNING, rate_nanos_per_second=596_000, hold_nanos=20_000_000, started_at=T0)
    end = T0 + timedelta(seconds=10)
    g.apply(
        RunUpdate(
            run_id="run-1",
            status=RunStatus.SUCCESS,
            started_at=T0,
            ended_at=end,
            confirmed=True,
            rate_nanos_per_second=337_000,
        ),
        end,
    )
    assert g.rate_nanos_per_second == 337_000 and cost_of_run(g) == 3_370_000


def test_a_rate_in_an_unconfirmed_update_is_ignored() -> None:
    # A webhook body (anyone holding its URL can post one) never sets the price.
    g = make_generation(S.RUNNING, started_at=T0)
    g.apply(RunUpdate(run_id="run-1", status=RunStatus.RUNNING, rate_nanos_per_second=1), T0 + timedelta(seconds=1))
    assert g.rate_nanos_per_second == 337_000
