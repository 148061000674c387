"""Balances, EXP and the ledger: credit, debit, read, verify. Every change is a ledger entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from noema.domain import ledger
from noema.domain import payments as payment_rules
from noema.domain.accounts import Account
from noema.domain.errors import AccountNotFound, Conflict, InvalidInput, TransactionNotFound
from noema.domain.ledger import LedgerEntry, Posting
from noema.domain.money import display_usd, format_usd
from noema.ports import Clock, Page, UnitOfWork
from noema.services import events


def post(uow: UnitOfWork, account: Account, posting: Posting, *, key: str, now: datetime, **meta: Any) -> LedgerEntry:
    """Turn a posting the ledger decided into a stored entry, in the caller's transaction."""
    entry = LedgerEntry(
        id=uow.ids.new(),
        account_id=account.id,
        kind=posting.kind,
        amount_nanos=posting.amount_nanos,
        balance_delta=posting.balance_delta,
        held_delta=posting.held_delta,
        balance_after=posting.balance_after,
        held_after=posting.held_after,
        idempotency_key=key,
        created_at=now,
        **meta,
    )
    account.updated_at = now
    uow.ledger.add(entry)
    return entry


def repay_owed(uow: UnitOfWork, account: Account, *, key: str, now: datetime) -> LedgerEntry | None:
    """After a credit: pay back what a refunded payment left owed, first, with an entry that says so."""
    owed_before = account.owed_nanos
    posting = payment_rules.repay_owed(account)
    if posting is None:
        return None
    return post(
        uow,
        account,
        posting,
        key=f"{key}:owed",
        now=now,
        transaction_type=payment_rules.REPAY_TYPE,
        description=f"Paid back {display_usd(posting.amount_nanos)} owed from a refunded payment",
        data={"owedBeforeUsd": format_usd(owed_before), "owedAfterUsd": format_usd(account.owed_nanos)},
    )


@dataclass(frozen=True)
class Transfer:
    """A credit or debit asked for from outside."""

    account_id: str
    amount_nanos: int
    description: str | None = None
    transaction_type: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Posted:
    entry: LedgerEntry
    account: Account
    replayed: bool


async def _locked_account(uow: UnitOfWork, account_id: str) -> Account:
    account = await uow.accounts.get(account_id, for_update=True)
    if account is None:
        raise AccountNotFound()
    return account


async def _replay(uow: UnitOfWork, key: str, transfer: Transfer) -> Posted | None:
    """The earlier result of the same external transaction, or None if it is new."""
    existing = await uow.ledger.by_key(key)
    if existing is None:
        return None
    if existing.account_id != transfer.account_id or existing.amount_nanos != transfer.amount_nanos:
        raise Conflict(
            "That externalTransactionId was already used for a different transaction.",
            details={"externalTransactionId": transfer.external_id},
        )
    account = await uow.accounts.get(existing.account_id)
    assert account is not None
    return Posted(existing, account, replayed=True)


async def _transfer(uow: UnitOfWork, clock: Clock, transfer: Transfer, kind: str) -> Posted:
    key = f"{kind}:{transfer.external_id}" if transfer.external_id else f"{kind}:{uow.ids.new()}"
    async with uow:
        # Lock the wallet first: a concurrent replay of the same key then waits and finds our entry.
        account = await _locked_account(uow, transfer.account_id)
        replay = await _replay(uow, key, transfer)
        if replay is not None:
            return replay
        posting = (
            ledger.credit(account, transfer.amount_nanos)
            if kind == "credit"
            else ledger.debit(account, transfer.amount_nanos)
        )
        now = clock.now()
        entry = post(
            uow,
            account,
            posting,
            key=key,
            now=now,
            description=transfer.description,
            transaction_type=transfer.transaction_type,
            data={"externalTransactionId": transfer.external_id} if transfer.external_id else {},
        )
        if kind == "credit":
            repay_owed(uow, account, key=key, now=now)
        events.record(
            uow,
            "credits_added" if kind == "credit" else "credits_debited",
            now=now,
            account_id=account.id,
            data={"amountUsd": format_usd(transfer.amount_nanos), "transactionId": entry.id},
        )
        await uow.commit()
        return Posted(entry, account, replayed=False)


async def credit(uow: UnitOfWork, clock: Clock, transfer: Transfer) -> Posted:
    """Add credit; idempotent on the external transaction id."""
    for _attempt in range(3):
        try:
            return await _transfer(uow, clock, transfer, "credit")
        except Conflict as exc:
            if exc.details is not None:
                raise
    raise Conflict("The same transaction is being posted concurrently; try again.")


async def debit(uow: UnitOfWork, clock: Clock, transfer: Transfer) -> Posted:
    """Take credit from the free balance; refuses with InsufficientFunds rather than go negative."""
    return await _transfer(uow, clock, transfer, "debit")


async def change_exp(uow: UnitOfWork, clock: Clock, account_id: str, change: int) -> Account:
    """Add (or, for a correction, take away) EXP; EXP never goes below zero."""
    async with uow:
        account = await _locked_account(uow, account_id)
        if account.exp + change < 0:
            raise InvalidInput(f"EXP cannot go below zero (it is {account.exp}).")
        account.exp += change
        account.updated_at = clock.now()
        await uow.commit()
        return account


async def wallet(uow: UnitOfWork, account_id: str) -> Account:
    """The account, for its balance, holds and EXP."""
    async with uow:
        account = await uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()
        return account


async def transactions(uow: UnitOfWork, account_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
    """The account's ledger entries, newest first."""
    async with uow:
        if await uow.accounts.get(account_id) is None:
            raise AccountNotFound()
        return await uow.ledger.list_for_account(account_id, limit=limit, cursor=cursor)


async def transaction(uow: UnitOfWork, entry_id: str) -> LedgerEntry:
    """One ledger entry."""
    async with uow:
        entry = await uow.ledger.get(entry_id)
        if entry is None:
            raise TransactionNotFound()
        return entry


@dataclass(frozen=True)
class Drift:
    """An account whose stored wallet disagrees with the sum of its ledger entries."""

    account_id: str
    balance_nanos: int
    ledger_balance_nanos: int
    held_nanos: int
    ledger_held_nanos: int


async def verify(uow: UnitOfWork) -> tuple[int, list[Drift]]:
    """Recompute every wallet from the ledger: (accounts checked, drifts found)."""
    async with uow:
        totals = await uow.ledger.totals()
        wallets = await uow.accounts.wallets()
        drifts = []
        for account_id, (stored_balance, stored_held) in wallets.items():
            balance, held = totals.get(account_id, (0, 0))
            if (balance, held) != (stored_balance, stored_held) or balance < 0 or held < 0:
                drifts.append(Drift(account_id, stored_balance, balance, stored_held, held))
        return len(wallets), drifts


@dataclass(frozen=True)
class WrittenOff:
    """Run costs no account paid: above a run's hold, or beyond what its account had (zero when all is well)."""

    nanos: int
    generations: int


async def written_off(uow: UnitOfWork) -> WrittenOff:
    """The shortfall recorded over every settled generation."""
    async with uow:
        nanos, count = await uow.generations.written_off()
    return WrittenOff(nanos, count)
