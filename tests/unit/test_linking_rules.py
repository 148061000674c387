"""Linking accounts: who may merge into whom, what moves, and the wrong-code throttle, on the in-memory unit of work.

tests/integration/test_linking_db.py runs the main paths on both databases; these cover each rule.
"""

from __future__ import annotations

import pytest

from noema.adapters.randomness import SystemSecrets
from noema.domain.accounts import Platform
from noema.domain.errors import Conflict, Forbidden, InvalidInput, LimitExceeded
from noema.domain.linking import CodePurpose, GuessLimits
from noema.services import accounts, economy, linking
from tests.fakes.clock import FakeClock
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory

USD = 1_000_000_000
SECRETS = SystemSecrets()


@pytest.fixture
def uows(clock: FakeClock) -> MemoryUnitOfWorkFactory:
    """A fresh in-memory store on the test's clock."""
    return MemoryUnitOfWorkFactory(clock)


async def account(uows: MemoryUnitOfWorkFactory, clock: FakeClock, platform: Platform, pid: str, usd: int = 0) -> str:
    """A new account on ``platform`` with ``usd`` of credit."""
    aid = (await accounts.find_or_create(uows, clock, platform=platform, platform_id=pid)).account.id
    if usd:
        await economy.credit(uows(), clock, economy.Transfer(account_id=aid, amount_nanos=usd * USD))
    return aid


async def test_a_merge_moves_money_exp_debt_and_defaults_and_the_ledger_still_adds_up(
    uows: MemoryUnitOfWorkFactory, clock: FakeClock
) -> None:
    chat = await account(uows, clock, Platform.TELEGRAM, "1", usd=2)
    web = await account(uows, clock, Platform.WEB, "w", usd=3)
    await economy.change_exp(uows(), clock, web, 40)
    async with uows() as uow:
        merged = await uow.accounts.get(web)
        assert merged is not None
        merged.owed_nanos = 7
        await uow.preferences.put(web, "txt2img", {"steps": 9}, now=clock.now())
        await uow.commit()
    code = await linking.issue(uows(), clock, chat, CodePurpose.LINK, secrets=SECRETS, platform="telegram")
    survivor = await linking.redeem_link(uows(), clock, code.code, account_id=web)
    assert (survivor.id, survivor.balance_nanos, survivor.exp, survivor.owed_nanos) == (chat, 5 * USD, 40, 7)
    found = await accounts.get(uows(), chat)
    assert {i.platform for i in found.identities} == {Platform.TELEGRAM, Platform.WEB}
    async with uows() as uow:
        assert await uow.preferences.get(chat, "txt2img") == {"steps": 9}
        gone = await uow.accounts.get(web)
        assert gone is not None and (gone.merged_into, gone.balance_nanos, gone.owed_nanos) == (chat, 0, 0)
    assert await economy.verify(uows()) == (2, [])


async def test_a_code_works_once_and_not_from_its_own_account(uows: MemoryUnitOfWorkFactory, clock: FakeClock) -> None:
    chat = await account(uows, clock, Platform.TELEGRAM, "1")
    web = await account(uows, clock, Platform.WEB, "w")
    own = await linking.issue(uows(), clock, chat, CodePurpose.LINK, secrets=SECRETS)
    with pytest.raises(Conflict, match="same account"):
        await linking.redeem_link(uows(), clock, own.code, account_id=chat)
    code = await linking.issue(uows(), clock, chat, CodePurpose.LINK, secrets=SECRETS)
    await linking.redeem_link(uows(), clock, code.code, account_id=web)
    with pytest.raises(InvalidInput, match="not valid or has expired"):
        await linking.redeem_link(uows(), clock, code.code, account_id=web)


async def test_running_generations_block_a_merge_and_nothing_moves(
    uows: MemoryUnitOfWorkFactory, clock: FakeClock
) -> None:
    chat = await account(uows, clock, Platform.TELEGRAM, "1", usd=1)
    web = await account(uows, clock, Platform.WEB, "w", usd=1)
    async with uows() as uow:
        busy = await uow.accounts.get(web)
        assert busy is not None
        busy.held_nanos = 1
        await uow.commit()
    code = await linking.issue(uows(), clock, chat, CodePurpose.LINK, secrets=SECRETS)
    with pytest.raises(Conflict, match="running generations"):
        await linking.redeem_link(uows(), clock, code.code, account_id=web)
    assert (await economy.wallet(uows(), web)).balance_nanos == USD
    assert len((await accounts.get(uows(), chat)).identities) == 1


async def test_a_platform_clients_code_cannot_take_over_an_account_with_money(
    uows: MemoryUnitOfWorkFactory, clock: FakeClock
) -> None:
    rich = await account(uows, clock, Platform.TELEGRAM, "1", usd=1)
    empty = await account(uows, clock, Platform.TELEGRAM, "2")
    web = await account(uows, clock, Platform.WEB, "w")
    other_web = await account(uows, clock, Platform.WEB, "w2")
    code = await linking.issue_for_client(
        uows(), clock, rich, CodePurpose.LINK, secrets=SECRETS, client="telegram", platform="telegram"
    )
    with pytest.raises(Forbidden, match="not asked for by its account"):
        await linking.redeem_link(uows(), clock, code.code, account_id=web)
    fine = await linking.issue_for_client(
        uows(), clock, empty, CodePurpose.LINK, secrets=SECRETS, client="telegram", platform=None
    )
    assert (await linking.redeem_link(uows(), clock, fine.code, account_id=other_web)).id == empty
    with pytest.raises(Forbidden, match="own platform"):
        await linking.issue_for_client(
            uows(), clock, web, CodePurpose.LINK, secrets=SECRETS, client="telegram", platform=None
        )
    with pytest.raises(Forbidden, match="sign-in links"):
        await linking.issue_for_client(
            uows(), clock, rich, CodePurpose.SIGN_IN, secrets=SECRETS, client="telegram", platform=None
        )


async def test_past_the_per_account_cap_even_the_right_code_waits_for_the_window(
    uows: MemoryUnitOfWorkFactory, clock: FakeClock
) -> None:
    limits = GuessLimits(per_account=2, overall=100)
    chat = await account(uows, clock, Platform.TELEGRAM, "1")
    guesser = await account(uows, clock, Platform.WEB, "w")
    for _ in range(2):
        with pytest.raises(InvalidInput):
            await linking.redeem_link(uows(), clock, "HHHH-HHHH", account_id=guesser, limits=limits)
        clock.advance(minutes=1)
    code = await linking.issue(uows(), clock, chat, CodePurpose.LINK, secrets=SECRETS)
    with pytest.raises(LimitExceeded) as refused:
        await linking.redeem_link(uows(), clock, code.code, account_id=guesser, limits=limits)
    assert refused.value.retry_after == 8 * 60  # the first wrong guess leaves the 10-minute window then
    other = await account(uows, clock, Platform.DISCORD, "d")
    assert (await linking.redeem_link(uows(), clock, code.code, account_id=other, limits=limits)).id == chat
