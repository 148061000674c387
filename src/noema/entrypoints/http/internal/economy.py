"""Internal API: balances, EXP and transactions. Moving money needs the admin client."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from noema.domain.ids import parse_id
from noema.domain.money import parse_usd
from noema.entrypoints.http.deps import ClockDep, PagingDep, UowDep, require_economy_write
from noema.entrypoints.http.schemas import (
    EconomyOut,
    ExpIn,
    PageOut,
    TransactionOut,
    TransferIn,
    TransferOut,
    economy_out,
    page_out,
    transaction_out,
)
from noema.services import economy

router = APIRouter(tags=["economy"])
_ADMIN = [Depends(require_economy_write)]


@router.get("/users/{account_id}/economy", response_model=EconomyOut)
async def get_economy(account_id: str, uow: UowDep) -> EconomyOut:
    """The user's balance, holds, points and EXP."""
    return economy_out(await economy.wallet(uow, parse_id(account_id, what="masterAccountId")))


def _transfer(account_id: str, body: TransferIn) -> economy.Transfer:
    return economy.Transfer(
        account_id=parse_id(account_id, what="masterAccountId"),
        amount_nanos=parse_usd(body.amount_usd),
        description=body.description,
        transaction_type=body.transaction_type,
        external_id=body.external_transaction_id,
    )


@router.post(
    "/users/{account_id}/economy/credit",
    response_model=TransferOut,
    status_code=201,
    dependencies=_ADMIN,
    responses={200: {"model": TransferOut}},
)
async def credit(account_id: str, body: TransferIn, uow: UowDep, clock: ClockDep, response: Response) -> TransferOut:
    """Add credit; the same externalTransactionId again returns the first result (200) and adds nothing."""
    posted = await economy.credit(uow, clock, _transfer(account_id, body))
    if posted.replayed:
        response.status_code = 200
    return TransferOut(
        transaction=transaction_out(posted.entry),
        economy=economy_out(posted.account),
        replayed=posted.replayed,
    )


@router.post(
    "/users/{account_id}/economy/debit",
    response_model=TransferOut,
    status_code=201,
    dependencies=_ADMIN,
    responses={200: {"model": TransferOut}},
)
async def debit(account_id: str, body: TransferIn, uow: UowDep, clock: ClockDep, response: Response) -> TransferOut:
    """Take credit from the free balance; 400 INSUFFICIENT_FUNDS if it does not cover the amount."""
    posted = await economy.debit(uow, clock, _transfer(account_id, body))
    if posted.replayed:
        response.status_code = 200
    return TransferOut(
        transaction=transaction_out(posted.entry),
        economy=economy_out(posted.account),
        replayed=posted.replayed,
    )


@router.put("/users/{account_id}/economy/exp", response_model=EconomyOut, dependencies=_ADMIN)
async def change_exp(account_id: str, body: ExpIn, uow: UowDep, clock: ClockDep) -> EconomyOut:
    """Add or correct EXP (never below zero)."""
    return economy_out(
        await economy.change_exp(uow, clock, parse_id(account_id, what="masterAccountId"), body.exp_change)
    )


@router.get("/users/{account_id}/transactions", response_model=PageOut[TransactionOut])
async def list_transactions(account_id: str, uow: UowDep, page: PagingDep) -> PageOut[TransactionOut]:
    """The user's ledger entries, newest first."""
    result = await economy.transactions(
        uow, parse_id(account_id, what="masterAccountId"), limit=page.limit, cursor=page.cursor
    )
    return page_out(result, transaction_out)


@router.get("/transactions/{transaction_id}", response_model=TransactionOut)
async def get_transaction(transaction_id: str, uow: UowDep) -> TransactionOut:
    """One ledger entry."""
    return transaction_out(await economy.transaction(uow, parse_id(transaction_id, what="transactionId")))
