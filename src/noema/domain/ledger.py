"""The ledger: every change to a wallet is an append-only entry with an idempotency key.

A wallet has a balance and the part of it held for running generations. Entries record the
change to each (``balance_delta``, ``held_delta``) and the balance after, so the balance is
always the sum of its entries. No operation here lets the balance, the held amount or the free
amount (balance - held) go below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from noema.domain.errors import InsufficientFunds, InvalidInput
from noema.domain.money import MAX_NANOS, display_usd, format_usd


class EntryKind(str, Enum):
    CREDIT = "credit"
    HOLD = "hold"
    RELEASE = "release"
    DEBIT = "debit"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class Wallet(Protocol):
    balance_nanos: int
    held_nanos: int


@dataclass(eq=False)
class LedgerEntry:
    """One posting against one account's wallet."""

    id: str
    account_id: str
    kind: EntryKind
    amount_nanos: int
    balance_delta: int
    held_delta: int
    balance_after: int
    held_after: int
    idempotency_key: str
    created_at: datetime
    description: str | None = None
    transaction_type: str | None = None
    generation_id: str | None = None
    tool_id: str | None = None
    run_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def balance_before(self) -> int:
        """The balance just before this entry."""
        return self.balance_after - self.balance_delta


@dataclass(frozen=True)
class Posting:
    """What an operation decided, before it becomes a LedgerEntry with an id and a time."""

    kind: EntryKind
    amount_nanos: int
    balance_delta: int
    held_delta: int
    balance_after: int
    held_after: int


def _apply(wallet: Wallet, kind: EntryKind, amount: int, balance_delta: int, held_delta: int) -> Posting:
    wallet.balance_nanos += balance_delta
    wallet.held_nanos += held_delta
    if wallet.held_nanos < 0 or wallet.balance_nanos - wallet.held_nanos < 0:
        raise InvalidInput("That change would take the wallet below zero.")
    return Posting(kind, amount, balance_delta, held_delta, wallet.balance_nanos, wallet.held_nanos)


def _positive(amount: int) -> None:
    if amount <= 0:
        raise InvalidInput("An amount must be greater than zero.")


def _insufficient(wallet: Wallet, amount: int) -> InsufficientFunds:
    free = wallet.balance_nanos - wallet.held_nanos
    return InsufficientFunds(
        f"The balance ({display_usd(free)} available) does not cover {display_usd(amount)}.",
        details={"currentBalance": format_usd(free), "debitAmount": format_usd(amount)},
    )


def credit(wallet: Wallet, amount: int, *, kind: EntryKind = EntryKind.CREDIT) -> Posting:
    """Add money (a credit, or a refund)."""
    _positive(amount)
    if wallet.balance_nanos + amount > MAX_NANOS:
        raise InvalidInput("That credit would take the balance over the largest amount Noema holds.")
    return _apply(wallet, kind, amount, amount, 0)


def debit(wallet: Wallet, amount: int) -> Posting:
    """Take money from the free balance; refuse rather than go below zero."""
    _positive(amount)
    if wallet.balance_nanos - wallet.held_nanos < amount:
        raise _insufficient(wallet, amount)
    return _apply(wallet, EntryKind.DEBIT, amount, -amount, 0)


def hold(wallet: Wallet, amount: int) -> Posting:
    """Set aside an estimate from the free balance for a run about to start."""
    _positive(amount)
    if wallet.balance_nanos - wallet.held_nanos < amount:
        raise _insufficient(wallet, amount)
    return _apply(wallet, EntryKind.HOLD, amount, 0, amount)


def release(wallet: Wallet, amount: int) -> Posting:
    """Give back (part of) a hold."""
    _positive(amount)
    if amount > wallet.held_nanos:
        raise InvalidInput("Cannot release more than is held.")
    return _apply(wallet, EntryKind.RELEASE, amount, 0, -amount)


@dataclass(frozen=True)
class Settlement:
    """The outcome of settling a hold against a cost: postings, what was charged, what was missing."""

    postings: list[Posting]
    charged_nanos: int
    shortfall_nanos: int


def settle(wallet: Wallet, *, held: int, cost: int) -> Settlement:
    """Release a run's hold and debit its cost, never more than the hold and never below zero.

    The hold is the most a run may cost (its tool's maximum runtime at its rate, or what the
    account had free), so a cost above it is written off and recorded as the shortfall rather
    than taken from money the account never set aside for this run.
    """
    if held < 0 or cost < 0:
        raise InvalidInput("Hold and cost cannot be negative.")
    postings: list[Posting] = []
    if held > 0:
        postings.append(release(wallet, held))
    charged = min(cost, held, wallet.balance_nanos - wallet.held_nanos)
    if charged > 0:
        postings.append(debit(wallet, charged))
    return Settlement(postings, charged, cost - charged)
