"""``noema payments``: list, show and refund payments.

A refund asks the provider (Stripe's refunds API); the provider's ``charge.refunded`` webhook then
takes the credit back, exactly once however often the refund is asked for or reported.
"""

from __future__ import annotations

from typing import Annotated

import typer

from noema.bootstrap import Container
from noema.domain.errors import InvalidInput, PaymentsDisabled
from noema.domain.ids import parse_id
from noema.domain.money import display_usd, parse_usd
from noema.domain.payments import NANOS_PER_CENT, Payment, PaymentProvider
from noema.entrypoints.cli_accounts import JsonOption, account_id
from noema.entrypoints.cli_loras import CliRuntime
from noema.entrypoints.cli_output import emit_json, emit_page, model_json, print_fields, print_rows
from noema.entrypoints.http.payment_schemas import payment_out
from noema.ports import Page
from noema.services import card_payments, payments, stars_payments

payments_app = typer.Typer(help="Payments: top-ups users made themselves.", no_args_is_help=True)


def _amount(minor: int, currency: str) -> str:
    if currency.upper() == "USD":
        return display_usd(minor * NANOS_PER_CENT)
    return f"{minor} {currency.upper()}" if currency.upper() == "XTR" else f"{minor / 100:.2f} {currency.upper()}"


@payments_app.command("list")
def payments_list(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option("--account", help="Account id or platform:platform-id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many, newest first.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page: the cursor the previous page printed.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List payments, newest first: id, account, provider, status, amount paid, credit, taken back."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> Page[Payment]:
        owner = await account_id(c, account) if account else None
        return await payments.list_payments(c.uow(), account_id=owner, limit=limit, cursor=cursor)

    page = runtime.run(work)
    found = page.items
    if as_json:
        emit_page([model_json(payment_out(p)) for p in found], page.next_cursor)
        return
    rows = [
        [
            p.id,
            p.account_id,
            p.provider.value,
            p.status.value,
            _amount(p.amount_minor, p.currency),
            display_usd(p.credit_nanos),
            display_usd(p.taken_back_nanos),
            p.created_at.isoformat(timespec="seconds"),
        ]
        for p in found
    ]
    columns = ("id", "account", "provider", "status", "paid", "credit", "taken back", "created")
    print_rows(
        runtime.out,
        f"{len(rows)} payments",
        columns,
        rows,
        whole={"id", "account", "paid", "credit", "taken back"},
    )
    if page.next_cursor:
        scope = f" --account {account}" if account else ""
        more = f"More: noema payments list{scope} --cursor {page.next_cursor}"
        runtime.err.print(more, markup=False, soft_wrap=True)


@payments_app.command("show")
def payments_show(
    ctx: typer.Context, payment_id: Annotated[str, typer.Argument(help="The payment id.")], as_json: JsonOption = False
) -> None:
    """Show one payment with its provider ids, refunds, disputes and credit."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> Payment:
        return await payments.get(c.uow(), parse_id(payment_id, what="The payment"))

    p = runtime.run(work)
    if as_json:
        emit_json({**model_json(payment_out(p)), "paymentIntentId": p.payment_intent_id, "chargeId": p.charge_id})
        return
    fields = [
        ("Payment", p.id),
        ("Account", p.account_id),
        ("Provider", p.provider.value),
        ("Status", p.status.value),
        ("Paid", _amount(p.amount_minor, p.currency)),
        ("Credit", display_usd(p.credit_nanos)),
        ("Refunded", _amount(p.refunded_minor, p.currency)),
        ("Disputed", _amount(p.disputed_minor, p.currency)),
        ("Dispute fee", _amount(p.dispute_fee_minor, p.currency)),
        ("Taken back", display_usd(p.taken_back_nanos)),
        ("External id", p.external_id or "-"),
        ("Payment intent", p.payment_intent_id or "-"),
        ("Charge", p.charge_id or "-"),
        ("Created", p.created_at.isoformat(timespec="seconds")),
        ("Paid at", p.paid_at.isoformat(timespec="seconds") if p.paid_at else "-"),
    ]
    print_fields(runtime.out, fields)


@payments_app.command("refund")
def payments_refund(
    ctx: typer.Context,
    payment_id: Annotated[str, typer.Argument(help="The payment id.")],
    amount: Annotated[str | None, typer.Option("--amount", help="USD to refund (default: all that is left).")] = None,
) -> None:
    """Refund a card payment at Stripe (its webhook takes the credit back) or a Stars payment at Telegram."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> tuple[Payment, str]:
        pid = parse_id(payment_id, what="The payment")
        if (await payments.get(c.uow(), pid)).provider is PaymentProvider.TELEGRAM_STARS:
            if amount is not None:
                raise InvalidInput("Telegram Stars payments are refunded in full; leave out --amount.")
            if c.stars is None:
                raise PaymentsDisabled("Telegram is not set up (NOEMA_TELEGRAM_BOT_TOKEN).")
            return await stars_payments.refund(c.uow, c.clock, c.stars, pid), ""
        cents = None
        if amount is not None:
            nanos = parse_usd(amount)
            if nanos % NANOS_PER_CENT:
                raise InvalidInput("A refund is in whole cents.")
            cents = nanos // NANOS_PER_CENT
        if c.stripe is None:
            raise PaymentsDisabled("Card payments are not set up (NOEMA_STRIPE_SECRET_KEY).")
        return await card_payments.refund(c.uow(), c.stripe, pid, amount_minor=cents)

    payment, refund_id = runtime.run(work)
    if not refund_id:
        runtime.out.print(
            f"Payment {payment.id} refunded by Telegram; {display_usd(payment.taken_back_nanos)} of credit taken back."
        )
        return
    runtime.out.print(
        f"Refund {refund_id} asked for payment {payment.id}; the credit is taken back when Stripe reports it."
    )
