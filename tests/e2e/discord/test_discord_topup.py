"""Discord: /topup answers privately with a one-time sign-in link to the web page's card top-up."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.discord.harness import DiscordRig, discord_app
from tests.e2e.stripe_harness import STRIPE_SETTINGS
from tests.fakes.discord_api import FakeDiscord


async def test_topup_is_a_private_one_time_sign_in_link_to_the_top_up_panel(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, **STRIPE_SETTINGS) as rig:
        await rig.fund("3.25")
        hit = await rig.slash("topup")
        original = rig.fake.original(hit)
        assert original is not None and original["flags"] & 64, original
        match = re.search(r"https://noema\.test(/signin/link/[\w-]+\?to=topup)", original["content"])
        assert match, original["content"]
        opened = await rig.client.get(match.group(1))
        assert opened.status_code == 303 and opened.headers["location"] == "/app/account#add-funds"
        panel = await rig.client.get("/app/account")
        assert 'id="add-funds"' in panel.text and 'data-topup="1000"' in panel.text
        assert re.search(r'id="balance-usd"><data class="usd" value="3\.25', panel.text), panel.text[
            :800
        ]  # this Discord user's account
        rig.client.cookies.clear()
        assert (await rig.client.get(match.group(1))).status_code == 400


async def test_topup_without_card_payments_says_so_privately(rig: DiscordRig) -> None:
    hit = await rig.slash("topup")
    original = rig.fake.original(hit)
    assert original is not None and original["flags"] & 64
    assert "Card payments are not set up" in original["content"] and "/signin/link/" not in original["content"]
