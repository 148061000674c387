"""Card top-ups through a hosted checkout: make the payment row, open the checkout, refund.

Credit is never given here: only the provider's signed confirmation (``payments.apply_event``)
credits a payment. A refund asks the provider; its refund webhook takes the credit back, so a
refund is counted once however many times it is asked for or reported.
"""

from __future__ import annotations

from dataclasses import replace

from noema.domain.errors import InvalidInput, NoemaError
from noema.domain.payments import CHECKOUT_LIFETIME, OpenCap, Payment, PaymentProvider, cents_to_nanos, choose_amount
from noema.ports import CardGateway, Clock, UnitOfWork, UnitOfWorkFactory
from noema.services import payments


async def start_checkout(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    gateway: CardGateway,
    *,
    account_id: str,
    amount_cents: int,
    public_url: str,
    most_open: int,
) -> Payment:
    """A payment row, then its checkout at the provider; at most ``most_open`` unpaid checkouts at a time."""
    new = payments.NewPayment(account_id, PaymentProvider.STRIPE, "usd", amount_cents, cents_to_nanos(amount_cents))
    cap = OpenCap(most_open, CHECKOUT_LIFETIME, "checkouts")
    payment = await payments.create(uow_factory(), clock, new, cap=cap)
    try:
        session = await gateway.create_checkout(
            payment_id=payment.id,
            account_id=account_id,
            amount_cents=amount_cents,
            success_url=f"{public_url}/app/topup/done?payment={payment.id}",
            cancel_url=f"{public_url}/app/account?topup=cancelled",
        )
    except NoemaError:
        await payments.attach(uow_factory(), clock, payment.id, external_id=None, url=None, failed=True)
        raise
    return await payments.attach(uow_factory(), clock, payment.id, external_id=session.id, url=session.url)


async def apply_event(
    uow_factory: UnitOfWorkFactory, clock: Clock, gateway: CardGateway, event: payments.ProviderEvent
) -> payments.Applied:
    """Apply a provider event; one that names only a charge (a dispute) is matched through the charge."""
    if event.payment_id is None and event.charge_id and event.external_id is None:
        async with uow_factory() as u:
            known = await u.payments.find(event.provider, charge_id=event.charge_id)
        if known is None:  # before the checkout's own event told us the charge: ask the provider
            event = replace(event, payment_id=await gateway.payment_of_charge(event.charge_id))
    return await payments.apply_event(uow_factory(), clock, event)


async def refund(
    uow: UnitOfWork, gateway: CardGateway, payment_id: str, *, amount_minor: int | None = None
) -> tuple[Payment, str]:
    """Ask the provider to refund (part of) a paid card payment; returns the payment and the refund id."""
    payment = await payments.get(uow, payment_id)
    if payment.provider is not PaymentProvider.STRIPE:
        raise InvalidInput("Only card payments are refunded here.")
    if not payment.credited or not payment.payment_intent_id:
        raise InvalidInput("That payment was never paid, so there is nothing to refund.")
    left = payment.amount_minor - payment.refunded_minor - payment.disputed_minor
    if left <= 0:
        raise InvalidInput("That payment is already refunded (or disputed) in full.")
    if amount_minor is not None and not 0 < amount_minor <= left:
        raise InvalidInput(f"A refund must be between 0.01 and {left / 100:.2f} {payment.currency.upper()}.")
    # The same refund asked twice (a retried command) is one refund at the provider.
    key = f"refund-{payment.id}-{payment.refunded_minor}-{amount_minor or left}"
    refund_id = await gateway.refund(
        payment_intent_id=payment.payment_intent_id, amount_minor=amount_minor, idempotency_key=key
    )
    return payment, refund_id


class CardPayments:
    """Card top-ups with their gateway, return URL and limits bound once (built in bootstrap with Stripe)."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        gateway: CardGateway,
        *,
        public_url: str,
        amounts: tuple[int, ...],
        most_open: int,
    ) -> None:
        self.uow_factory, self.clock, self.gateway = uow_factory, clock, gateway
        self.public_url, self.amounts, self.most_open = public_url, amounts, most_open

    async def checkout(self, account_id: str, amount_usd: str) -> Payment:
        """Start a checkout of one of the offered ``amounts`` (``amount_usd`` as the user gave it)."""
        cents = choose_amount(amount_usd, self.amounts)
        return await start_checkout(
            self.uow_factory,
            self.clock,
            self.gateway,
            account_id=account_id,
            amount_cents=cents,
            public_url=self.public_url,
            most_open=self.most_open,
        )

    async def apply(self, event: payments.ProviderEvent) -> payments.Applied:
        """Apply a verified provider event (credit once, take back a refund or a dispute)."""
        return await apply_event(self.uow_factory, self.clock, self.gateway, event)
