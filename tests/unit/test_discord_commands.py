"""Discord: the slash commands Noema registers stay within Discord's limits and map back to tool inputs."""

from __future__ import annotations

from noema.adapters.platforms.discord.commands import BUILTINS, command_set, inputs_of, tool_command
from noema.domain.runs import OutputKind
from noema.domain.tools import InputType, PrimaryInput, Tool, ToolInput
from tests.fakes.discord_api_commands import validate_commands


def _tool(command: str, inputs: tuple[ToolInput, ...], description: str = "Draws things") -> Tool:
    return Tool(
        id=f"dep-{command}",
        command=command,
        display_name=command.title(),
        description=description,
        inputs=inputs,
        primary_input=PrimaryInput.TEXT,
        output_kind=OutputKind.IMAGE,
        deployment_id=f"dep-{command}",
        machine_id="m",
        gpu="A10G",
        rate_nanos_per_second=337_000,
    )


TXT2IMG = _tool(
    "txt2img",
    (
        ToolInput("input_text", InputType.TEXT, True, max_length=4000, description="What to draw."),
        ToolInput("negative_prompt", InputType.TEXT, False, default=""),
        ToolInput("input_seed", InputType.SEED, False, default=-1),
        ToolInput("width", InputType.SLIDER, False, 512, minimum=256, maximum=1536, integer=True),
        ToolInput("cfg", InputType.SLIDER, False, 7.5, minimum=1.0, maximum=20.0),
        ToolInput("sampler", InputType.ENUM, False, "euler", options=("euler", "ddim")),
        ToolInput("tiled", InputType.BOOLEAN, False, False),
        ToolInput("lora", InputType.LORA, False),
    ),
)
IMG2IMG = _tool(
    "img2img",
    (
        ToolInput("input_image", InputType.IMAGE, True),
        ToolInput("input_text", InputType.TEXT, False),
        ToolInput("Strength Value", InputType.NUMBER, True, minimum=0, maximum=1),
    ),
)


def test_the_built_ins_come_first_and_every_tool_gets_a_command_within_discords_rules() -> None:
    commands = command_set([TXT2IMG, IMG2IMG])
    validate_commands(commands)  # the fake's copy of Discord's validation: raises on what Discord refuses
    assert [c["name"] for c in commands] == [*BUILTINS, "txt2img", "img2img"]


def test_a_tool_command_has_prompt_image_and_typed_options_with_their_ranges_and_choices() -> None:
    options = {o["name"]: o for o in tool_command(TXT2IMG)["options"]}
    assert next(iter(options)) == "prompt" and options["prompt"]["required"] is True
    assert options["prompt"]["max_length"] == 4000 and options["prompt"]["description"] == "What to draw."
    assert (options["width"]["type"], options["width"]["min_value"], options["width"]["max_value"]) == (4, 256, 1536)
    assert options["cfg"]["type"] == 10 and options["cfg"]["max_value"] == 20.0
    assert options["input_seed"]["type"] == 4 and options["input_seed"]["min_value"] == -1
    assert options["sampler"]["choices"] == [{"name": "euler", "value": "euler"}, {"name": "ddim", "value": "ddim"}]
    assert options["tiled"]["type"] == 5 and options["negative_prompt"]["type"] == 3
    assert "lora" not in options and "image" not in options


def test_required_options_come_before_optional_ones_and_names_are_made_valid() -> None:
    options = tool_command(IMG2IMG)["options"]
    assert [(o["name"], o["required"]) for o in options] == [
        ("image", True),
        ("strength_value", True),
        ("prompt", False),
    ]
    validate_commands([tool_command(IMG2IMG)])


def test_at_most_100_commands_25_options_and_tools_named_like_a_built_in_are_left_out() -> None:
    many_inputs = tuple(
        ToolInput(f"opt{i}", InputType.ENUM, False, options=tuple(f"{'v' * 90}{j:02}" for j in range(25)))
        for i in range(40)
    )
    tools = [_tool("status", ())] + [
        _tool(f"tool{i}", (ToolInput("prompt", InputType.TEXT, True), *many_inputs), "x" * 300) for i in range(150)
    ]
    commands = command_set(tools)
    validate_commands(commands)
    assert len(commands) == 100 and [c["name"] for c in commands].count("status") == 1
    assert all(len(c.get("options", [])) <= 25 and len(c["description"]) <= 100 for c in commands)


def test_an_invocation_gives_inputs_from_the_prompt_words_and_the_typed_options() -> None:
    inputs = inputs_of(TXT2IMG, {"prompt": "a fox sampler=ddim in snow", "width": 768, "tiled": True, "cfg": None})
    assert inputs == {"input_text": "a fox in snow", "sampler": "ddim", "width": 768, "tiled": True}
    assert inputs_of(IMG2IMG, {"image": "123", "strength_value": 0.3}) == {"Strength Value": 0.3}
