"""Per-account defaults: which inputs may have one, what is a valid value, and that explicit inputs win."""

from __future__ import annotations

import pytest

from noema.domain import preferences
from noema.domain.errors import InvalidInput
from noema.domain.runs import OutputKind
from noema.domain.tools import InputType, PrimaryInput, Tool, ToolInput

TOOL = Tool(
    id="dep-1",
    command="txt2img",
    display_name="txt2img",
    description="",
    inputs=(
        ToolInput("input_text", InputType.TEXT, required=True),
        ToolInput("negative_prompt", InputType.TEXT, required=False, default=""),
        ToolInput("steps", InputType.INTEGER, required=False, default=20, minimum=1, maximum=50),
        ToolInput("sampler", InputType.ENUM, required=False, default="euler", options=("euler", "ddim")),
        ToolInput("input_seed", InputType.SEED, required=False),
        ToolInput("input_image", InputType.IMAGE, required=False),
    ),
    primary_input=PrimaryInput.TEXT,
    output_kind=OutputKind.IMAGE,
    deployment_id="dep-1",
    machine_id=None,
    gpu="A10G",
    rate_nanos_per_second=337_000,
)


def test_every_input_but_the_prompt_and_files_can_have_a_default() -> None:
    assert preferences.settable(TOOL) == ["negative_prompt", "steps", "sampler", "input_seed"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"input_text": "x"}, "not an input of /txt2img you can set"),
        ({"input_image": "https://example.com/a.png"}, "not an input of /txt2img you can set"),
        ({"nope": 1}, "you can set: negative_prompt, steps, sampler, input_seed"),
        ({"steps": 500}, "steps"),
        ({"steps": "many"}, "steps"),
        ({"sampler": "plms"}, "must be one of"),
        ({"negative_prompt": ["a", "list"]}, "short text, a number or true/false"),
        ({"negative_prompt": "x" * 2001}, "short text"),
        ([("steps", 3)], "must be an object"),
    ],
)
def test_a_bad_default_is_refused_with_the_reason(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        preferences.check(TOOL, raw)


def test_valid_defaults_are_kept_as_given_and_none_removes_one() -> None:
    changes = preferences.check(TOOL, {"steps": "30", "sampler": "ddim", "negative_prompt": None})
    assert changes == {"steps": "30", "sampler": "ddim", "negative_prompt": None}
    stored = preferences.merged({"negative_prompt": "blurry", "input_seed": 5}, changes)
    assert stored == {"steps": "30", "sampler": "ddim", "input_seed": 5}


def test_explicit_inputs_win_over_defaults_and_stale_defaults_are_ignored() -> None:
    defaults = {"steps": 30, "sampler": "ddim", "removed_input": 1}
    assert preferences.under_explicit(TOOL, defaults, {"steps": 12, "input_text": "a fox"}) == {
        "steps": 12,
        "sampler": "ddim",
        "input_text": "a fox",
    }
