"""``noema payments`` as a real process: list, show, refund through Stripe, and ``ledger verify``."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from noema.bootstrap import Container
from tests.conftest import funded_key
from tests.e2e import stripe_harness as card
from tests.e2e.test_cli import noema
from tests.fakes.stripe_api import SECRET_KEY, WEBHOOK_SECRET, FakeStripe


async def test_a_refund_from_the_command_line_is_taken_back_once_by_stripes_webhook(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    env = {
        "NOEMA_STRIPE_SECRET_KEY": SECRET_KEY,
        "NOEMA_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "NOEMA_STRIPE_API_BASE": fake_stripe.url,
    }
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        topup = await card.topup(client, headers, "10")
        sid = card.session_id(topup)
        await fake_stripe.send(fake_stripe.complete(sid), client=client)
        listed = noema(db_url, "payments", "list", "--account", aid, env=env)
        assert listed.returncode == 0 and topup["paymentId"] in listed.stdout and "paid" in listed.stdout, listed.stderr
        refund = noema(db_url, "payments", "refund", topup["paymentId"], "--amount", "4", env=env)
        assert refund.returncode == 0, refund.stderr
        assert [r["amount"] for r in fake_stripe.refunds] == [400]
        assert await card.wallet(application, aid) == ("10.00", "0.00")
        event = fake_stripe.refund_event(sid)
        await fake_stripe.send(event, client=client)
        await fake_stripe.send(event, client=client)
        assert await card.wallet(application, aid) == ("6.00", "0.00")
        shown = noema(db_url, "payments", "show", topup["paymentId"], env=env)
        assert shown.returncode == 0 and "partially_refunded" in shown.stdout and "$4.00" in shown.stdout
        too_much = noema(db_url, "payments", "refund", topup["paymentId"], "--amount", "7", env=env)
        assert too_much.returncode == 1 and "between 0.01 and 6.00" in too_much.stderr
        assert "Traceback" not in too_much.stderr
        verified = noema(db_url, "ledger", "verify", env=env)
        assert verified.returncode == 0 and "payments agree" in verified.stdout, verified.stdout


async def test_ledger_verify_fails_when_a_payment_disagrees_with_the_ledger(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        c: Container = application.state.container
        _aid, headers = await funded_key(application, "0")
        sid = card.session_id(await card.topup(client, headers))
        await fake_stripe.send(fake_stripe.complete(sid), client=client)
        async with c.engine.begin() as conn:
            await conn.execute(text("UPDATE payments SET taken_back_nanos = 1"))
        bad = noema(db_url, "ledger", "verify")
        assert bad.returncode == 1 and "disagree with the ledger" in bad.stdout, bad.stdout
        async with c.engine.begin() as conn:
            await conn.execute(text("UPDATE payments SET taken_back_nanos = 0"))


async def test_payments_list_pages_newest_first_with_the_cursor_it_prints(
    db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> None:
    env = {"NOEMA_STRIPE_SECRET_KEY": SECRET_KEY, "NOEMA_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    async with card.stripe_app(db_url, tmp_path, fake_stripe) as (application, client):
        aid, headers = await funded_key(application, "0")
        made = [(await card.topup(client, headers, usd))["paymentId"] for usd in ("5", "10", "25")]
    first = noema(db_url, "payments", "list", "--limit", "2", "--json", env=env)
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    assert [p["id"] for p in page["items"]] == made[:0:-1] and page["nextCursor"]
    rest = noema(db_url, "payments", "list", "--limit", "2", "--cursor", page["nextCursor"], "--json", env=env)
    after = json.loads(rest.stdout)
    assert [p["id"] for p in after["items"]] == [made[0]] and after["nextCursor"] is None
    table = noema(db_url, "payments", "list", "--account", aid, "--limit", "2", env=env)
    assert made[2] in table.stdout and made[0] not in table.stdout
    assert "noema payments list --account " + aid + " --cursor " in table.stderr
    wrong = noema(db_url, "payments", "list", "--cursor", "nonsense", env=env)
    assert wrong.returncode == 1 and "cursor is not valid" in wrong.stderr and "Traceback" not in wrong.stderr
