"""Asking for a generation: holds, limits, idempotency and failover, on the in-memory unit of work.

The same rules run end to end on both databases in tests/e2e (test_money_limits, test_generations_api);
here they run in milliseconds, so every branch can have its own test.
"""

from __future__ import annotations

import pytest

from noema.domain.errors import (
    AmountOwed,
    BackendOutcomeUnknown,
    BackendRejected,
    BackendUnavailable,
    Conflict,
    InsufficientFunds,
    LimitExceeded,
)
from noema.domain.generation import GenerationStatus
from noema.services import economy
from noema.services.generations import Limits
from tests.unit.service_world import world


async def test_a_request_holds_money_then_submits_the_run_with_a_webhook_naming_the_generation() -> None:
    w = world()
    aid = await w.account(usd=1)
    g = await w.service.request(w.ask(aid))
    assert g.status is GenerationStatus.SUBMITTED and g.run_id == "run-1"
    assert [r.deployment_id for r in w.backend.runs] == ["dep-txt2img"]
    assert f"generation_id={g.id}&token=" in (w.backend.runs[0].webhook_url or "")
    wallet = await economy.wallet(w.uows(), aid)
    assert wallet.held_nanos == g.hold_nanos > 0 and wallet.balance_nanos == 1_000_000_000
    async with w.uows() as uow:
        hold = await uow.ledger.by_key(f"hold:{g.id}")
    assert hold is not None and hold.held_delta == g.hold_nanos


async def test_a_request_the_free_balance_cannot_cover_is_refused_and_changes_nothing() -> None:
    w = world()
    aid = await w.account(usd=0)
    with pytest.raises(InsufficientFunds) as info:
        await w.service.request(w.ask(aid))
    details = info.value.details
    assert details is not None and details["currentBalance"] == "0.000000000"
    assert w.backend.runs == []
    assert w.uows.tables.generations == {} and w.uows.tables.ledger == {}


async def test_money_owed_from_a_refund_blocks_new_runs() -> None:
    w = world()
    aid = await w.account(usd=1)
    async with w.uows() as uow:
        account = await uow.accounts.get(aid)
        assert account is not None
        account.owed_nanos = 5
        await uow.commit()
    with pytest.raises(AmountOwed):
        await w.service.request(w.ask(aid))
    assert w.backend.runs == []


async def test_one_more_live_generation_than_the_cap_is_refused() -> None:
    w = world(Limits(max_concurrent=2, per_minute=100))
    aid = await w.account(usd=5)
    for n in range(2):
        await w.service.request(w.ask(aid, f"fox {n}"))
    with pytest.raises(LimitExceeded, match="already have 2 generations running"):
        await w.service.request(w.ask(aid, "one too many"))
    other = await w.account(usd=5, platform_id="2")
    assert (await w.service.request(w.ask(other))).status is GenerationStatus.SUBMITTED  # the cap is per account


async def test_the_per_minute_cap_refuses_until_the_minute_has_passed() -> None:
    w = world(Limits(max_concurrent=100, per_minute=2))
    aid = await w.account(usd=5)
    for n in range(2):
        await w.service.request(w.ask(aid, f"fox {n}"))
    with pytest.raises(LimitExceeded, match="At most 2 generations a minute"):
        await w.service.request(w.ask(aid, "too soon"))
    w.clock.advance(seconds=61)
    assert (await w.service.request(w.ask(aid, "later"))).status is GenerationStatus.SUBMITTED


async def test_the_same_idempotency_key_returns_the_first_generation_and_holds_once() -> None:
    w = world()
    aid = await w.account(usd=1)
    first = await w.service.request(w.ask(aid, idempotency_key="k-1"))
    again = await w.service.request(w.ask(aid, idempotency_key="k-1"))
    assert again.id == first.id and len(w.backend.runs) == 1
    assert (await economy.wallet(w.uows(), aid)).held_nanos == first.hold_nanos


async def test_an_idempotency_key_reused_for_a_different_request_is_a_conflict() -> None:
    w = world()
    aid = await w.account(usd=1)
    await w.service.request(w.ask(aid, "a fox", idempotency_key="k-1"))
    with pytest.raises(Conflict, match="different request"):
        await w.service.request(w.ask(aid, "a wolf", idempotency_key="k-1"))
    assert len(w.uows.tables.generations) == 1


@pytest.mark.parametrize(
    "error", [BackendUnavailable("down"), BackendRejected(status=503), BackendRejected(status=429)]
)
async def test_a_deployment_that_did_not_take_the_run_hands_it_to_the_fallback_at_its_price(
    error: BackendUnavailable | BackendRejected,
) -> None:
    w = world()
    aid = await w.account(usd=5)
    w.backend.fail_next("dep-txt2img", error)
    g = await w.service.request(w.ask(aid, fallbacks=("big",)))
    big = await w.catalog.find("big")
    assert g.status is GenerationStatus.SUBMITTED and g.deployment_id == "dep-big"
    assert (g.tool_id, g.gpu, g.rate_nanos_per_second) == (big.id, "H100", big.rate_nanos_per_second)
    assert [r.deployment_id for r in w.backend.runs] == ["dep-big"]
    assert w.metrics.counts[f"backend_error:{type(error).__name__}"] == 1


async def test_an_unknown_outcome_is_never_sent_to_a_fallback_and_the_hold_is_released() -> None:
    w = world()
    aid = await w.account(usd=5)
    w.backend.fail_next("dep-txt2img", BackendOutcomeUnknown("no answer"))
    g = await w.service.request(w.ask(aid, fallbacks=("big",)))
    assert g.status is GenerationStatus.FAILED and w.backend.runs == []
    wallet = await economy.wallet(w.uows(), aid)
    assert (wallet.held_nanos, wallet.balance_nanos) == (0, 5_000_000_000)


async def test_a_backend_refusal_without_a_fallback_fails_the_generation_for_free() -> None:
    w = world()
    aid = await w.account(usd=1)
    w.backend.fail_next("dep-txt2img", BackendRejected(status=500))
    g = await w.service.request(w.ask(aid))
    assert g.status is GenerationStatus.FAILED and "could not start the run" in (g.failure_reason or "")
    wallet = await economy.wallet(w.uows(), aid)
    assert (wallet.held_nanos, wallet.balance_nanos) == (0, 1_000_000_000)
