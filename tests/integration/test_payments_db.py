"""The payments core on a real database: credited once, taken back by refunds and disputes, owed, verified."""

from __future__ import annotations

import asyncio
import itertools

from sqlalchemy import text

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.payments import REPAY_TYPE, TAKE_BACK_TYPE, PaymentProvider, PaymentStatus
from noema.services import accounts, economy, payments
from noema.services.payments import ProviderEvent

USD = 1_000_000_000
_ids = itertools.count()


async def _account(c: Container, pid: str = "1") -> str:
    return (await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id=pid)).account.id


async def _payment(c: Container, aid: str, cents: int = 1000, session: str = "cs_1") -> str:
    new = payments.NewPayment(aid, PaymentProvider.STRIPE, "usd", cents, cents * 10_000_000)
    created = await payments.create(c.uow(), c.clock, new)
    await payments.attach(c.uow(), c.clock, created.id, external_id=session, url="https://pay.test/" + session)
    return created.id


def _paid(session: str = "cs_1", event_id: str | None = None, cents: int = 1000) -> ProviderEvent:
    return ProviderEvent(
        PaymentProvider.STRIPE,
        event_id or f"evt_{next(_ids)}",
        "checkout.session.completed",
        external_id=session,
        payment_intent_id="pi_" + session,
        paid=True,
        amount_minor=cents,
        currency="usd",
    )


def _refunded(refunded_cents: int, session: str = "cs_1", payment_id: str | None = None) -> ProviderEvent:
    """A refund event; Stripe copies the payment id from the PaymentIntent's metadata onto the charge."""
    return ProviderEvent(
        PaymentProvider.STRIPE,
        f"evt_{next(_ids)}",
        "charge.refunded",
        payment_id=payment_id,
        payment_intent_id="pi_" + session,
        charge_id="ch_" + session,
        refunded_minor=refunded_cents,
    )


async def _balance(c: Container, aid: str) -> tuple[int, int]:
    account = await economy.wallet(c.uow(), aid)
    return account.balance_nanos, account.owed_nanos


async def _clean(c: Container) -> None:
    checked, drifts = await economy.verify(c.uow())
    assert drifts == [] and checked >= 1
    assert await payments.verify(c.uow()) == []


async def test_the_same_paid_event_delivered_twice_credits_once(container: Container) -> None:
    aid = await _account(container)
    pid = await _payment(container, aid)
    first = await payments.apply_event(container.uow(), container.clock, _paid(event_id="evt_a"))
    again = await payments.apply_event(container.uow(), container.clock, _paid(event_id="evt_a"))
    other_event = await payments.apply_event(container.uow(), container.clock, _paid(event_id="evt_b"))
    assert not first.replayed and again.replayed and not other_event.replayed
    assert await _balance(container, aid) == (10 * USD, 0)
    shown = await payments.get(container.uow(), pid)
    assert shown.status is PaymentStatus.PAID and shown.payment_intent_id == "pi_cs_1"
    await _clean(container)


async def test_racing_deliveries_of_one_payment_credit_it_once(container: Container) -> None:
    aid = await _account(container)
    await _payment(container, aid)
    events = [_paid(event_id="evt_same") for _ in range(5)] + [_paid() for _ in range(5)]
    results = await asyncio.gather(*(payments.apply_event(container.uow(), container.clock, e) for e in events))
    assert sum(r.replayed for r in results) == 4
    assert await _balance(container, aid) == (10 * USD, 0)
    await _clean(container)


async def test_a_refund_that_arrives_before_the_payment_ends_with_nothing_credited(container: Container) -> None:
    aid = await _account(container)
    pid = await _payment(container, aid)
    await payments.apply_event(container.uow(), container.clock, _refunded(1000, payment_id=pid))
    assert await _balance(container, aid) == (0, 0)
    await payments.apply_event(container.uow(), container.clock, _paid())
    assert await _balance(container, aid) == (0, 0)
    shown = await payments.get(container.uow(), pid)
    assert shown.status is PaymentStatus.REFUNDED and shown.taken_back_nanos == 10 * USD
    await _clean(container)


async def test_a_partial_refund_takes_back_its_share_and_replays_change_nothing(container: Container) -> None:
    aid = await _account(container)
    pid = await _payment(container, aid)
    await payments.apply_event(container.uow(), container.clock, _paid())
    await payments.apply_event(container.uow(), container.clock, _refunded(250))
    await payments.apply_event(container.uow(), container.clock, _refunded(250))
    assert await _balance(container, aid) == (7_500_000_000, 0)
    assert (await payments.get(container.uow(), pid)).status is PaymentStatus.PARTIALLY_REFUNDED
    # A later refund of the rest arrives with the cumulative amount; an older event after it changes nothing.
    await payments.apply_event(container.uow(), container.clock, _refunded(1000))
    await payments.apply_event(container.uow(), container.clock, _refunded(250))
    assert await _balance(container, aid) == (0, 0)
    assert (await payments.get(container.uow(), pid)).status is PaymentStatus.REFUNDED
    await _clean(container)


async def test_a_refund_after_spending_leaves_a_debt_that_the_next_credit_pays_first(container: Container) -> None:
    aid = await _account(container)
    await _payment(container, aid)
    await payments.apply_event(container.uow(), container.clock, _paid())
    await economy.debit(container.uow(), container.clock, economy.Transfer(aid, 7 * USD, description="spent"))
    await payments.apply_event(container.uow(), container.clock, _refunded(1000))
    assert await _balance(container, aid) == (0, 7 * USD)
    await _clean(container)
    await _payment(container, aid, cents=500, session="cs_2")
    await payments.apply_event(container.uow(), container.clock, _paid(session="cs_2", cents=500))
    assert await _balance(container, aid) == (0, 2 * USD)
    await economy.credit(container.uow(), container.clock, economy.Transfer(aid, 3 * USD, description="gift"))
    assert await _balance(container, aid) == (1 * USD, 0)
    entries = (await economy.transactions(container.uow(), aid, limit=20, cursor=None)).items
    kinds = [e.transaction_type for e in entries]
    assert kinds.count(REPAY_TYPE) == 2 and kinds.count(TAKE_BACK_TYPE) == 1
    assert any("owed from a refunded payment" in (e.description or "") for e in entries)
    await _clean(container)


async def test_a_dispute_takes_back_the_disputed_amount_and_records_its_fee(container: Container) -> None:
    aid = await _account(container)
    pid = await _payment(container, aid)
    await payments.apply_event(container.uow(), container.clock, _paid())
    dispute = ProviderEvent(
        PaymentProvider.STRIPE,
        "evt_dispute",
        "charge.dispute.created",
        payment_intent_id="pi_cs_1",
        charge_id="ch_cs_1",
        disputed_minor=1000,
        dispute_fee_minor=1500,
    )
    await payments.apply_event(container.uow(), container.clock, dispute)
    shown = await payments.get(container.uow(), pid)
    assert shown.status is PaymentStatus.DISPUTED and shown.dispute_fee_minor == 1500
    assert await _balance(container, aid) == (0, 0)
    await _clean(container)


async def test_an_event_for_a_payment_noema_never_made_changes_nothing(container: Container) -> None:
    aid = await _account(container)
    applied = await payments.apply_event(container.uow(), container.clock, _paid(session="cs_unknown"))
    assert applied.payment is None
    assert await _balance(container, aid) == (0, 0)


async def test_verify_reports_payments_that_disagree_with_the_ledger(container: Container) -> None:
    aid = await _account(container)
    await _payment(container, aid)
    await payments.apply_event(container.uow(), container.clock, _paid())
    async with container.engine.begin() as conn:
        await conn.execute(text("UPDATE payments SET credit_nanos = credit_nanos + 1"))
    drifts = await payments.verify(container.uow())
    assert [(d.account_id, d.credited_nanos - d.ledger_credited_nanos) for d in drifts] == [(aid, 1)]
