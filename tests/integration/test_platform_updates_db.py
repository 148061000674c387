"""Answered chat updates on a real database (SQLite and PostgreSQL): recorded once, with the answer's effect."""

from __future__ import annotations

import asyncio

import pytest

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.errors import InsufficientFunds
from noema.domain.platform_updates import PlatformUpdate
from noema.ports import GenerationFilter
from noema.services import accounts, economy
from noema.services.generations import GenerationRequest

UPDATE = PlatformUpdate("telegram", "900001")


async def _account(c: Container, usd: int) -> str:
    found = await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id="77")
    if usd:
        await economy.credit(c.uow(), c.clock, economy.Transfer(account_id=found.account.id, amount_nanos=usd * 10**9))
    return found.account.id


def _request(account_id: str) -> GenerationRequest:
    return GenerationRequest(
        account_id=account_id,
        tool_ref="txt2img",
        inputs={"input_text": "a kite"},
        platform="telegram",
        idempotency_key="telegram:77:5",
        answers=UPDATE,
    )


async def _count(c: Container, account_id: str) -> int:
    async with c.uow() as uow:
        page = await uow.generations.search(GenerationFilter(account_id=account_id), limit=10, cursor=None)
    return len(page.items)


async def test_an_update_is_recorded_as_answered_in_the_transaction_that_creates_its_generation(
    container: Container,
) -> None:
    poor = await _account(container, 0)
    with pytest.raises(InsufficientFunds):
        await container.chat.generations.request(_request(poor))
    assert not await container.chat.answered(UPDATE)  # refused: nothing created, nothing recorded
    await economy.credit(container.uow(), container.clock, economy.Transfer(account_id=poor, amount_nanos=10**9))
    await container.chat.generations.request(_request(poor))
    assert await container.chat.answered(UPDATE) and await _count(container, poor) == 1
    await container.chat.mark_answered(UPDATE)  # the webhook's own record after it: a no-op
    assert await _count(container, poor) == 1


async def test_the_same_update_recorded_at_once_is_recorded_once(container: Container) -> None:
    async def record() -> bool:
        async with container.uow() as uow:
            fresh = await uow.platform_updates.record(UPDATE, at=container.clock.now())
            await uow.commit()
        return fresh

    assert sorted(await asyncio.gather(*(record() for _ in range(6)))) == [False] * 5 + [True]
    assert await container.chat.answered(UPDATE)
    assert not await container.chat.answered(PlatformUpdate("telegram", "900002"))
