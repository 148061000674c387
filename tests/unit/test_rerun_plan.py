"""Running an earlier generation again: one plan for the API, the web page, Telegram and Discord."""

from __future__ import annotations

from noema.domain.reruns import plan_rerun
from noema.domain.runs import OutputKind
from noema.domain.tools import InputType, PrimaryInput, Tool, ToolInput
from tests.fakes.generations import make_generation

PROMPT = ToolInput("input_text", InputType.TEXT, required=True)
SEED = ToolInput("input_seed", InputType.SEED, required=False, default=-1)
IMAGE = ToolInput("input_image", InputType.IMAGE, required=True)
MASK = ToolInput("mask", InputType.IMAGE, required=False)


def _tool(*inputs: ToolInput) -> Tool:
    return Tool(
        id="dep-1",
        command="img2img",
        display_name="img2img",
        description="",
        inputs=inputs,
        primary_input=PrimaryInput.IMAGE,
        output_kind=OutputKind.IMAGE,
        deployment_id="dep-1",
        machine_id=None,
        gpu="L4",
        rate_nanos_per_second=320_000,
    )


STORED = {
    "input_text": "a red fox",
    "input_seed": 4242,
    "input_image": "https://files.test/backend-copy.png",
    "mask": "(uploaded file, 12 KB)",
    "steps": 30,  # an input the tool has since lost
}


def test_a_rerun_reuses_the_recorded_inputs_and_seed_but_no_file() -> None:
    tool = _tool(PROMPT, SEED, IMAGE, MASK)
    plan = plan_rerun(tool, make_generation(inputs=dict(STORED)))
    assert plan.tool is tool
    assert plan.inputs == {"input_text": "a red fox", "input_seed": 4242}
    assert plan.files == (IMAGE, MASK)


def test_a_rerun_with_a_new_seed_leaves_the_seed_to_be_drawn_again() -> None:
    plan = plan_rerun(_tool(PROMPT, SEED, IMAGE), make_generation(inputs=dict(STORED)), new_seed=True)
    assert plan.inputs == {"input_text": "a red fox"}


def test_a_required_file_not_given_again_stops_the_rerun_and_an_optional_one_does_not() -> None:
    plan = plan_rerun(_tool(PROMPT, IMAGE, MASK), make_generation(inputs=dict(STORED)))
    assert plan.missing_file(given=()) == IMAGE
    assert plan.missing_file(given=["input_image"]) is None


def test_a_tool_without_files_can_always_run_again() -> None:
    plan = plan_rerun(_tool(PROMPT, SEED), make_generation(inputs={"input_text": "https://a.test/as-text"}))
    assert plan.files == () and plan.missing_file(given=()) is None
    assert plan.inputs == {"input_text": "https://a.test/as-text"}  # a text is a text, whatever it starts with
