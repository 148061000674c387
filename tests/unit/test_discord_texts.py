"""Discord: what the bot writes — escaped user text, no pings, buttons and embeds within the limits."""

from __future__ import annotations

from noema.adapters.platforms.discord import texts
from noema.adapters.platforms.discord.notifier import file_groups, safe_filename
from noema.adapters.platforms.media import Media, MediaKind
from noema.domain.delivery import DeliveryPayload


def test_user_text_is_shown_as_written_and_no_message_can_ping_anyone() -> None:
    assert (
        texts.escape("**bold** _it_ `code` ~x~ |s| > q") == "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~x\\~ \\|s\\| \\> q"
    )
    body = texts.message("@everyone look")
    assert body["allowed_mentions"] == {"parse": []} and "flags" not in body
    assert texts.message("x" * 3000, ephemeral=True)["flags"] == 64
    assert len(texts.message("x" * 3000)["content"]) == 2000


def test_a_result_embed_names_the_tool_cost_and_short_id_and_shows_the_picture() -> None:
    payload = {"tool": "txt2img", "costUsd": "0.012500000", "shortId": "ab12c", "shortfallUsd": "0.000000000"}
    embed = texts.result_embed(DeliveryPayload.from_json(payload), image="fox.png", notes=[])
    assert embed["title"] == "✅ /txt2img" and "$0.01" in embed["description"] and "ab12c" in embed["description"]
    assert embed["image"] == {"url": "attachment://fox.png"}
    rows = texts.buttons("g-1")
    assert [b["custom_id"] for b in rows[0]["components"]] == ["rerun:g-1", "info:g-1"]


def test_a_failure_says_why_and_whether_anything_was_charged() -> None:
    failed = texts.failure_embed(
        DeliveryPayload.from_json(
            {"status": "failed", "tool": "txt2img", "failureReason": "CUDA *boom*", "costUsd": "0"}
        )
    )
    assert "CUDA \\*boom\\*" in failed["description"] and "Nothing was charged." in failed["description"]
    cancelled = texts.failure_embed(
        DeliveryPayload.from_json({"status": "cancelled", "tool": "x", "costUsd": "0.020000000"})
    )
    assert cancelled["title"].startswith("🛑") and "charged $0.02" in cancelled["description"]


def test_result_files_go_ten_to_a_message_within_the_size_limit_with_names_discord_keeps() -> None:
    files = [(f"f{i}.png", Media(MediaKind.PHOTO, b"x" * 10, f"f{i}.png", "image/png")) for i in range(23)]
    assert [len(g) for g in file_groups(files, limit=1000)] == [10, 10, 3]
    assert [len(g) for g in file_groups(files[:5], limit=25)] == [2, 2, 1]
    assert safe_filename("my picture (1).png") == "my_picture__1_.png" and safe_filename("") == "result.bin"
