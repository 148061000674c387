"""Discord: reading the interactions Discord posts, and refusing what is not one."""

from __future__ import annotations

from typing import Any

import pytest

from noema.adapters.platforms.discord.interactions import MAX_ATTACHMENT_BYTES, InteractionType, parse_interaction
from noema.domain.errors import InvalidInput

ENVELOPE = {"id": "1300000000000000000", "application_id": "1100000000000000001", "token": "tok"}
USER = {"id": "4400000000000000004", "username": "ada", "global_name": "Ada"}


def _command(data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**ENVELOPE, "type": 2, "channel_id": "33", "member": {"user": USER, "nick": None}, "data": data, **extra}


def test_a_ping_needs_only_the_envelope() -> None:
    ping = parse_interaction({**ENVELOPE, "type": 1})
    assert ping.type is InteractionType.PING and ping.token == "tok"


def test_a_slash_command_gives_its_user_channel_options_and_resolved_attachments() -> None:
    data = {
        "name": "img2img",
        "options": [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "image", "type": 11, "value": "9"}],
        "resolved": {"attachments": {"9": {"id": "9", "filename": "a.png", "url": "https://cdn/x", "size": 5}}},
    }
    ix = parse_interaction(_command(data, guild_id="22", attachment_size_limit=8_000_000))
    assert (ix.user_id, ix.display_name, ix.username) == ("4400000000000000004", "Ada", "ada")
    assert (ix.channel_id, ix.guild_id, ix.name, ix.size_limit) == ("33", "22", "img2img", 8_000_000)
    assert ix.options == {"prompt": "a fox", "image": "9"}
    attachment = ix.attachment("image")
    assert attachment is not None and (attachment.url, attachment.size) == ("https://cdn/x", 5)
    assert ix.attachment("prompt") is None


def test_options_inside_a_sub_command_are_read_and_the_focused_one_is_known() -> None:
    data = {
        "name": "run",
        "options": [{"name": "go", "type": 1, "options": [{"name": "tool", "value": "tx", "focused": True}]}],
    }
    ix = parse_interaction({**_command(data), "type": 4})
    assert ix.options == {"tool": "tx"} and ix.focused == "tool"


def test_a_dm_interaction_has_the_user_at_the_top_and_the_default_size_limit() -> None:
    ix = parse_interaction({**ENVELOPE, "type": 2, "user": USER, "channel_id": "5", "data": {"name": "status"}})
    assert ix.user_id == USER["id"] and ix.guild_id is None and ix.size_limit == MAX_ATTACHMENT_BYTES


def test_the_creation_time_comes_from_the_snowflake() -> None:
    ix = parse_interaction({**ENVELOPE, "type": 1, "id": str(1000 << 22)})
    assert ix.created_at == pytest.approx(1_420_070_401.0)


def test_a_button_gives_its_custom_id() -> None:
    ix = parse_interaction(
        {**ENVELOPE, "type": 3, "user": USER, "data": {"custom_id": "rerun:abc", "component_type": 2}}
    )
    assert ix.custom_id == "rerun:abc"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "x",
        {**ENVELOPE},
        {**ENVELOPE, "type": 9},
        {**ENVELOPE, "type": True},
        {**ENVELOPE, "type": 1.0},
        {**ENVELOPE, "type": 1, "token": 5},
        {**ENVELOPE, "type": 1, "id": "12ab"},
        {**ENVELOPE, "type": 2, "data": {"name": "status"}},
        {**ENVELOPE, "type": 2, "user": {"id": 4}, "data": {"name": "status"}},
        {**ENVELOPE, "type": 2, "user": USER, "data": {"name": "Not A Name!"}},
        {**ENVELOPE, "type": 2, "user": USER, "data": {"name": "run", "options": {"tool": "x"}}},
        {**ENVELOPE, "type": 2, "user": USER, "data": {"name": "run", "options": [{"name": "p", "value": {"x": 1}}]}},
        {**ENVELOPE, "type": 2, "user": USER, "data": {"name": "run", "resolved": {"attachments": {"1": {}}}}},
        {**ENVELOPE, "type": 2, "user": USER, "data": "status"},
        {**ENVELOPE, "type": 3, "user": USER, "data": {"custom_id": ""}},
        {**ENVELOPE, "type": 2, "user": USER, "channel_id": 5, "data": {"name": "status"}},
    ],
)
def test_what_is_not_an_interaction_is_invalid_input(payload: Any) -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        parse_interaction(payload)
