"""Discord: /help and /account (the texts Telegram uses), and the Cancel button on the progress message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from noema.domain.generation import GenerationStatus
from tests.e2e.chat_harness import until
from tests.e2e.discord.harness import DiscordRig, discord_app
from tests.fakes.discord_api import FakeDiscord

STRANGER = "4400000000000000999"


def _private(rig: DiscordRig, hit: dict[str, Any]) -> dict[str, Any]:
    original = rig.fake.original(hit)
    assert original is not None and original["flags"] & 64, original
    return original


def _custom_ids(message: dict[str, Any] | None) -> list[str]:
    rows = (message or {}).get("components") or []
    return [item.get("custom_id", "") for row in rows for item in row.get("components", [])]


async def test_help_and_account_are_registered_with_the_other_built_in_commands(rig: DiscordRig) -> None:
    names = {name for (scope, name) in rig.fake.commands if scope is None}
    assert {"help", "account", "run", "tools", "status", "cancel"} <= names


async def test_help_explains_the_commands_privately_with_a_real_tool_as_example(rig: DiscordRig) -> None:
    text = _private(rig, await rig.slash("help"))["content"]
    for command in ("/tools", "/status", "/cancel", "/link", "/apikey", "/account"):
        assert f"`{command}" in text, command
    top = (await rig.container.chat.menu(limit=1))[0].command
    assert f"`/{top} a red fox`" in text and "`image` option" in text and "with Telegram" in text


async def test_account_shows_the_record_privately_without_secrets(rig: DiscordRig) -> None:
    await rig.fund("1")
    hit = await rig.slash("account")
    (embed,) = _private(rig, hit)["embeds"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert embed["title"] == "Your account"
    assert fields["Linked platforms"] == "discord" and fields["Balance"].startswith("$1.00")
    assert fields["Status"] == "active" and "Member since" in fields
    assert rig.fake.bot_token not in str(embed) and "nk_" not in str(embed)


async def test_the_cancel_button_stops_the_run_for_its_owner_only_and_goes_away_at_the_end(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, sandbox_run_seconds=30) as rig:
        account = await rig.fund("1")
        run = await rig.slash("txt2img", [{"name": "prompt", "value": "a slow one"}])
        (generation,) = await rig.generations(account)
        wanted = f"cancel:{generation.id}"

        def with_cancel() -> dict[str, Any] | None:
            message = rig.fake.original(run)
            return message if message and wanted in _custom_ids(message) else None

        progress = await until(with_cancel, what="the Cancel button")

        stranger = await rig.press(wanted, progress, user_id=STRANGER)
        assert "No running generation" in _private(rig, stranger)["content"]
        (generation,) = await rig.generations(account)
        assert not generation.is_terminal

        mine = await rig.press(wanted, progress)
        assert _private(rig, mine)["content"].startswith("🛑 Cancelled /txt2img")
        (generation,) = await rig.generations(account)
        assert generation.status is GenerationStatus.CANCELLED
        balance, held = await rig.wallet(account)
        assert held == 0 and balance == 1_000_000_000 - generation.cost_nanos

        def ended() -> dict[str, Any] | None:
            message = rig.fake.original(run)
            titles = [e["title"] for e in (message or {}).get("embeds", [])]
            return message if any(t.startswith("🛑") for t in titles) else None

        final = await until(ended, what="the cancelled run's message")
        assert not any(c.startswith("cancel:") for c in _custom_ids(final))
        again = await rig.press(wanted, progress)
        assert "No running generation" in _private(rig, again)["content"]


async def test_a_finished_result_carries_no_cancel_button(rig: DiscordRig) -> None:
    await rig.fund("1")
    run = await rig.slash("txt2img", [{"name": "prompt", "value": "a quick one"}])
    result = await until(lambda: (m := rig.fake.original(run)) and m["attachments"] and m, what="the result")
    ids = _custom_ids(result)
    assert ids and all(i.startswith(("rerun:", "info:")) for i in ids)
    patches = [c.json for c in rig.fake.calls_to("PATCH", run["token"]) if c.ok and not c.files and c.json]
    assert any(c.startswith("cancel:") for p in patches for c in _custom_ids(p))  # it was there while running
