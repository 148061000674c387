"""Linking accounts across platforms and one-time sign-in links, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from noema.bootstrap import Container
from noema.domain.accounts import Platform
from noema.domain.errors import Conflict, InvalidInput
from noema.domain.linking import CodePurpose
from noema.services import accounts, api_keys, economy, linking, web_sessions
from tests.fakes.clock import FakeClock

USD = 1_000_000_000


async def _account(c: Container, platform: Platform, pid: str, usd: int = 0) -> str:
    aid = (await accounts.find_or_create(c.uow, c.clock, platform=platform, platform_id=pid)).account.id
    if usd:
        await economy.credit(c.uow(), c.clock, economy.Transfer(account_id=aid, amount_nanos=usd * USD))
    return aid


async def test_a_link_code_merges_balances_identities_keys_and_exp_into_the_issuer(
    container: Container, clock: FakeClock
) -> None:
    chat = await _account(container, Platform.TELEGRAM, "42", usd=2)
    web = await _account(container, Platform.WEB, "w1", usd=3)
    await economy.change_exp(container.uow(), clock, web, 50)
    key = await api_keys.create(container.uow(), clock, web, secrets=container.secrets)
    token, _ = await web_sessions.start(container.uow(), clock, web, secrets=container.secrets)
    code = await linking.issue(
        container.uow(), clock, chat, CodePurpose.LINK, secrets=container.secrets, platform="telegram"
    )
    assert len(code.code) == 9 and code.code[4] == "-"
    survivor = await linking.redeem_link(container.uow(), clock, code.code.lower(), account_id=web)
    assert survivor.id == chat
    merged = await accounts.get(container.uow(), chat)
    assert {i.platform for i in merged.identities} == {Platform.TELEGRAM, Platform.WEB}
    assert (merged.account.balance_nanos, merged.account.exp) == (5 * USD, 50)
    assert (await economy.wallet(container.uow(), web)).balance_nanos == 0
    assert await api_keys.authenticate(container.uow(), clock, key.plain) == chat  # the key moved with it
    assert (await web_sessions.resolve(container.uow(), clock, token)).account_id == chat  # so did the browser
    assert await economy.verify(container.uow()) == (2, [])
    with pytest.raises(InvalidInput, match="not valid or has expired"):  # a code works once
        await linking.redeem_link(container.uow(), clock, code.code, account_id=web)


async def test_an_expired_or_unknown_code_is_refused_and_changes_nothing(
    container: Container, clock: FakeClock
) -> None:
    chat = await _account(container, Platform.TELEGRAM, "1", usd=1)
    web = await _account(container, Platform.WEB, "w", usd=1)
    code = await linking.issue(container.uow(), clock, chat, CodePurpose.LINK, secrets=container.secrets)
    clock.advance(minutes=11)
    with pytest.raises(InvalidInput, match="expired"):
        await linking.redeem_link(container.uow(), clock, code.code, account_id=web)
    with pytest.raises(InvalidInput, match="8 letters"):
        await linking.redeem_link(container.uow(), clock, "not-a-code!", account_id=web)
    assert len((await accounts.get(container.uow(), web)).identities) == 1


async def test_linking_refuses_the_same_account_and_two_identities_on_one_platform(
    container: Container, clock: FakeClock
) -> None:
    first = await _account(container, Platform.TELEGRAM, "1")
    second = await _account(container, Platform.TELEGRAM, "2")
    same = await linking.issue(container.uow(), clock, first, CodePurpose.LINK, secrets=container.secrets)
    with pytest.raises(Conflict, match="same account"):
        await linking.redeem_link(container.uow(), clock, same.code, account_id=first)
    clash = await linking.issue(container.uow(), clock, first, CodePurpose.LINK, secrets=container.secrets)
    with pytest.raises(Conflict, match="telegram identity"):
        await linking.redeem_link(container.uow(), clock, clash.code, account_id=second)
    assert len((await accounts.get(container.uow(), second)).identities) == 1


async def test_a_sign_in_link_works_once_and_not_after_ten_minutes(container: Container, clock: FakeClock) -> None:
    aid = await _account(container, Platform.TELEGRAM, "9")
    link = await linking.issue(container.uow(), clock, aid, CodePurpose.SIGN_IN, secrets=container.secrets)
    assert await linking.redeem_sign_in(container.uow(), clock, link.code) == aid
    with pytest.raises(InvalidInput):
        await linking.redeem_sign_in(container.uow(), clock, link.code)
    late = await linking.issue(container.uow(), clock, aid, CodePurpose.SIGN_IN, secrets=container.secrets)
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(InvalidInput):
        await linking.redeem_sign_in(container.uow(), clock, late.code)
    link_code = await linking.issue(container.uow(), clock, aid, CodePurpose.LINK, secrets=container.secrets)
    with pytest.raises(InvalidInput):  # a link code is not a sign-in link
        await linking.redeem_sign_in(container.uow(), clock, link_code.code)


async def test_browser_sessions_expire_and_end_on_sign_out(container: Container, clock: FakeClock) -> None:
    aid = await _account(container, Platform.WEB, "w")
    token, session = await web_sessions.start(container.uow(), clock, aid, secrets=container.secrets)
    assert (await web_sessions.resolve(container.uow(), clock, token)).account_id == aid
    assert token not in session.token_hash and len(session.csrf_token) >= 24
    await web_sessions.end(container.uow(), clock, token)
    with pytest.raises(Exception, match="session has ended"):
        await web_sessions.resolve(container.uow(), clock, token)
    other, _ = await web_sessions.start(container.uow(), clock, aid, secrets=container.secrets)
    clock.advance(days=31)
    with pytest.raises(Exception, match="session has ended"):
        await web_sessions.resolve(container.uow(), clock, other)
    assert timedelta(days=30) == web_sessions.LIFETIME


async def test_wrong_codes_from_everyone_together_hit_the_overall_cap_and_are_counted_in_the_database(
    container: Container, clock: FakeClock
) -> None:
    from noema.domain.errors import LimitExceeded
    from noema.domain.linking import GuessLimits

    limits = GuessLimits(per_account=5, overall=3)
    chat = await _account(container, Platform.TELEGRAM, "77", usd=1)
    guessers = [await _account(container, Platform.WEB, f"g{i}") for i in range(3)]
    for guesser in guessers:
        with pytest.raises(InvalidInput, match="not valid"):
            await linking.redeem_link(container.uow(), clock, "HHHH-HHHH", account_id=guesser, limits=limits)
    newcomer = await _account(container, Platform.DISCORD, "d1")
    code = await linking.issue(container.uow(), clock, chat, CodePurpose.LINK, secrets=container.secrets)
    with pytest.raises(LimitExceeded) as refused:
        await linking.redeem_link(container.uow(), clock, code.code, account_id=newcomer, limits=limits)
    assert refused.value.retry_after == 600
    clock.advance(minutes=10, seconds=1)
    fresh = await linking.issue(container.uow(), clock, chat, CodePurpose.LINK, secrets=container.secrets)
    assert (
        await linking.redeem_link(container.uow(), clock, fresh.code, account_id=newcomer, limits=limits)
    ).id == chat
