"""Internal API: payments, for the operator (admin client only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from noema.domain.ids import parse_id
from noema.entrypoints.http.deps import PagingDep, UowDep, require_economy_write
from noema.entrypoints.http.payment_schemas import PaymentOut, payment_out
from noema.entrypoints.http.schemas import PageOut, page_out
from noema.services import payments

router = APIRouter(tags=["payments"], dependencies=[Depends(require_economy_write)])


@router.get("/payments", response_model=PageOut[PaymentOut])
async def list_payments(
    uow: UowDep,
    paging: PagingDep,
    account_id: Annotated[str | None, Query(alias="masterAccountId", max_length=64)] = None,
) -> PageOut[PaymentOut]:
    """Every payment (or one account's), newest first."""
    account = parse_id(account_id, what="masterAccountId") if account_id else None
    page = await payments.list_payments(uow, account_id=account, limit=paging.limit, cursor=paging.cursor)
    return page_out(page, payment_out)


@router.get("/payments/{payment_id}", response_model=PaymentOut)
async def get_payment(payment_id: str, uow: UowDep) -> PaymentOut:
    """One payment."""
    return payment_out(await payments.get(uow, parse_id(payment_id, what="paymentId")))
