"""Telegram Stars top-ups over the payments core: offer, pre-check, credit once per charge, refund.

The invoice's payload is the id of a payment row made first. A successful payment is credited
through ``payments.apply_event`` keyed by Telegram's ``telegram_payment_charge_id``, so the same
update delivered twice (or to two replicas at once) credits once. A charge that does not fit its
row (unknown or foreign payload, or an invoice already paid once and paid again) gets a row of its
own: the money was taken, so the payer is credited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from noema.domain import stars as rules
from noema.domain.accounts import Account, Platform
from noema.domain.errors import AccountNotFound, Conflict, InvalidInput, NoemaError
from noema.domain.payments import OpenCap, Payment, PaymentProvider
from noema.ports import Clock, StarsGateway, UnitOfWorkFactory
from noema.services import accounts, economy, payments

PROVIDER = PaymentProvider.TELEGRAM_STARS
#: How long a delivery that took on a receipt may take to send it before another delivery may send it instead.
RECEIPT_LEASE = timedelta(seconds=20)


async def offer(
    uow_factory: UnitOfWorkFactory, clock: Clock, *, account_id: str, stars: int, nanos_per_star: int, most_open: int
) -> Payment:
    """The payment row an invoice for ``stars`` will carry; at most ``most_open`` unpaid invoices at a time."""
    new = payments.NewPayment(account_id, PROVIDER, rules.CURRENCY, stars, rules.credit_for(stars, nanos_per_star))
    cap = OpenCap(most_open, rules.INVOICE_LIFETIME, "invoices")
    return await payments.create(uow_factory(), clock, new, cap=cap)


async def pre_check(
    uow_factory: UnitOfWorkFactory, clock: Clock, *, payload: str, payer_account_id: str | None, stars: int
) -> str | None:
    """Why this pre-checkout must be refused, or None when the invoice may be paid."""
    async with uow_factory() as u:
        payment = await u.payments.get(payload[:36]) if payload else None
        if payment is not None and payment.provider is not PROVIDER:
            payment = None
        if payment is not None:
            account = await u.accounts.get(payment.account_id)
            if account is None or account.merged_into is not None or account.status.value != "active":
                return "This account cannot top up at the moment. /paysupport can help."
        return rules.refusal(payment, payer_account_id=payer_account_id, stars=stars, now=clock.now())


@dataclass(frozen=True)
class Charge:
    """A ``successful_payment``: who paid (their account), what, the payload and Telegram's charge id."""

    account_id: str
    payload: str
    charge_id: str
    stars: int
    currency: str
    nanos_per_star: int


async def settle(uow_factory: UnitOfWorkFactory, clock: Clock, charge: Charge) -> payments.Applied:
    """Credit a successful payment exactly once per charge id; ``replayed`` when it already was."""
    if charge.currency != rules.CURRENCY or charge.stars <= 0 or not charge.charge_id:
        raise InvalidInput("Not a Telegram Stars payment.")
    for _attempt in range(3):
        try:
            payment_id = await _row_for(uow_factory, clock, charge)
            break
        except Conflict:  # another replica made the row for this charge first: use it
            continue
    else:
        raise Conflict("The same payment is being recorded concurrently; it will be retried.")
    event = payments.ProviderEvent(
        PROVIDER,
        event_id=f"paid:{charge.charge_id}",
        event_type="successful_payment",
        payment_id=payment_id,
        external_id=charge.charge_id,
        paid=True,
        amount_minor=charge.stars,
        currency=rules.CURRENCY,
    )
    applied = await payments.apply_event(uow_factory(), clock, event)
    assert applied.payment is not None  # the row exists: it was found or made above
    return applied


async def _row_for(uow_factory: UnitOfWorkFactory, clock: Clock, charge: Charge) -> str:
    """The payment row this charge credits: its invoice's, or a new one when that does not fit."""
    async with uow_factory() as u:
        known = await u.payments.find(PROVIDER, external_id=charge.charge_id)
        if known is not None:
            return known.id
        row = await u.payments.get(charge.payload[:36]) if charge.payload else None
        if (
            row is not None
            and row.provider is PROVIDER
            and row.account_id == charge.account_id
            and not row.credited
            and row.external_id is None
        ):
            return row.id
        if await u.accounts.get(charge.account_id) is None:
            raise AccountNotFound()
        now = clock.now()
        credit = (
            row.credit_nanos * charge.stars // row.amount_minor
            if row is not None and row.provider is PROVIDER and row.amount_minor > 0
            else rules.credit_for(charge.stars, charge.nanos_per_star)
        )
        extra = Payment(
            id=u.ids.new(),
            account_id=charge.account_id,
            provider=PROVIDER,
            currency=rules.CURRENCY,
            amount_minor=charge.stars,
            credit_nanos=credit,
            created_at=now,
            updated_at=now,
            external_id=charge.charge_id,
        )
        u.payments.add(extra)
        await u.commit()
        return extra.id


async def refunded(uow_factory: UnitOfWorkFactory, clock: Clock, *, charge_id: str, stars: int) -> Payment | None:
    """Take back the credit of a refunded Stars payment (``refunded_payment``), once; None: not ours."""
    found = await payments.apply_event(uow_factory(), clock, _refund_event(charge_id, stars))
    return found.payment


def _refund_event(charge_id: str, stars: int) -> payments.ProviderEvent:
    return payments.ProviderEvent(
        PROVIDER,
        event_id=f"refund:{charge_id}",
        event_type="refunded_payment",
        external_id=charge_id,
        refunded_minor=stars,
    )


async def refund(uow_factory: UnitOfWorkFactory, clock: Clock, gateway: StarsGateway, payment_id: str) -> Payment:
    """Refund a paid Stars payment at Telegram (refundStarPayment), then take its credit back."""
    payment = await payments.get(uow_factory(), payment_id)
    if payment.provider is not PROVIDER:
        raise InvalidInput("That is not a Telegram Stars payment.")
    if not payment.credited or not payment.external_id:
        raise InvalidInput("That payment was never paid, so there is nothing to refund.")
    if payment.refunded_minor >= payment.amount_minor:
        raise InvalidInput("That payment is already refunded.")
    async with uow_factory() as u:
        identities = [i for i in await u.accounts.identities(payment.account_id) if i.platform is Platform.TELEGRAM]
    last: NoemaError = InvalidInput("The payer's Telegram account is not known, so Telegram cannot refund it.")
    for identity in identities:
        try:
            await gateway.refund(user_id=int(identity.platform_id), charge_id=payment.external_id)
            break
        except NoemaError as exc:  # another of the account's Telegram users may be the payer
            last = exc
    else:
        raise last
    applied = await payments.apply_event(uow_factory(), clock, _refund_event(payment.external_id, payment.amount_minor))
    return applied.payment or payment


class Receipt(Enum):
    """Whose turn it is to send a credited payment's receipt (see ``take_receipt``)."""

    SEND = "send"  #: this delivery sends it now, then calls ``record_receipt``
    SENT = "sent"  #: it was sent: send nothing
    BUSY = "busy"  #: another delivery took it on moments ago and may still be sending it


def _receipt_key(payment_id: str) -> str:
    return f"stars-receipt:{payment_id}"


async def take_receipt(uow_factory: UnitOfWorkFactory, clock: Clock, payment_id: str) -> Receipt:
    """Take on sending a payment's receipt, unless it was sent or another delivery is sending it now.

    The record lives in the key-value store under ``stars-receipt:<payment id>``: ``{"sent": true}``
    once sent, ``{"taken_at": ...}`` while a delivery sends it. A take older than ``RECEIPT_LEASE``
    (its process died mid-send) may be taken again, so the receipt is sent at least once; a
    sequential redelivery after a sent receipt sends nothing.
    """
    key = _receipt_key(payment_id)
    async with uow_factory() as u:
        now = clock.now()
        state = await u.kv.get_for_update(key, default={}, now=now)
        if state.get("sent"):
            return Receipt.SENT
        taken = state.get("taken_at")
        if taken is not None and now - datetime.fromisoformat(taken) < RECEIPT_LEASE:
            return Receipt.BUSY
        await u.kv.put(key, {"taken_at": now.isoformat()}, now=now)
        await u.commit()
    return Receipt.SEND


async def record_receipt(uow_factory: UnitOfWorkFactory, clock: Clock, payment_id: str, *, sent: bool) -> None:
    """Record the receipt as sent, or (``sent=False``) give it back so the next delivery sends it."""
    async with uow_factory() as u:
        await u.kv.put(_receipt_key(payment_id), {"sent": True} if sent else {}, now=clock.now())
        await u.commit()


class StarsPayments:
    """Telegram Stars payments with their units of work and clock bound once (built in bootstrap)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, *, nanos_per_star: int, most_open: int) -> None:
        self.uow_factory, self.clock = uow_factory, clock
        self.nanos_per_star, self.most_open = nanos_per_star, most_open

    async def offer(self, account_id: str, stars: int) -> Payment:
        """The payment row an invoice for ``stars`` will carry."""
        return await offer(
            self.uow_factory,
            self.clock,
            account_id=account_id,
            stars=stars,
            nanos_per_star=self.nanos_per_star,
            most_open=self.most_open,
        )

    async def pre_check(self, *, payload: str, payer_account_id: str | None, stars: int) -> str | None:
        """Why this pre-checkout must be refused, or None when the invoice may be paid."""
        return await pre_check(
            self.uow_factory, self.clock, payload=payload, payer_account_id=payer_account_id, stars=stars
        )

    async def settle(self, charge: Charge) -> payments.Applied:
        """Credit a successful payment once per charge id."""
        return await settle(self.uow_factory, self.clock, charge)

    async def take_receipt(self, payment_id: str) -> Receipt:
        """Take on sending a payment's receipt (or learn it was sent, or is being sent elsewhere)."""
        return await take_receipt(self.uow_factory, self.clock, payment_id)

    async def record_receipt(self, payment_id: str, *, sent: bool) -> None:
        """Record a receipt as sent, or give it back after a failed send."""
        await record_receipt(self.uow_factory, self.clock, payment_id, sent=sent)

    async def refunded(self, *, charge_id: str, stars: int) -> Payment | None:
        """Telegram refunded a charge: take its credit back, once."""
        return await refunded(self.uow_factory, self.clock, charge_id=charge_id, stars=stars)

    async def payer(self, telegram_user_id: str) -> str | None:
        """The account of a Telegram user, or None when they never wrote to Noema."""
        try:
            found = await accounts.by_platform(self.uow_factory(), Platform.TELEGRAM, telegram_user_id)
        except AccountNotFound:
            return None
        return found.account.id

    async def wallet(self, account_id: str) -> Account:
        """The account's balances after a payment, for the receipt."""
        return await economy.wallet(self.uow_factory(), account_id)
