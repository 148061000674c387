"""Telegram Stars in the chat: /topup packages, invoices, pre-checkout answers, receipts, refunds.

Every invoice's payload is a payment row made first; the credit is given only on Telegram's
``successful_payment`` (exactly once per charge id, in ``stars_payments``), never on a button press.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import structlog
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.ext import Application, ContextTypes, MessageHandler, PreCheckoutQueryHandler, filters

from noema.domain.accounts import Platform
from noema.domain.chat_commands import ParsedCommand
from noema.domain.errors import InvalidInput, NoemaError
from noema.domain.linking import CODE_LIFETIME
from noema.domain.money import display_usd
from noema.domain.payments import Payment
from noema.domain.stars import CURRENCY, credit_for
from noema.services import stars_payments
from noema.services.chat import ChatServices, ChatUser
from noema.services.stars_payments import RECEIPT_LEASE, Receipt, StarsPayments

if TYPE_CHECKING:
    from noema.adapters.platforms.telegram.handlers import Caller

log = structlog.get_logger(__name__)
TRY_AGAIN = "Payments are busy right now; nothing was charged. Please try again in a minute."
#: Set when a paid charge could not be credited or its receipt could not be sent: the webhook then
#: answers 500 so that Telegram delivers the same update again (crediting is keyed by the charge id,
#: so the retry credits once; the receipt is recorded once sent, so the retry sends it once).
REDELIVER: ContextVar[bool] = ContextVar("telegram_redeliver", default=False)
#: How often a delivery looks again while another one is sending the same receipt.
RECEIPT_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class StarsOffer:
    """What /topup offers (star packages), the /paysupport text, and the Stars payments service."""

    packages: tuple[int, ...]
    support_text: str
    payments: StarsPayments  #: knows the credit per star and how many invoices may be open at once


def topup_button() -> InlineKeyboardMarkup:
    """The "Top up" button under /status and under an insufficient-funds message."""
    return InlineKeyboardMarkup([[InlineKeyboardButton("⭐ Top up with Stars", callback_data="topup:")]])


class TelegramPayments:
    """The Stars commands, buttons and payment updates over ``stars_payments``."""

    def __init__(self, chat: ChatServices, offer: StarsOffer) -> None:
        self.chat, self.offer, self.stars = chat, offer, offer.payments

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Answer pre-checkout queries, credit successful payments, take back refunded ones."""
        app.add_handler(PreCheckoutQueryHandler(self.on_pre_checkout))
        app.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, self.on_paid))
        app.add_handler(MessageHandler(filters.StatusUpdate.REFUNDED_PAYMENT, self.on_refunded))

    def packages(self) -> InlineKeyboardMarkup:
        """One button per package, each showing the credit it buys."""
        rows = [
            [
                InlineKeyboardButton(
                    f"⭐ {stars} → {display_usd(credit_for(stars, self.stars.nanos_per_star))}",
                    callback_data=f"stars:{stars}",
                )
            ]
            for stars in self.offer.packages
        ]
        return InlineKeyboardMarkup(rows)

    async def topup(self, message: Message, caller: Caller, parsed: ParsedCommand | None = None) -> None:
        """/topup: the Stars packages; /topup card: a one-time sign-in link to the web page's card top-up."""
        method = (parsed.args.split() or [""])[0].lower() if parsed is not None else ""
        if method == "card":
            await self.card(message, caller)
            return
        if method:
            raise InvalidInput("Send /topup for the Telegram Stars packages, or /topup card to pay by card.")
        card = "\nOr send /topup card to pay by card on the web page." if self.chat.cards_enabled else ""
        await message.reply_text(
            "Choose how many Telegram Stars to pay; each button shows the credit it buys." + card,
            reply_markup=self.packages(),
            do_quote=True,
        )

    async def card(self, message: Message, caller: Caller) -> None:
        """/topup card: the sign-in link opens the whole account, so it is sent only in a private chat."""
        if message.chat.type != ChatType.PRIVATE:
            await message.reply_text(
                "For your safety I send sign-in links only in a private chat: message me directly.", do_quote=True
            )
            return
        url = await self.chat.topup_link(caller.account_id, Platform.TELEGRAM)
        minutes = int(CODE_LIFETIME.total_seconds() // 60)
        await message.reply_text(
            f"💳 Pay by card on the web page: this link signs you in once and opens the top-up panel "
            f"(valid {minutes} minutes, keep it to yourself):\n{escape(url)}",
            parse_mode=ParseMode.HTML,
            do_quote=True,
        )

    async def paysupport(self, message: Message, _caller: Caller, _parsed: object = None) -> None:
        """/paysupport: the operator's text, as Telegram's payment rules require."""
        await message.reply_text(escape(self.offer.support_text), parse_mode=ParseMode.HTML, do_quote=True)

    async def invoice(self, message: Message, caller: Caller, raw: str) -> None:
        """A package chosen: the payment row first, then the invoice carrying its id."""
        if not raw.isdigit() or int(raw) not in self.offer.packages:
            raise InvalidInput("That package is not offered any more; send /topup for the current ones.")
        stars = int(raw)
        payment = await self.stars.offer(caller.account_id, stars)
        credit = display_usd(payment.credit_nanos)
        await message.get_bot().send_invoice(
            chat_id=message.chat.id,
            title=f"{credit} of Noema credit",
            description=f"{stars} Telegram Stars buy {credit} of credit for generations.",
            payload=payment.id,
            currency=CURRENCY,
            prices=[LabeledPrice(f"{credit} credit", stars)],
            provider_token="",
        )

    async def on_pre_checkout(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer at once: ok when the invoice's row exists, is unexpired and its account may pay."""
        query = update.pre_checkout_query
        if query is None:
            return
        try:
            reason = await self.stars.pre_check(
                payload=query.invoice_payload,
                payer_account_id=await self.stars.payer(str(query.from_user.id)),
                stars=query.total_amount if query.currency == CURRENCY else -1,
            )
        except Exception:
            log.exception("telegram_pre_checkout_failed")
            reason = TRY_AGAIN
        if reason is None:
            await query.answer(ok=True)
        else:
            await query.answer(ok=False, error_message=reason)

    async def on_paid(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Credit the payment exactly once, then make sure its receipt with the new balance is sent."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.successful_payment is None:
            return
        paid = message.successful_payment
        try:
            who = await self._enter(user)
            charge = stars_payments.Charge(
                account_id=who,
                payload=paid.invoice_payload,
                charge_id=paid.telegram_payment_charge_id,
                stars=paid.total_amount,
                currency=paid.currency,
                nanos_per_star=self.stars.nanos_per_star,
            )
            applied = await self.stars.settle(charge)
        except NoemaError as exc:
            log.warning("telegram_payment_not_credited", error=exc.code)
            await message.reply_text(escape(exc.message), parse_mode=ParseMode.HTML, do_quote=True)
            return
        except Exception:
            # The money was taken: never drop it. No reply now; Telegram's redelivery credits it.
            log.exception("telegram_payment_failed", charge_id=paid.telegram_payment_charge_id)
            REDELIVER.set(True)
            return
        if applied.payment is not None:
            # Credited now or by an earlier delivery (``replayed``): either way its receipt may still be owed.
            await self._receipt(message, applied.payment, paid.total_amount)

    async def _receipt(self, message: Message, payment: Payment, stars: int) -> None:
        """Send the payment's receipt unless it was sent; on a failure have Telegram deliver the update again.

        At least once: a delivery whose send fails (Telegram's 5xx, a network error, a flood 429)
        gives the receipt back and fails the webhook, and the redelivery sends it. A sequential
        redelivery after a sent receipt sends nothing; two deliveries at once send one (the other
        waits for it), unless the sender takes longer than ``RECEIPT_LEASE``: then both may send.
        """
        taken = False
        try:
            taken = await self._take_receipt(payment.id)
            if not taken:
                return
            await message.reply_text(await self._receipt_text(payment, stars), parse_mode=ParseMode.HTML, do_quote=True)
        except Exception as exc:
            log.warning("telegram_receipt_failed", payment_id=payment.id, error=type(exc).__name__)
            REDELIVER.set(True)
            if taken:
                await self._give_back(payment.id)
            return
        try:
            await self.stars.record_receipt(payment.id, sent=True)
        except Exception:  # sent, not recorded: a redelivery past the lease would send it once more
            log.exception("telegram_receipt_not_recorded", payment_id=payment.id)

    async def _take_receipt(self, payment_id: str) -> bool:
        """Whether this delivery sends the receipt; waits while another delivery is sending it."""
        for _ in range(int(RECEIPT_LEASE.total_seconds() / RECEIPT_POLL_SECONDS)):
            turn = await self.stars.take_receipt(payment_id)
            if turn is not Receipt.BUSY:
                return turn is Receipt.SEND
            await asyncio.sleep(RECEIPT_POLL_SECONDS)
        log.info("telegram_receipt_busy", payment_id=payment_id)  # still being sent elsewhere: ask again later
        REDELIVER.set(True)
        return False

    async def _give_back(self, payment_id: str) -> None:
        try:
            await self.stars.record_receipt(payment_id, sent=False)
        except Exception:  # the take then lapses after RECEIPT_LEASE, and a redelivery sends it
            log.exception("telegram_receipt_not_given_back", payment_id=payment_id)

    async def _receipt_text(self, payment: Payment, stars: int) -> str:
        wallet = await self.stars.wallet(payment.account_id)
        owed = f"\nStill owed: {display_usd(wallet.owed_nanos)}" if wallet.owed_nanos else ""
        return (
            f"✅ Payment received: {stars} ⭐ → {display_usd(payment.credit_nanos)} of credit.\n"
            f"Balance: {display_usd(wallet.balance_nanos - wallet.held_nanos)}{owed}\n"
            f"Receipt: payment <code>{payment.id}</code>"
        )

    async def on_refunded(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Telegram refunded a payment: take its credit back, once (what the balance lacks is owed)."""
        message = update.effective_message
        if message is None or message.refunded_payment is None:
            return
        refund = message.refunded_payment
        try:
            payment = await self.stars.refunded(charge_id=refund.telegram_payment_charge_id, stars=refund.total_amount)
        except Exception:
            log.exception("telegram_refund_failed")
            return
        if payment is not None:
            await message.reply_text(
                f"↩️ {refund.total_amount} ⭐ refunded: {display_usd(payment.credit_nanos)} of credit taken back.",
                do_quote=True,
            )

    async def _enter(self, user: Any) -> str:
        who = ChatUser(Platform.TELEGRAM, str(user.id), user.full_name, user.username)
        return (await self.chat.enter(who, "payment")).account_id
