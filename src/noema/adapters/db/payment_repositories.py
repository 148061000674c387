"""SQLAlchemy repository for payments and the provider events applied to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from noema.adapters.db.pagination import paginate
from noema.adapters.db.tables import accounts, ledger_entries, payment_events, payments
from noema.domain.payments import Payment, PaymentProvider, PaymentStatus
from noema.ports import Page, PaymentTotals

A, P, PE, L = accounts.c, payments.c, payment_events.c, ledger_entries.c


class SqlPayments:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add(self, payment: Payment) -> None:
        """Stage a new payment."""
        self._s.add(payment)

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        """One payment, row-locked when asked."""
        return await self._s.get(Payment, payment_id, with_for_update=for_update, populate_existing=for_update)

    async def find(
        self,
        provider: PaymentProvider,
        *,
        external_id: str | None = None,
        payment_intent_id: str | None = None,
        charge_id: str | None = None,
        for_update: bool = False,
    ) -> Payment | None:
        """The provider's payment with the first of these ids that is given and known."""
        for column, value in (
            (P.external_id, external_id),
            (P.payment_intent_id, payment_intent_id),
            (P.charge_id, charge_id),
        ):
            if not value:
                continue
            stmt = select(Payment).where(P.provider == provider.value, column == value)
            if for_update:
                stmt = stmt.with_for_update().execution_options(populate_existing=True)
            found = (await self._s.scalars(stmt)).first()
            if found is not None:
                return found
        return None

    async def list(self, *, account_id: str | None, limit: int, cursor: str | None) -> Page[Payment]:
        """Payments (of one account, or all), newest first."""
        stmt = select(Payment)
        if account_id is not None:
            stmt = stmt.where(P.account_id == account_id)
        return await paginate(self._s, stmt, created_col=P.created_at, id_col=P.id, limit=limit, cursor=cursor)

    async def opened_since(self, account_id: str, provider: PaymentProvider, since: datetime) -> tuple[datetime, ...]:
        """When each of the account's unpaid payments made after ``since`` was made (still open to be paid)."""
        stmt = select(P.created_at).where(
            P.account_id == account_id,
            P.provider == provider.value,
            P.status == PaymentStatus.CREATED.value,
            P.paid_at.is_(None),
            P.created_at > since,
        )
        return tuple(row[0] for row in await self._s.execute(stmt))

    async def seen_event(self, provider: PaymentProvider, event_id: str) -> bool:
        """Whether this provider event was already applied."""
        stmt = select(PE.event_id).where(PE.provider == provider.value, PE.event_id == event_id)
        return (await self._s.execute(stmt)).first() is not None

    async def record_event(
        self, provider: PaymentProvider, event_id: str, *, event_type: str, payment_id: str | None, at: datetime
    ) -> None:
        """Remember an applied event (a concurrent duplicate fails the commit with Conflict)."""
        await self._s.execute(
            insert(payment_events).values(
                provider=provider.value,
                event_id=event_id,
                event_type=event_type[:100],
                payment_id=payment_id,
                received_at=at,
            )
        )

    async def totals(self) -> dict[str, PaymentTotals]:
        """Per surviving account (merged accounts folded in): payments' credit and take-backs, the ledger's, owed."""
        merged_into = {row[0]: row[1] for row in await self._s.execute(select(A.id, A.merged_into))}
        owed = {row[0]: int(row[1]) for row in await self._s.execute(select(A.id, A.owed_nanos))}

        def root(account_id: str) -> str:
            seen = set()
            while merged_into.get(account_id) and account_id not in seen:
                seen.add(account_id)
                account_id = merged_into[account_id]
            return account_id

        result: dict[str, PaymentTotals] = {}

        def at(account_id: str) -> PaymentTotals:
            return result.setdefault(root(account_id), PaymentTotals())

        credited = select(P.account_id, func.sum(P.credit_nanos)).where(P.paid_at.is_not(None)).group_by(P.account_id)
        for account_id, amount in await self._s.execute(credited):
            at(account_id).credited_nanos += int(amount or 0)
        for account_id, amount in await self._s.execute(
            select(P.account_id, func.sum(P.taken_back_nanos)).group_by(P.account_id)
        ):
            at(account_id).taken_back_nanos += int(amount or 0)
        posted = (
            select(L.account_id, L.transaction_type, func.sum(L.amount_nanos))
            .where(L.transaction_type.in_(PaymentTotals.LEDGER_TYPES))
            .group_by(L.account_id, L.transaction_type)
        )
        for account_id, kind, amount in await self._s.execute(posted):
            totals = at(account_id)
            totals.posted[kind] = totals.posted.get(kind, 0) + int(amount or 0)
        for account_id, amount in owed.items():
            if amount:
                at(account_id).owed_nanos += amount
        return result
