"""Payments: create the row, apply what the provider says about it (credit once, take back), list, verify.

Every provider event goes through ``apply_event``: the payment row is locked, the event id is
checked and recorded, and the credit, the take-backs and the status change commit together. A
replayed event, a second event for the same payment or two deliveries racing each other find the
row already settled and change nothing; the ledger's unique idempotency keys back that up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from noema.domain import ledger
from noema.domain import payments as rules
from noema.domain.accounts import Account
from noema.domain.errors import AccountNotFound, Conflict, PaymentNotFound
from noema.domain.money import display_usd, format_usd
from noema.domain.payments import Payment, PaymentProvider, PaymentStatus
from noema.ports import Clock, Page, UnitOfWork
from noema.services import events
from noema.services.economy import post, repay_owed


@dataclass(frozen=True)
class NewPayment:
    """A payment about to be offered: who pays, through whom, how much, for what credit."""

    account_id: str
    provider: PaymentProvider
    currency: str
    amount_minor: int
    credit_nanos: int


async def create(uow: UnitOfWork, clock: Clock, new: NewPayment, *, cap: rules.OpenCap | None = None) -> Payment:
    """The payment row, made before the provider is asked, so its id can travel with the payment.

    With ``cap``, refused (nothing made) while the account has that many open ones of the provider;
    the account row is locked, so concurrent requests cannot slip past the cap together.
    """
    async with uow:
        if await uow.accounts.get(new.account_id, for_update=cap is not None) is None:
            raise AccountNotFound()
        now = clock.now()
        if cap is not None:
            opened = await uow.payments.opened_since(new.account_id, new.provider, now - cap.lifetime)
            rules.check_open(opened, cap, now)
        payment = Payment(
            id=uow.ids.new(),
            account_id=new.account_id,
            provider=new.provider,
            currency=new.currency,
            amount_minor=new.amount_minor,
            credit_nanos=new.credit_nanos,
            created_at=now,
            updated_at=now,
        )
        uow.payments.add(payment)
        await uow.commit()
        return payment


async def attach(
    uow: UnitOfWork, clock: Clock, payment_id: str, *, external_id: str | None, url: str | None, failed: bool = False
) -> Payment:
    """Record the provider's id and checkout URL (or that asking the provider failed)."""
    async with uow:
        payment = await uow.payments.get(payment_id, for_update=True)
        if payment is None:
            raise PaymentNotFound()
        if external_id and payment.external_id is None:
            payment.external_id = external_id
        payment.checkout_url = url or payment.checkout_url
        if failed and not payment.credited:
            payment.status = PaymentStatus.FAILED
        payment.updated_at = clock.now()
        await uow.commit()
        return payment


@dataclass(frozen=True)
class ProviderEvent:
    """What a provider says about one payment; refunded amounts are cumulative, as providers send them."""

    provider: PaymentProvider
    event_id: str
    event_type: str
    payment_id: str | None = None
    external_id: str | None = None
    payment_intent_id: str | None = None
    charge_id: str | None = None
    paid: bool = False
    amount_minor: int | None = None
    currency: str | None = None
    refunded_minor: int | None = None
    disputed_minor: int | None = None
    dispute_fee_minor: int | None = None
    reinstated_minor: int | None = None  #: of the disputed amount, what a dispute won gave back
    expired: bool = False
    failed: bool = False


@dataclass(frozen=True)
class Applied:
    """The payment after an event (None when the event is not about a payment of ours)."""

    payment: Payment | None
    replayed: bool


async def apply_event(uow: UnitOfWork, clock: Clock, event: ProviderEvent) -> Applied:
    """Apply one provider event exactly once; a concurrent duplicate retries and finds it applied."""
    for _attempt in range(3):
        try:
            return await _apply(uow, clock, event)
        except Conflict:
            continue
    raise Conflict("The same payment event is being applied concurrently; it will be retried.")


async def _locate(uow: UnitOfWork, event: ProviderEvent) -> Payment | None:
    if event.payment_id:
        found = await uow.payments.get(event.payment_id, for_update=True)
        if found is not None and found.provider is event.provider:
            return found
    return await uow.payments.find(
        event.provider,
        external_id=event.external_id,
        payment_intent_id=event.payment_intent_id,
        charge_id=event.charge_id,
        for_update=True,
    )


async def _apply(uow: UnitOfWork, clock: Clock, event: ProviderEvent) -> Applied:
    async with uow:
        payment = await _locate(uow, event)
        if await uow.payments.seen_event(event.provider, event.event_id):
            return Applied(payment, replayed=True)
        now = clock.now()
        await uow.payments.record_event(
            event.provider,
            event.event_id,
            event_type=event.event_type,
            payment_id=payment.id if payment else None,
            at=now,
        )
        if payment is None:
            await uow.commit()
            return Applied(None, replayed=False)
        account = await uow.accounts.get(payment.account_id, for_update=True)
        if account is None:
            raise AccountNotFound()
        _learn(payment, event)
        if event.paid and not payment.credited:
            _credit(uow, payment, account, now)
        _settle_reversals(uow, payment, account, now, event.event_id)
        status = rules.status_of(payment)
        if not payment.credited and (event.expired or event.failed):
            status = PaymentStatus.EXPIRED if event.expired else PaymentStatus.FAILED
        if status is not payment.status:
            events.record(
                uow,
                "payment_" + status.value,
                now=now,
                account_id=account.id,
                data={"paymentId": payment.id, "provider": payment.provider.value, "eventId": event.event_id},
            )
        payment.status, payment.updated_at = status, now
        await uow.commit()
        return Applied(payment, replayed=False)


def _learn(payment: Payment, event: ProviderEvent) -> None:
    """Take the ids and the cumulative amounts the event carries (never lowering what is known)."""
    payment.external_id = payment.external_id or event.external_id
    payment.payment_intent_id = payment.payment_intent_id or event.payment_intent_id
    payment.charge_id = payment.charge_id or event.charge_id
    if event.paid and event.amount_minor and event.amount_minor != payment.amount_minor and not payment.credited:
        # What the provider took is what counts; the credit follows it at the row's rate.
        payment.credit_nanos = payment.credit_nanos * event.amount_minor // payment.amount_minor
        payment.amount_minor = event.amount_minor
    if event.refunded_minor is not None:
        payment.refunded_minor = max(payment.refunded_minor, event.refunded_minor)
    if event.disputed_minor is not None:
        payment.disputed_minor = max(payment.disputed_minor, event.disputed_minor)
    if event.dispute_fee_minor is not None:
        if event.reinstated_minor is not None:  # won: the net fee after Stripe returned it (its last word)
            payment.dispute_fee_minor = event.dispute_fee_minor
        elif not payment.dispute_reinstated_minor:  # an older event arriving after the win changes nothing
            payment.dispute_fee_minor = max(payment.dispute_fee_minor, event.dispute_fee_minor)
    if event.reinstated_minor is not None:
        payment.dispute_reinstated_minor = max(payment.dispute_reinstated_minor, event.reinstated_minor)


def _credit(uow: UnitOfWork, payment: Payment, account: Account, now: datetime) -> None:
    payment.paid_at = now
    post(
        uow,
        account,
        ledger.credit(account, payment.credit_nanos),
        key=payment.credit_key,
        now=now,
        transaction_type=rules.CREDIT_TYPE,
        description=f"Top-up of {display_usd(payment.credit_nanos)} ({payment.provider.value})",
        data={"paymentId": payment.id, "provider": payment.provider.value, "externalId": payment.external_id},
    )
    repay_owed(uow, account, key=payment.credit_key, now=now)
    events.record(
        uow,
        "credits_added",
        now=now,
        account_id=account.id,
        data={"amountUsd": format_usd(payment.credit_nanos), "paymentId": payment.id},
    )


def _settle_reversals(uow: UnitOfWork, payment: Payment, account: Account, now: datetime, event_id: str) -> None:
    """Bring what was taken back to what refunds and disputes reversed: take more, or give some back."""
    target = rules.owed_back(payment)
    if not payment.credited or target == payment.taken_back_nanos:
        return
    # One entry per event at most, and every event is applied once: the event names the entry.
    key = f"{payment.credit_key}:{hashlib.sha256(event_id.encode()).hexdigest()[:24]}"
    if target < payment.taken_back_nanos:
        _give_back(uow, payment, account, now, key=key)
    else:
        _take_back(uow, payment, account, now, key=key)


def _take_back(uow: UnitOfWork, payment: Payment, account: Account, now: datetime, *, key: str) -> None:
    """Take back what refunds and disputes reversed and was not taken yet; the uncovered part is owed."""
    target = rules.owed_back(payment)
    due = target - payment.taken_back_nanos
    result = rules.take_back(account, due)
    payment.taken_back_nanos = target
    account.updated_at = now
    if result.posting is not None:
        post(
            uow,
            account,
            result.posting,
            key=f"{key}:back",
            now=now,
            transaction_type=rules.TAKE_BACK_TYPE,
            description=f"Taken back {display_usd(due)}: payment {payment.id[:8]} was refunded or disputed",
            data={"paymentId": payment.id, "dueUsd": format_usd(due), "owedUsd": format_usd(result.owed_nanos)},
        )


def _give_back(uow: UnitOfWork, payment: Payment, account: Account, now: datetime, *, key: str) -> None:
    """Give back credit taken for a dispute that was then won; what the account owes is paid from it first."""
    amount = payment.taken_back_nanos - rules.owed_back(payment)
    payment.taken_back_nanos -= amount
    post(
        uow,
        account,
        ledger.credit(account, amount),
        key=f"{key}:give",
        now=now,
        transaction_type=rules.GIVE_BACK_TYPE,
        description=f"Given back {display_usd(amount)}: the dispute over payment {payment.id[:8]} was won",
        data={"paymentId": payment.id, "amountUsd": format_usd(amount)},
    )
    repay_owed(uow, account, key=key, now=now)


async def get(uow: UnitOfWork, payment_id: str, *, account_id: str | None = None) -> Payment:
    """One payment (only the account's own when ``account_id`` is given)."""
    async with uow:
        payment = await uow.payments.get(payment_id)
        if payment is None or (account_id is not None and payment.account_id != account_id):
            raise PaymentNotFound()
        return payment


async def list_payments(uow: UnitOfWork, *, account_id: str | None, limit: int, cursor: str | None) -> Page[Payment]:
    """Payments, newest first: one account's, or everyone's."""
    async with uow:
        return await uow.payments.list(account_id=account_id, limit=limit, cursor=cursor)


@dataclass(frozen=True)
class PaymentDrift:
    """An account whose payment entries disagree with its payments (credit given, credit taken back)."""

    account_id: str
    credited_nanos: int
    ledger_credited_nanos: int
    taken_back_nanos: int
    ledger_taken_back_nanos: int


async def verify(uow: UnitOfWork) -> list[PaymentDrift]:
    """Per account: credits from payments minus what was taken back must be what the payments say."""
    async with uow:
        totals = await uow.payments.totals()
    drifts = []
    for account_id, t in sorted(totals.items()):
        ledger_credited = t.posted.get(rules.CREDIT_TYPE, 0)
        # Taken back = debited at once + paid back later + still owed - given back after a dispute won.
        posted = t.posted.get
        ledger_taken = posted(rules.TAKE_BACK_TYPE, 0) + posted(rules.REPAY_TYPE, 0) + t.owed_nanos
        ledger_taken -= posted(rules.GIVE_BACK_TYPE, 0)
        if (ledger_credited, ledger_taken) != (t.credited_nanos, t.taken_back_nanos):
            drifts.append(PaymentDrift(account_id, t.credited_nanos, ledger_credited, t.taken_back_nanos, ledger_taken))
    return drifts
