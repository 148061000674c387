"""Reading chat commands: names, @bot addressees, prompts and name=value options."""

from __future__ import annotations

import pytest

from noema.domain.chat_commands import example, parse_command, split_inputs
from noema.domain.runs import OutputKind
from noema.domain.tools import InputType, PrimaryInput, Tool, ToolInput


def _tool(*inputs: ToolInput, primary: PrimaryInput = PrimaryInput.TEXT) -> Tool:
    return Tool(
        id="dep-1",
        command="txt2img",
        display_name="txt2img",
        description="",
        inputs=inputs,
        primary_input=primary,
        output_kind=OutputKind.IMAGE,
        deployment_id="dep-1",
        machine_id=None,
        gpu="A10G",
        rate_nanos_per_second=337_000,
    )


PROMPT = ToolInput("input_text", InputType.TEXT, required=True)
STEPS = ToolInput("steps", InputType.INTEGER, required=False, default=20)
IMAGE = ToolInput("input_image", InputType.IMAGE, required=True)


@pytest.mark.parametrize(
    ("text", "name", "addressee", "args"),
    [
        ("/txt2img a red fox", "txt2img", None, "a red fox"),
        ("/TXT2IMG@Noema_Bot  a fox ", "txt2img", "Noema_Bot", "a fox"),
        ("/status", "status", None, ""),
        ("  /link K7PQ-2MXD", "link", None, "K7PQ-2MXD"),
        ("/cancel\nabc12", "cancel", None, "abc12"),
    ],
)
def test_a_command_is_read_with_its_addressee_and_arguments(text: str, name: str, addressee: str, args: str) -> None:
    parsed = parse_command(text)
    assert parsed is not None
    assert (parsed.name, parsed.addressee, parsed.args) == (name, addressee, args)


@pytest.mark.parametrize("text", [None, "", "hello /txt2img", "/", "/txt2img/other", "/a-b c", "/" + "x" * 33])
def test_text_that_is_not_a_command_is_not_read_as_one(text: str | None) -> None:
    assert parse_command(text) is None


def test_a_command_for_another_bot_is_not_for_us_and_case_does_not_matter() -> None:
    other, ours, bare = parse_command("/status@other_bot"), parse_command("/status@NOEMA_bot"), parse_command("/status")
    assert other is not None and ours is not None and bare is not None
    assert other.is_for("noema_bot") is False
    assert ours.is_for("noema_bot") is True
    assert bare.is_for("noema_bot") is True


def test_options_naming_inputs_are_taken_out_of_the_prompt() -> None:
    prompt, options = split_inputs(_tool(PROMPT, STEPS), "a fox steps=30 in the snow")
    assert prompt == "a fox in the snow"
    assert options == {"steps": "30"}


def test_words_with_equals_that_name_no_input_stay_in_the_prompt() -> None:
    prompt, options = split_inputs(_tool(PROMPT, STEPS), "e=mc2 style=noir")
    assert prompt == "e=mc2 style=noir"
    assert options == {}


def test_a_quoted_option_value_keeps_its_spaces_and_the_prompt_input_is_not_an_option() -> None:
    prompt, options = split_inputs(_tool(PROMPT, STEPS), 'input_text=x steps="12"')
    assert prompt == "input_text=x"
    assert options == {"steps": "12"}


def test_the_example_of_an_image_tool_says_to_reply_to_a_photo() -> None:
    assert example(_tool(IMAGE, primary=PrimaryInput.IMAGE)) == "reply to a photo with /txt2img"
    assert example(_tool(PROMPT)) == "/txt2img a red fox in the snow"


def _many(n: int) -> list[Tool]:
    from dataclasses import replace

    base = _tool(PROMPT)
    return [replace(base, id=f"dep-{i:03d}", command=f"tool_{i:03d}") for i in range(n)]


def test_the_menu_holds_at_most_the_limit_ranked_by_priority_then_usage_then_name() -> None:
    from dataclasses import replace

    from noema.domain.tools import Visibility, rank_for_menu

    tools = _many(150)
    tools[149] = replace(tools[149], priority=10)  # an operator's favourite comes first
    tools[0] = replace(tools[0], enabled=False, disabled_reason="no price")
    tools[1] = replace(tools[1], visibility=Visibility.HIDDEN)
    usage = {"dep-120": 50, "dep-121": 70}
    menu = rank_for_menu(tools, usage, limit=92)
    assert len(menu) == 92
    assert [t.command for t in menu[:3]] == ["tool_149", "tool_121", "tool_120"]
    assert [t.command for t in menu[3:6]] == ["tool_002", "tool_003", "tool_004"]
    assert all(t.enabled and t.visibility is Visibility.PUBLIC for t in menu)
    assert rank_for_menu(tools, usage, limit=0) == []


@pytest.mark.parametrize(
    ("visibility", "account", "through_preset", "admin"),
    [
        ("public", True, True, True),
        ("hidden", False, True, True),
        ("admin", False, False, True),
    ],
)
def test_one_visibility_rule_says_who_runs_a_tool_by_name_through_a_preset_or_as_the_admin(
    visibility: str, account: bool, through_preset: bool, admin: bool
) -> None:
    from dataclasses import replace

    from noema.domain.tools import ACCOUNT, ADMIN_CLIENT, THROUGH_PRESET, Visibility, may_list, may_run

    tool = replace(_tool(PROMPT), visibility=Visibility(visibility))
    assert (may_run(tool, ACCOUNT), may_run(tool, THROUGH_PRESET), may_run(tool, ADMIN_CLIENT)) == (
        account,
        through_preset,
        admin,
    )
    assert (may_list(tool, ACCOUNT), may_list(tool, ADMIN_CLIENT)) == (visibility == "public", True)
