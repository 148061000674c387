"""The tool catalog: backend deployments become priced, uniquely named tools, whatever the data looks like."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noema.adapters.backends.comfydeploy_parse import parse_deployment, parse_machine, parse_workflow_version
from noema.domain.catalog import build_catalog, command_name, primary_input_of
from noema.domain.catalog_names import assign_commands
from noema.domain.pricing import parse_rates
from noema.domain.runs import DeploymentInfo, InputSpec, MachineInfo, OutputKind, WorkflowVersionInfo
from noema.domain.tools import InputType, PrimaryInput, Tool, ToolInput, ToolOverride, Visibility

DATA = Path(__file__).parents[1] / "data" / "comfydeploy"
RATES = parse_rates({})
COMMAND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
A10G = MachineInfo(id="m-a10g", name="a10g", gpu="A10G")
MACHINES = [A10G, MachineInfo(id="m-h200", name="h200", gpu="H200"), MachineInfo(id="m-none", name="bare")]
EXT = "ComfyUIDeployExternal"


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def recorded_catalog(**kwargs: Any) -> list[Tool]:
    deployments = [parse_deployment(d) for d in fixture("deployments.json")]
    machines = [parse_machine(m) for m in fixture("machines.json")]
    versions = {v.id: v for v in (parse_workflow_version(o) for o in fixture("workflow_versions.json"))}
    return build_catalog(deployments, machines, versions, rates=RATES, backend_label="comfydeploy", **kwargs)


def spec(input_id: str, suffix: str, default: Any = None, **fields: Any) -> InputSpec:
    return InputSpec(input_id=input_id, class_type=EXT + suffix, default_value=default, **fields)


def deployment(dep_id: str = "dep-1", name: str = "txt2img", **fields: Any) -> DeploymentInfo:
    fields.setdefault("machine_id", "m-a10g")
    fields.setdefault("input_types", (spec("input_text", "Text"),))
    fields.setdefault("output_types", ("ComfyDeployOutputImage",))
    return DeploymentInfo(id=dep_id, name=name, **fields)


def one_tool(dep: DeploymentInfo, versions: dict[str, WorkflowVersionInfo] | None = None, **kwargs: Any) -> Tool:
    [tool] = build_catalog([dep], MACHINES, versions or {}, rates=RATES, **kwargs)
    return tool


def version(
    workflow_api: Any = None, workflow: Any = None, *, version_id: str = "v-1", number: int = 1
) -> WorkflowVersionInfo:
    return WorkflowVersionInfo(
        id=version_id, workflow_id="wf-1", version=number, workflow=workflow or {}, workflow_api=workflow_api or {}
    )


def graph_node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def graph_tool(api: dict[str, Any], *, output_types: tuple[str, ...] = ()) -> Tool:
    dep = deployment(input_types=None, workflow_version_id="v-1", workflow_id="wf-1", output_types=output_types)
    return one_tool(dep, {"v-1": version(api)})


# --- the recorded ComfyDeploy fixtures ----------------------------------------------------------


def test_the_recorded_deployments_become_two_tools() -> None:
    tools = {tool.id: tool for tool in recorded_catalog()}
    txt2img = tools["15e79589-12c9-453c-a41a-348fdd7de957"]
    assert txt2img.command == "txt2img"
    assert txt2img.display_name == "txt2img"
    assert txt2img.gpu == "A10G"
    assert txt2img.rate_nanos_per_second == 337_000
    assert txt2img.enabled
    assert txt2img.output_kind is OutputKind.IMAGE
    assert txt2img.category == "image"
    assert txt2img.description == "Turns a prompt into a picture."
    assert txt2img.primary_input is PrimaryInput.TEXT
    assert txt2img.backend_label == "comfydeploy"
    assert txt2img.workflow_id == "7d2e9a10-5c4b-4e3f-8a1d-2b3c4d5e6f70"
    assert txt2img.extra["input_source"] == "input_types"


def test_the_recorded_inputs_keep_their_types_defaults_bounds_and_options() -> None:
    [txt2img] = [t for t in recorded_catalog() if t.command == "txt2img"]
    assert [i.name for i in txt2img.inputs] == ["input_text", "input_number_slider_int", "input_enum"]
    text, steps, sampler = txt2img.inputs
    assert (text.type, text.required, text.default, text.display_name, text.max_length) == (
        InputType.TEXT,
        False,
        "a cat",
        "Prompt",
        4000,
    )
    assert (steps.type, steps.integer, steps.minimum, steps.maximum, steps.default) == (
        InputType.SLIDER,
        True,
        1,
        50,
        20,
    )
    assert steps.description == "Sampling steps"
    assert (sampler.type, sampler.options, sampler.default) == (InputType.ENUM, ("euler", "dpmpp_2m", "ddim"), "euler")


def test_a_recorded_legacy_machine_with_gpu_type_is_priced_as_l4() -> None:
    [upscaler] = [t for t in recorded_catalog() if t.id == "2b8e0f41-6d3a-4c2b-9e1f-0a9b8c7d6e5f"]
    assert upscaler.gpu == "L4"
    assert upscaler.rate_nanos_per_second == 320_000
    assert upscaler.description == "upscaler (staging)"
    assert upscaler.inputs == ()
    assert upscaler.primary_input is PrimaryInput.NONE


# --- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "input_type", "integer"),
    [
        ("Text", InputType.TEXT, False),
        ("TextSingleLine", InputType.TEXT, False),
        ("TextAny", InputType.TEXT, False),
        ("Image", InputType.IMAGE, False),
        ("ImageAlpha", InputType.IMAGE, False),
        ("ImageBatch", InputType.FILE, False),
        ("Number", InputType.NUMBER, False),
        ("NumberInt", InputType.INTEGER, False),
        ("NumberSlider", InputType.SLIDER, False),
        ("NumberSliderInt", InputType.SLIDER, True),
        ("Boolean", InputType.BOOLEAN, False),
        ("Enum", InputType.ENUM, False),
        ("Seed", InputType.SEED, False),
        ("Lora", InputType.LORA, False),
        ("Checkpoint", InputType.CHECKPOINT, False),
        ("Video", InputType.VIDEO, False),
        ("Audio", InputType.AUDIO, False),
        ("File", InputType.FILE, False),
        ("EXR", InputType.FILE, False),
        ("FaceModel", InputType.FILE, False),
    ],
)
def test_every_external_input_class_maps_to_its_input_type(suffix: str, input_type: InputType, integer: bool) -> None:
    for tool in (
        one_tool(deployment(input_types=(spec("x", suffix),))),
        graph_tool({"1": graph_node(EXT + suffix, input_id="x")}),
    ):
        [tool_input] = tool.inputs
        assert (tool_input.type, tool_input.integer) == (input_type, integer)


def test_an_unknown_external_class_of_type_string_becomes_text() -> None:
    tool = one_tool(deployment(input_types=(InputSpec("x", EXT + "Markdown", type="string"),)))
    assert tool.inputs[0].type is InputType.TEXT


def test_an_unknown_external_class_of_another_type_is_skipped_with_a_note() -> None:
    tool = one_tool(deployment(input_types=(InputSpec("x", EXT + "Mesh", type="mesh"), spec("p", "Text"))))
    assert [i.name for i in tool.inputs] == ["p"]
    assert "x: unsupported input class 'ComfyUIDeployExternalMesh'" in tool.extra["skipped_inputs"]


@pytest.mark.parametrize(
    ("suffix", "default", "required"),
    [
        ("Text", None, True),
        ("Text", "", False),
        ("Text", "a cat", False),
        ("Image", None, True),
        ("Image", "", True),
        ("Image", "https://cdn.example/x.png", False),
        ("Video", "  ", True),
        ("NumberInt", None, True),
        ("NumberInt", 0, False),
        ("Boolean", False, False),
        ("Enum", "", True),
        ("Seed", None, False),
        ("Seed", -1, False),
    ],
)
def test_an_input_is_required_exactly_when_it_has_no_default(suffix: str, default: Any, required: bool) -> None:
    tool = one_tool(deployment(input_types=(spec("x", suffix, default),)))
    assert tool.inputs[0].required is required


def test_inputs_come_from_the_workflow_api_in_numeric_node_order_when_input_types_is_missing() -> None:
    api = {
        "10": graph_node(EXT + "NumberInt", input_id="steps", default_value=20, min_value=1, max_value=50),
        "9": graph_node("KSampler", seed=["3", 0]),
        "2": graph_node(EXT + "Text", input_id="input_text", display_name="Prompt", description="What to draw."),
        "3": graph_node(EXT + "Enum", input_id="sampler", default_value="euler", options='["euler", "ddim"]'),
        "12:1": graph_node(EXT + "Boolean", input_id="raw", default_value=False),
    }
    tool = graph_tool(api)
    assert [i.name for i in tool.inputs] == ["input_text", "sampler", "steps", "raw"]
    assert tool.extra["input_source"] == "workflow_api"
    prompt, sampler, steps, _raw = tool.inputs
    assert (prompt.required, prompt.display_name, prompt.description) == (True, "Prompt", "What to draw.")
    assert sampler.options == ("euler", "ddim")
    assert (steps.minimum, steps.maximum, steps.default) == (1, 50, 20)


def test_input_types_win_over_the_graph_when_both_exist() -> None:
    api = {"1": graph_node(EXT + "Image", input_id="input_image")}
    dep = deployment(workflow_version_id="v-1", input_types=(spec("input_text", "Text"),))
    tool = one_tool(dep, {"v-1": version(api)})
    assert [i.name for i in tool.inputs] == ["input_text"]


def test_inputs_comfydeploy_leaves_out_of_input_types_like_the_seed_are_found_in_the_graph() -> None:
    api = {
        "1": graph_node(EXT + "Text", input_id="input_text"),
        "2": graph_node(EXT + "Seed", input_id="input_seed", default_value=-1, display_name="Seed"),
        "3": graph_node(EXT + "Audio", input_id="input_audio"),
    }
    listed = (spec("input_text", "Text", "a cat", type="string", display_name="Prompt"),)
    tool = one_tool(deployment(workflow_version_id="v-1", input_types=listed), {"v-1": version(api)})
    assert [i.name for i in tool.inputs] == ["input_text", "input_seed", "input_audio"]
    prompt, seed, audio = tool.inputs
    assert (prompt.default, prompt.display_name) == ("a cat", "Prompt")  # what input_types says wins
    assert (seed.type, seed.default, seed.display_name, seed.required) == (InputType.SEED, -1, "Seed", False)
    assert audio.type is InputType.AUDIO
    assert tool.extra["input_source"] == "input_types"


def test_a_default_wired_to_another_node_is_no_default() -> None:
    tool = graph_tool({"1": graph_node(EXT + "Image", input_id="input_image", default_value=["7", 0])})
    assert tool.inputs[0].required
    assert tool.inputs[0].default is None


def test_a_duplicate_input_id_is_kept_once_and_noted() -> None:
    tool = one_tool(deployment(input_types=(spec("p", "Text"), spec("p", "Text", "x"))))
    assert len(tool.inputs) == 1
    assert tool.extra["skipped_inputs"] == ["p: duplicate input_id"]


def test_the_version_is_found_by_workflow_id_when_the_version_id_is_unknown() -> None:
    old = version({"1": graph_node(EXT + "Text", input_id="old")}, version_id="v-old", number=1)
    new = version({"1": graph_node(EXT + "Text", input_id="new")}, version_id="v-new", number=2)
    dep = deployment(input_types=None, workflow_id="wf-1", workflow_version_id="v-gone")
    tool = one_tool(dep, {"v-old": old, "v-new": new})
    assert [i.name for i in tool.inputs] == ["new"]
    assert tool.extra["notes"] == ["workflow version v-gone not found; used version 2"]


# --- primary input ----------------------------------------------------------------------------


def ti(name: str, input_type: InputType, *, required: bool = True) -> ToolInput:
    return ToolInput(name=name, type=input_type, required=required)


@pytest.mark.parametrize(
    ("inputs", "primary"),
    [
        ([ti("p", InputType.TEXT)], PrimaryInput.TEXT),
        ([ti("p", InputType.TEXT, required=False)], PrimaryInput.TEXT),
        ([ti("i", InputType.IMAGE), ti("p", InputType.TEXT, required=False)], PrimaryInput.IMAGE_TEXT),
        ([ti("i", InputType.IMAGE), ti("p", InputType.TEXT)], PrimaryInput.IMAGE_TEXT),
        ([ti("i", InputType.IMAGE), ti("s", InputType.SEED, required=False)], PrimaryInput.IMAGE),
        ([ti("i", InputType.IMAGE, required=False), ti("p", InputType.TEXT)], PrimaryInput.TEXT),
        ([ti("v", InputType.VIDEO), ti("p", InputType.TEXT, required=False)], PrimaryInput.VIDEO),
        ([ti("a", InputType.AUDIO)], PrimaryInput.AUDIO),
        ([ti("n", InputType.NUMBER)], PrimaryInput.NONE),
        ([ti("i", InputType.IMAGE, required=False)], PrimaryInput.NONE),
        ([], PrimaryInput.NONE),
    ],
)
def test_the_primary_input_follows_the_required_media_and_the_text_inputs(
    inputs: list[ToolInput], primary: PrimaryInput
) -> None:
    assert primary_input_of(inputs) is primary


def test_an_image_batch_is_never_the_primary_image() -> None:
    tool = one_tool(deployment(input_types=(spec("input_images", "ImageBatch"),)))
    assert tool.primary_input is PrimaryInput.NONE


# --- outputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "kind", "category"),
    [
        ([graph_node("ComfyDeployOutputImage", images=["8", 0])], OutputKind.IMAGE, "image"),
        ([graph_node("SaveImage"), graph_node("PreviewImage")], OutputKind.IMAGE, "image"),
        ([graph_node("VHS_VideoCombine", format="image/gif")], OutputKind.ANIMATION, "animation"),
        ([graph_node("VHS_VideoCombine", format="image/webp")], OutputKind.ANIMATION, "animation"),
        ([graph_node("VHS_VideoCombine", format="video/h264-mp4")], OutputKind.VIDEO, "video"),
        ([graph_node("VHS_VideoCombine", format=["5", 0])], OutputKind.VIDEO, "video"),
        ([graph_node("ComfyDeployOutputText")], OutputKind.TEXT, "text"),
        ([graph_node("ShowText|pysssss")], OutputKind.TEXT, "text"),
        ([graph_node("SaveImage"), graph_node("ComfyDeployOutputText")], None, "mixed"),
        ([graph_node("SaveImage"), graph_node("ComfyDeployOutputImage")], OutputKind.IMAGE, "image"),
        ([graph_node("PreviewImage")], None, "other"),
    ],
)
def test_the_output_kind_comes_from_the_graphs_output_nodes(
    nodes: list[dict[str, Any]], kind: OutputKind | None, category: str
) -> None:
    tool = graph_tool({str(20 + n): node for n, node in enumerate(nodes)})
    assert (tool.output_kind, tool.category) == (kind, category)


@pytest.mark.parametrize(
    ("output_types", "kind"),
    [
        (("ComfyDeployOutputImage",), OutputKind.IMAGE),
        (("VHS_VideoCombine",), OutputKind.VIDEO),
        (("ComfyDeployOutputText",), OutputKind.TEXT),
        (("ComfyDeployOutputImage", "ComfyDeployOutputText"), None),
    ],
)
def test_without_a_graph_the_output_kind_comes_from_the_deployments_output_types(
    output_types: tuple[str, ...], kind: OutputKind | None
) -> None:
    assert one_tool(deployment(output_types=output_types)).output_kind is kind


def test_the_graph_tells_a_gif_from_a_video_where_output_types_cannot() -> None:
    tool = graph_tool({"20": graph_node("VHS_VideoCombine", format="image/gif")}, output_types=("VHS_VideoCombine",))
    assert tool.output_kind is OutputKind.ANIMATION


# --- description ------------------------------------------------------------------------------


def test_the_description_joins_the_note_and_markdown_note_nodes() -> None:
    ui = {
        "nodes": [
            {"id": 1, "type": "Note", "widgets_values": ["  First part.  "]},
            {"id": 2, "type": "KSampler", "widgets_values": ["not a note"]},
            {"id": 3, "type": "MarkdownNote", "widgets_values": ["**Second** part."]},
            {"id": 4, "type": "Note", "widgets_values": []},
        ]
    }
    dep = deployment(workflow_version_id="v-1", description="fallback")
    assert one_tool(dep, {"v-1": version(workflow=ui)}).description == "First part.\n\n**Second** part."


def test_a_long_description_is_trimmed_to_1000_characters() -> None:
    ui = {"nodes": [{"type": "Note", "widgets_values": ["x" * 5000]}]}
    description = one_tool(deployment(workflow_version_id="v-1"), {"v-1": version(workflow=ui)}).description
    assert len(description) == 1000
    assert description.endswith("…")


def test_without_notes_the_description_falls_back_to_the_deployments_then_to_empty() -> None:
    assert one_tool(deployment(description=" Upscales. ")).description == "Upscales."
    assert one_tool(deployment()).description == ""


# --- GPU and price ----------------------------------------------------------------------------


def test_an_unpriced_gpu_disables_the_tool_with_a_reason_naming_the_gpu() -> None:
    tool = one_tool(deployment(machine_id="m-h200"))
    assert not tool.enabled
    assert tool.rate_nanos_per_second is None
    assert tool.gpu == "H200"
    assert tool.disabled_reason == "No price is configured for GPU H200; an operator must add one (NOEMA_GPU_RATES)."


def test_an_operator_rate_for_that_gpu_enables_it() -> None:
    [tool] = build_catalog([deployment(machine_id="m-h200")], MACHINES, {}, rates=parse_rates({"h200": "0.003"}))
    assert tool.enabled
    assert tool.rate_nanos_per_second == 3_000_000


@pytest.mark.parametrize(
    ("machine_id", "reason"), [("m-unknown", "No machine"), (None, "No machine"), ("m-none", "no GPU")]
)
def test_a_tool_whose_machine_or_gpu_is_unknown_is_disabled(machine_id: str | None, reason: str) -> None:
    tool = one_tool(deployment(machine_id=machine_id))
    assert not tool.enabled
    assert reason in (tool.disabled_reason or "")


def test_the_gpu_is_upper_cased_before_the_price_lookup() -> None:
    [tool] = build_catalog([deployment(machine_id="m")], [MachineInfo("m", "m", gpu="a10g")], {}, rates=RATES)
    assert (tool.gpu, tool.rate_nanos_per_second) == ("A10G", 337_000)


def test_a_flat_price_override_enables_a_tool_on_an_unpriced_gpu() -> None:
    tool = one_tool(deployment(machine_id="m-h200"), overrides={"dep-1": ToolOverride(flat_price_nanos=5_000_000)})
    assert tool.enabled
    assert tool.flat_price_nanos == 5_000_000


def test_a_zero_flat_price_is_ignored_so_the_tool_stays_disabled() -> None:
    tool = one_tool(deployment(machine_id="m-h200"), overrides={"dep-1": ToolOverride(flat_price_nanos=0)})
    assert not tool.enabled
    assert tool.flat_price_nanos is None
    assert any("flat_price_nanos" in w for w in tool.extra["override_warnings"])


# --- command names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "command"),
    [
        ("txt2img", "txt2img"),
        ("Flux Pro", "flux_pro"),
        ("flux-pro", "flux_pro"),
        ("  SDXL -- Turbo  ", "sdxl_turbo"),
        ("Café Crème", "cafe_creme"),
        ("日本語", "tool"),
        ("Ünïcödé ✨ art", "unicode_art"),
        ("3d-render", "t_3d_render"),
        ("_hidden_", "hidden"),
        ("a__b", "a_b"),
        ("flux.1 [dev]", "flux1_dev"),
        ("x" * 40, "x" * 32),
        ("abcdefghij klmnopqrstuvwxyz abcdefgh", "abcdefghij_klmnopqrstuvwxyz_abcd"),
        ("abcdefghijklmnopqrstuvwxyzabcde fgh", "abcdefghijklmnopqrstuvwxyzabcde"),
        ("", "tool"),
        ("!!!", "tool"),
        ("status", "status_tool"),
        ("Help", "help_tool"),
        ("API-Key", "api_key"),
        ("apikey", "apikey_tool"),
    ],
)
def test_command_names_are_normalised(raw: str, command: str) -> None:
    assert command_name(raw) == command
    assert COMMAND.match(command_name(raw))


@pytest.mark.parametrize(
    "reserved", ["start", "help", "tools", "status", "cancel", "link", "apikey", "account", "run", "set", "settings"]
)
def test_no_tool_ever_takes_a_reserved_command(reserved: str) -> None:
    tool = one_tool(deployment(name=reserved))
    assert tool.command == f"{reserved}_tool"
    overridden = one_tool(deployment(name="x"), overrides={"dep-1": ToolOverride(command=reserved)})
    assert overridden.command == f"{reserved}_tool"


def commands_by_id(tools: list[Tool]) -> dict[str, str]:
    return {tool.id: tool.command for tool in tools}


def test_colliding_names_get_numeric_suffixes_by_deployment_id_regardless_of_order() -> None:
    deployments = [deployment("dep-c", "txt2img"), deployment("dep-a", "TXT2IMG"), deployment("dep-b", "txt2img")]
    expected = {"dep-a": "txt2img", "dep-b": "txt2img_2", "dep-c": "txt2img_3"}
    for seed in range(5):
        shuffled = deployments[:]
        random.Random(seed).shuffle(shuffled)
        assert commands_by_id(build_catalog(shuffled, MACHINES, {}, rates=RATES)) == expected


def test_a_suffix_never_steals_another_tools_exact_name() -> None:
    deployments = [deployment("dep-a", "a"), deployment("dep-b", "a"), deployment("dep-0", "a_2")]
    assert commands_by_id(build_catalog(deployments, MACHINES, {}, rates=RATES)) == {
        "dep-0": "a_2",
        "dep-a": "a",
        "dep-b": "a_3",
    }


def test_a_suffixed_long_name_still_fits_in_32_characters() -> None:
    name = "x" * 40
    tools = build_catalog([deployment("dep-a", name), deployment("dep-b", name)], MACHINES, {}, rates=RATES)
    assert sorted(t.command for t in tools) == ["x" * 30 + "_2", "x" * 32]


def test_an_override_command_wins_its_name_and_the_default_holder_gets_a_suffix() -> None:
    deployments = [deployment("dep-a", "flux"), deployment("dep-b", "sdxl")]
    tools = build_catalog(deployments, MACHINES, {}, rates=RATES, overrides={"dep-b": ToolOverride(command="flux")})
    assert commands_by_id(tools) == {"dep-a": "flux_2", "dep-b": "flux"}


def test_two_overrides_asking_for_one_name_go_to_the_smaller_deployment_id() -> None:
    deployments = [deployment("dep-b", "one"), deployment("dep-a", "two")]
    overrides = {"dep-b": ToolOverride(command="best"), "dep-a": ToolOverride(command="best")}
    tools = {t.id: t for t in build_catalog(deployments, MACHINES, {}, rates=RATES, overrides=overrides)}
    assert (tools["dep-a"].command, tools["dep-b"].command) == ("best", "best_2")
    assert "command 'best' is taken by another tool; using 'best_2'" in tools["dep-b"].extra["override_warnings"]


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=45), max_size=25), st.randoms(use_true_random=False))
def test_commands_are_unique_valid_and_independent_of_order(names: list[str], rnd: random.Random) -> None:
    deployments = [deployment(f"dep-{i:03d}", name) for i, name in enumerate(names)]
    first = commands_by_id(build_catalog(deployments, MACHINES, {}, rates=RATES))
    rnd.shuffle(deployments)
    assert commands_by_id(build_catalog(deployments, MACHINES, {}, rates=RATES)) == first
    assert len(set(first.values())) == len(first) == len(names)
    assert all(COMMAND.match(command) for command in first.values())


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=40), max_size=15), st.sets(st.text(max_size=8)))
def test_assigning_commands_with_overrides_is_unique_and_valid(
    defaults: dict[str, str], explicit_ids: set[str]
) -> None:
    explicit = {tool_id: defaults.get(tool_id, "x") + "!" for tool_id in explicit_ids if tool_id in defaults}
    commands = assign_commands(defaults, explicit)
    assert set(commands) == set(defaults)
    assert len(set(commands.values())) == len(commands)
    assert all(COMMAND.match(c) and c not in {"status", "help", "start"} for c in commands.values())


# --- overrides --------------------------------------------------------------------------------


def test_overrides_apply_visibility_priority_price_durations_and_texts() -> None:
    override = ToolOverride(
        visibility=Visibility.ADMIN,
        priority=5,
        price_multiplier=1.5,
        expected_seconds=12.0,
        max_seconds=120.0,
        display_name="Flux ✨",
        description="Our best model.",
    )
    tool = one_tool(deployment(), overrides={"dep-1": override})
    assert (tool.visibility, tool.priority, tool.price_multiplier) == (Visibility.ADMIN, 5, 1.5)
    assert (tool.expected_seconds, tool.max_seconds) == (12.0, 120.0)
    assert (tool.display_name, tool.description) == ("Flux ✨", "Our best model.")
    assert "override_warnings" not in tool.extra


def test_without_overrides_a_tool_has_the_default_durations_and_visibility() -> None:
    tool = one_tool(deployment())
    assert (tool.expected_seconds, tool.max_seconds, tool.visibility, tool.priority) == (
        30.0,
        900.0,
        Visibility.PUBLIC,
        0,
    )


def test_an_override_may_be_keyed_by_the_default_command() -> None:
    tool = one_tool(deployment(name="Flux Pro"), overrides={"flux_pro": ToolOverride(visibility=Visibility.HIDDEN)})
    assert tool.visibility is Visibility.HIDDEN


def test_an_override_keyed_by_deployment_id_wins_over_one_keyed_by_command() -> None:
    overrides = {"txt2img": ToolOverride(priority=1), "dep-1": ToolOverride(priority=2)}
    tool = one_tool(deployment(), overrides=overrides)
    assert tool.priority == 2
    assert tool.extra["override_warnings"] == ["override 'txt2img' ignored: the override 'dep-1' already applies"]


def test_override_defaults_replace_defaults_and_make_inputs_optional() -> None:
    inputs = (spec("input_text", "Text"), spec("width", "NumberSliderInt", 512, min_value=256, max_value=1536))
    override = ToolOverride(defaults={"input_text": "a lighthouse", "width": "1024", "height": 9})
    tool = one_tool(deployment(input_types=inputs), overrides={"dep-1": override})
    text, width = tool.inputs
    assert (text.required, text.default) == (False, "a lighthouse")
    assert width.default == 1024
    assert tool.extra["override_warnings"] == ["default for unknown input 'height' ignored"]


def test_an_invalid_override_default_is_ignored_with_a_warning() -> None:
    inputs = (spec("width", "NumberSliderInt", 512, min_value=256, max_value=1536),)
    tool = one_tool(deployment(input_types=inputs), overrides={"dep-1": ToolOverride(defaults={"width": 9999})})
    assert tool.inputs[0].default == 512
    assert "must be between 256 and 1536" in tool.extra["override_warnings"][0]


def test_a_default_for_the_required_image_changes_the_primary_input() -> None:
    inputs = (spec("input_image", "Image"), spec("input_text", "Text"))
    override = ToolOverride(defaults={"input_image": "https://cdn.example/base.png"})
    assert one_tool(deployment(input_types=inputs)).primary_input is PrimaryInput.IMAGE_TEXT
    assert one_tool(deployment(input_types=inputs), overrides={"dep-1": override}).primary_input is PrimaryInput.TEXT


@pytest.mark.parametrize(
    ("override", "warning"),
    [
        (ToolOverride(price_multiplier=0), "price_multiplier"),
        (ToolOverride(price_multiplier=float("nan")), "price_multiplier"),
        (ToolOverride(expected_seconds=-3), "expected_seconds"),
        (ToolOverride(max_seconds=float("inf")), "max_seconds"),
        (ToolOverride(priority=True), "priority"),
        (ToolOverride(visibility="secret"), "visibility"),  # type: ignore[arg-type]
        (ToolOverride(command="!!!"), "command"),
        (ToolOverride(display_name="  "), "display_name"),
    ],
)
def test_a_bad_override_field_is_ignored_with_a_warning(override: ToolOverride, warning: str) -> None:
    tool = one_tool(deployment(), overrides={"dep-1": override})
    assert tool.command == "txt2img"
    assert (tool.price_multiplier, tool.expected_seconds, tool.priority) == (1.0, 30.0, 0)
    assert any(warning in w for w in tool.extra["override_warnings"])


def test_the_catalog_is_sorted_by_priority_then_command() -> None:
    deployments = [deployment("d1", "beta"), deployment("d2", "alpha"), deployment("d3", "zeta")]
    tools = build_catalog(deployments, MACHINES, {}, rates=RATES, overrides={"zeta": ToolOverride(priority=3)})
    assert [t.command for t in tools] == ["zeta", "alpha", "beta"]


# --- garbage data -----------------------------------------------------------------------------


def test_duplicate_deployments_become_one_tool() -> None:
    tools = build_catalog([deployment(), deployment()], MACHINES, {}, rates=RATES)
    assert len(tools) == 1


def test_a_deployment_without_a_name_is_named_after_its_id() -> None:
    tool = one_tool(deployment("9f2c-deploy", name="  "))
    assert (tool.display_name, tool.command) == ("9f2c-deploy", "t_9f2c_deploy")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
node = st.fixed_dictionaries(
    {},
    optional={
        "class_type": st.sampled_from(
            [EXT + "Text", EXT + "Enum", EXT + "Seed", EXT + "Weird", "VHS_VideoCombine", "SaveImage"]
        )
        | json_values,
        "inputs": st.dictionaries(
            st.sampled_from(["input_id", "default_value", "min_value", "max_value", "options", "format", "step"]),
            json_values,
        )
        | json_values,
    },
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    api=st.dictionaries(st.text(max_size=4), node | json_values, max_size=6),
    ui=json_values
    | st.fixed_dictionaries(
        {
            "nodes": st.lists(
                st.dictionaries(st.sampled_from(["type", "widgets_values"]), json_values | st.just("Note")), max_size=4
            )
        }
    ),
    output_types=st.lists(st.text(max_size=20), max_size=3),
)
def test_garbage_graphs_never_raise(api: dict[str, Any], ui: Any, output_types: list[str]) -> None:
    dep = deployment(input_types=None, workflow_version_id="v-1", output_types=tuple(output_types))
    [tool] = build_catalog([dep], MACHINES, {"v-1": version(api, ui)}, rates=RATES)
    assert COMMAND.match(tool.command)
    assert isinstance(tool.description, str)


def test_wrongly_typed_fields_do_not_raise() -> None:
    weird = DeploymentInfo(
        id="dep-w",
        name=42,  # type: ignore[arg-type]
        machine_id=["m"],  # type: ignore[arg-type]
        workflow_version_id=7,  # type: ignore[arg-type]
        input_types=(spec("x", "Text"), "not a spec", InputSpec(input_id="", class_type=EXT + "Text")),  # type: ignore[arg-type]
        output_types=None,  # type: ignore[arg-type]
        description=3.5,  # type: ignore[arg-type]
    )
    versions: dict[str, Any] = {"v": "not a version", "w": version(workflow_api=[1, 2], workflow="nodes")}
    tools = build_catalog([weird, "junk"], [MachineInfo("m", "m", gpu=5), None], versions, rates=RATES)  # type: ignore[list-item, arg-type]
    [tool] = tools
    assert tool.display_name == "dep-w"
    assert [i.name for i in tool.inputs] == ["x"]
    assert len(tool.extra["skipped_inputs"]) == 2
    assert not tool.enabled


# --- two backends: a cloud deployment standing in for an own workflow -----------------------------


def test_a_stand_in_with_the_same_inputs_is_hidden_and_named_on_its_tool_with_each_backends_label() -> None:
    own = deployment("upscale", "upscale", backend_label="ComfyUI")
    cloud = deployment("dep-9", "upscale_cloud", machine_id="m-h200", backend_label="Cloud", stands_in_for="upscale")
    tools = {t.id: t for t in build_catalog([own, cloud], MACHINES, {}, rates=RATES, backend_label="Both")}
    assert tools["upscale"].command == "upscale" and tools["upscale"].stand_ins == ("dep-9",)
    assert tools["upscale"].visibility is Visibility.PUBLIC and tools["upscale"].backend_label == "ComfyUI"
    assert tools["dep-9"].command == "upscale_cloud" and tools["dep-9"].visibility is Visibility.HIDDEN
    assert tools["dep-9"].backend_label == "Cloud" and tools["dep-9"].stand_ins == ()


def test_a_cloud_deployment_whose_inputs_differ_stands_in_for_nothing_and_says_why() -> None:
    own = deployment("upscale", "upscale", input_types=(spec("image", "Image"),))
    cloud = deployment("dep-9", "upscale_cloud", input_types=(spec("input_image", "Image"),), stands_in_for="upscale")
    tools = {t.id: t for t in build_catalog([own, cloud], MACHINES, {}, rates=RATES)}
    assert tools["upscale"].stand_ins == ()
    assert any("inputs differ" in note for note in tools["dep-9"].extra["notes"])
