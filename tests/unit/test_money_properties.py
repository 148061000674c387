"""For any runs, durations and faults: no account pays more than its hold, nor less than its cost unrecorded.

Each example takes one wallet through a batch of runs with the real rules: the hold each run gets
(``hold_for``), the state machine, the reconciler's decisions (``over_time``, ``over_budget``),
the price of what ran (``cost_of_run``) and settlement (``ledger.settle``). The reconciler may be
late by up to a minute; only what ran during that lateness may ever be written off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noema.domain import ledger
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.pricing import charge_nanos, hold_for
from noema.domain.runs import RunStatus, RunUpdate
from noema.services.settlement import cost_of_run
from tests.fakes.generations import T0, make_generation

RATES = [40_000, 180_000, 337_000, 596_000, 2_338_000]  # CPU, T4, A10G, L40S, H100 nanos per second


@dataclass
class Wallet:
    balance_nanos: int
    held_nanos: int = 0


@dataclass(frozen=True)
class Run:
    rate: int
    multiplier: float
    flat: int | None
    max_seconds: float
    expected_seconds: float
    duration_ms: int  #: how long it would run if nobody stopped it
    ending: RunStatus  #: how it would end by itself
    lag_ms: int  #: how late the reconciler looks after the run is due


runs = st.builds(
    Run,
    rate=st.sampled_from(RATES),
    multiplier=st.sampled_from([0.5, 1.0, 1.2, 3.0]),
    flat=st.none() | st.integers(1, 50_000_000),
    max_seconds=st.sampled_from([5.0, 60.0, 900.0]),
    expected_seconds=st.floats(0.1, 120.0),
    duration_ms=st.integers(0, 1_200_000),
    ending=st.sampled_from([RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED]),
    lag_ms=st.sampled_from([0, 0, 1, 250, 60_000]),
)


def _generation(run: Run, held: int, estimate: int) -> Generation:
    return make_generation(
        GenerationStatus.RUNNING,
        rate_nanos_per_second=run.rate,
        price_multiplier=run.multiplier,
        flat_price_nanos=run.flat,
        max_runtime_seconds=run.max_seconds,
        hold_nanos=held,
        estimated_cost_nanos=estimate,
        started_at=T0,
    )


def _play(g: Generation, run: Run) -> None:
    """The run ends by itself, unless the reconciler, looking when it is due (and late), stops it first.

    A run found neither over its time nor its hold stays due, so the reconciler's next pass (a
    millisecond later here) looks again.
    """
    ends_at = T0 + timedelta(milliseconds=run.duration_ms)
    looks_at = g.check_at() + timedelta(milliseconds=run.lag_ms)
    for _ in range(3):
        if ends_at <= looks_at:
            break
        if g.over_time(looks_at):
            g.finish(GenerationStatus.TIMED_OUT, looks_at, reason="time")
            return
        if g.over_budget(looks_at):
            g.stop_at_hold(looks_at, reason="hold")
            return
        looks_at += timedelta(milliseconds=1)
    g.apply(RunUpdate(run_id="run-1", status=run.ending, started_at=T0, ended_at=ends_at, confirmed=True), ends_at)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(balance=st.integers(0, 2_000_000_000), batch=st.lists(runs, min_size=1, max_size=8))
def test_no_account_pays_more_than_its_hold_or_less_than_its_cost_unless_a_shortfall_is_recorded(
    balance: int, batch: list[Run]
) -> None:
    wallet = Wallet(balance)
    started: list[tuple[Run, Generation]] = []
    for run in batch:  # every run is asked for before any ends: holds overlap as in a busy account
        estimate = run.flat if run.flat is not None else max(1, round(run.rate * run.expected_seconds * run.multiplier))
        ceiling = run.flat if run.flat is not None else max(1, round(run.rate * run.max_seconds * run.multiplier) + 1)
        held = hold_for(free=wallet.balance_nanos - wallet.held_nanos, estimate=estimate, ceiling=ceiling)
        if held is None:
            assert wallet.balance_nanos - wallet.held_nanos < estimate  # refused only when it cannot cover the estimate
            continue
        ledger.hold(wallet, held)
        started.append((run, _generation(run, held, estimate)))
    spent = 0
    for run, g in reversed(started):
        _play(g, run)
        assert g.is_terminal
        cost = cost_of_run(g)
        result = ledger.settle(wallet, held=g.hold_nanos, cost=cost)
        spent += result.charged_nanos
        assert result.charged_nanos <= g.hold_nanos
        assert result.charged_nanos + result.shortfall_nanos == cost
        assert wallet.balance_nanos >= 0 and wallet.held_nanos >= 0
        if g.status in (GenerationStatus.FAILED, GenerationStatus.TIMED_OUT):
            assert cost == 0
        # Only the reconciler's lateness can be written off: the GPU time past the hold before it looked.
        lateness = charge_nanos(run.rate, run.lag_ms + 3, price_multiplier=run.multiplier)
        assert result.shortfall_nanos <= (lateness if run.flat is None else 0)
    assert wallet.held_nanos == 0
    assert wallet.balance_nanos == balance - spent
