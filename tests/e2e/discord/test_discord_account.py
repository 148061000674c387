"""Discord: /status, /cancel, /link, /apikey, /tools and the rerun and info buttons under a result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from noema.domain.accounts import Platform
from noema.domain.generation import GenerationStatus
from noema.domain.ids import short_id
from noema.domain.linking import CodePurpose
from noema.services import accounts, economy, linking
from tests.e2e.chat_harness import until
from tests.e2e.discord.harness import DiscordRig, discord_app
from tests.fakes.discord_api import FakeDiscord


def _private(rig: DiscordRig, hit: dict[str, Any]) -> dict[str, Any]:
    original = rig.fake.original(hit)
    assert original is not None and original["flags"] & 64, original
    return original


def _result(rig: DiscordRig, hit: dict[str, Any]) -> dict[str, Any] | None:
    original = rig.fake.original(hit)
    return original if original and original["attachments"] else None


async def test_status_is_a_private_embed_with_points_balance_level_bar_and_live_tasks(rig: DiscordRig) -> None:
    account = await rig.fund("12.5")
    c = rig.container
    await economy.change_exp(c.uow(), c.clock, account, 30)
    hit = await rig.slash("status")
    (embed,) = _private(rig, hit)["embeds"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Points"] == "37,091" and fields["Balance"] == "$12.50"
    assert "▰" in fields["Level 3"] or "▱" in fields["Level 3"]
    assert fields["Running"] == "Nothing running."


async def test_status_lists_a_running_task_and_cancel_stops_it_saying_what_was_charged_or_what_is_unknown(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, sandbox_run_seconds=30) as rig:
        account = await rig.fund("1")
        run = await rig.slash("txt2img", [{"name": "prompt", "value": "a slow one"}])
        (generation,) = await rig.generations(account)
        status = await rig.slash("status")
        running = {f["name"]: f["value"] for f in _private(rig, status)["embeds"][0]["fields"]}["Running"]
        assert short_id(generation.id) in running and "/txt2img" in running and "so far" in running
        cancel = await rig.slash("cancel")
        assert _private(rig, cancel)["content"].startswith("🛑 Cancelled /txt2img")
        (generation,) = await rig.generations(account)
        assert generation.status is GenerationStatus.CANCELLED
        balance, held = await rig.wallet(account)
        assert held == 0 and balance == 1_000_000_000 - generation.cost_nanos

        def titles() -> list[str]:
            return [e["title"] for e in (rig.fake.original(run) or {}).get("embeds", [])]

        await until(lambda: any(t.startswith("🛑") for t in titles()), what="the cancelled run's message")
        again = await rig.slash("cancel")
        assert _private(rig, again)["content"] == "Nothing of yours is running right now."
        unknown = _private(rig, await rig.slash("cancel", [{"name": "id", "value": "zzzzz"}]))["content"]
        assert "zzzzz" in unknown and "/status" in unknown


async def test_link_gives_a_code_that_telegram_redeems_merging_the_two_identities(rig: DiscordRig) -> None:
    discord_account = await rig.fund("2")
    hit = await rig.slash("link")
    text = _private(rig, hit)["content"]
    code = text.split("Your link code: `")[1].split("`")[0]
    assert len(code) == 9 and code[4] == "-" and "https://noema.test/signin/link/" in text
    c = rig.container
    telegram = await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id="5001")
    survivor = await linking.redeem_link(c.uow(), c.clock, code, account_id=telegram.account.id)
    assert survivor.id == discord_account
    found = await accounts.get(c.uow(), discord_account)
    assert {i.platform for i in found.identities} == {Platform.DISCORD, Platform.TELEGRAM}
    assert found.account.balance_nanos == 2_000_000_000


async def test_link_with_a_code_from_telegram_joins_this_discord_account_to_it(rig: DiscordRig) -> None:
    c = rig.container
    telegram = await accounts.find_or_create(c.uow, c.clock, platform=Platform.TELEGRAM, platform_id="5002")
    issued = await linking.issue(
        c.uow(), c.clock, telegram.account.id, CodePurpose.LINK, secrets=c.secrets, platform="telegram"
    )
    hit = await rig.slash("link", [{"name": "code", "value": issued.code}])
    assert "Linked" in _private(rig, hit)["content"]
    assert await rig.account_id() == telegram.account.id
    again = await rig.slash("link", [{"name": "code", "value": issued.code}])
    assert "not valid or has expired" in _private(rig, again)["content"]


async def test_apikey_is_private_and_works_on_the_public_api(rig: DiscordRig) -> None:
    hit = await rig.slash("apikey")
    text = _private(rig, hit)["content"]
    key = text.split("`")[1]
    assert key.startswith("nk_")
    me = await rig.client.get("/api/v1/me/status", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text


async def test_tools_lists_every_callable_tool_and_why_one_is_disabled(rig: DiscordRig) -> None:
    hit = await rig.slash("tools")
    (embed,) = _private(rig, hit)["embeds"]
    for command in ("/txt2img", "/img2img", "/animate", "/upscale", "/caption"):
        assert command in embed["description"]
    assert "/flux_pro" in embed["description"] and "disabled" in embed["description"]
    assert "Sandbox" in embed["title"]


async def test_info_describes_the_run_privately_and_rerun_runs_the_same_inputs_again_for_its_owner_only(
    rig: DiscordRig,
) -> None:
    account = await rig.fund("1")
    hit = await rig.slash("txt2img", [{"name": "prompt", "value": "a blue bird input_seed=7"}])
    message = await until(lambda: _result(rig, hit), what="the result")
    (first,) = await rig.generations(account)
    info = await rig.press(f"info:{first.id}", message)
    (embed,) = _private(rig, info)["embeds"]
    assert "a blue bird" in embed["description"] and "**input\\_seed**: 7" in embed["description"]
    assert "Cost:" in embed["description"]

    again = await rig.press(f"rerun:{first.id}", message)
    rerun = await until(lambda: _result(rig, again), what="the rerun's result")
    second = next(g for g in await rig.generations(account) if g.id != first.id)
    assert (second.inputs["input_text"], second.inputs["input_seed"]) == ("a blue bird", 7)
    assert rig.fake.file_bytes(rerun["attachments"][0]) == rig.fake.file_bytes(message["attachments"][0])
    assert rerun["id"] != message["id"]  # a new message, answering the button

    stranger = await rig.press(f"rerun:{first.id}", message, user_id="4400000000000000999")
    (answer,) = rig.fake.followups(stranger)
    assert answer["flags"] & 64 and answer["content"] == "No such generation."
    assert len(await rig.generations(account)) == 2


async def test_set_and_settings_keep_private_defaults_that_runs_use(rig: DiscordRig) -> None:
    account = await rig.fund("1")
    hit = await rig.slash("set", [{"name": "tool", "value": "txt2img"}, {"name": "values", "value": "steps=29"}])
    assert "steps = `29`" in _private(rig, hit)["content"]
    shown = await rig.slash("settings", [{"name": "tool", "value": "txt2img"}])
    assert "steps = `29`" in _private(rig, shown)["content"]
    bad = await rig.slash("set", [{"name": "tool", "value": "txt2img"}, {"name": "values", "value": "width=3"}])
    assert "must be" in _private(rig, bad)["content"]
    await rig.slash("txt2img", [{"name": "prompt", "value": "a meadow"}])
    (generation,) = await rig.generations(account)
    assert generation.inputs["steps"] == 29
    cleared = await rig.slash("set", [{"name": "tool", "value": "txt2img"}, {"name": "values", "value": "clear"}])
    assert "None: the tool's own defaults apply." in _private(rig, cleared)["content"]
