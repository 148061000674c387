"""Self-hosted ComfyUI: workflow files become tools, a tool's inputs become a prompt, a server's nodes say what it can run."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noema.domain.catalog import build_catalog
from noema.domain.comfyui_workflows import (
    InputInfo,
    ModelFile,
    ObjectInfoSummary,
    Target,
    WorkflowTool,
    build_prompt,
    load_workflow,
    server_can_run,
    summary_from_object_info,
    with_server_bounds,
)
from noema.domain.errors import InvalidInput, InvalidWorkflow
from noema.domain.inputs import validate_inputs
from noema.domain.pricing import parse_rates
from noema.domain.runs import DeploymentInfo, MachineInfo, OutputKind, WorkflowVersionInfo
from noema.domain.tools import InputType, PrimaryInput, Tool

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"
OBJECT_INFO = Path(__file__).parents[1] / "data" / "comfyui" / "object_info.json"
EXT = "ComfyUIDeployExternal"


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


BLUR = {
    "1": node("LoadImage", image="example.png"),
    "2": node("ImageBlur", image=["1", 0], blur_radius=5, sigma=1.0),
    "3": node("SaveImage", images=["2", 0], filename_prefix="blur"),
}
BLUR_TOML = """
description = "Blur a picture"
output = "image"
expected_seconds = 5
max_seconds = 120
[inputs.image]
node = "1"
field = "image"
type = "image"
[inputs.radius]
node = "2"
field = "blur_radius"
type = "integer"
default = 5
min = 1
max = 31
"""
INVERT = {
    "1": node(EXT + "Image", input_id="input_image", default_value="", display_name="Picture"),
    "2": node("ImageInvert", image=["1", 0]),
    "3": node("SaveImage", images=["2", 0], filename_prefix="invert"),
}


def load(graph: Any, toml: str | None = None, name: str = "wf") -> WorkflowTool:
    text = graph if isinstance(graph, str) else json.dumps(graph)
    return load_workflow(name, text, toml)


def with_nodes(base: dict[str, Any], **nodes: dict[str, Any]) -> dict[str, Any]:
    graph = copy.deepcopy(base)
    graph.update(nodes)
    return graph


def real_summary() -> ObjectInfoSummary:
    return summary_from_object_info(json.loads(OBJECT_INFO.read_text()))


def sidecar_input(name: str, **fields: Any) -> str:
    lines = [f"[inputs.{name}]"] + [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def all_links(prompt: dict[str, Any]) -> list[list[Any]]:
    return [
        value
        for n in prompt.values()
        for value in n["inputs"].values()
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
    ]


# --- reading a workflow with a sidecar ---------------------------------------------------------


def test_a_sidecar_declares_each_input_with_its_node_field_type_and_bounds() -> None:
    tool = load(BLUR, BLUR_TOML, name="blur")
    assert [(i.name, i.type, i.required) for i in tool.inputs] == [
        ("image", InputType.IMAGE, True),
        ("radius", InputType.INTEGER, False),
    ]
    radius = tool.input("radius")
    assert radius is not None and (radius.minimum, radius.maximum, radius.default) == (1, 31, 5)
    assert tool.targets == {"image": (Target("1", "image"),), "radius": (Target("2", "blur_radius"),)}
    assert tool.primary_input is PrimaryInput.IMAGE
    assert tool.output_kind is OutputKind.IMAGE
    assert (tool.description, tool.expected_seconds, tool.max_seconds) == ("Blur a picture", 5, 120)
    assert tool.input_source == "sidecar"
    assert tool.node_classes == {"LoadImage", "ImageBlur", "SaveImage"}


@pytest.mark.parametrize(
    ("type_name", "default", "field", "expected_type"),
    [
        ("text", "hello", "filename_prefix", InputType.TEXT),
        ("integer", 3, "blur_radius", InputType.INTEGER),
        ("number", 0.5, "sigma", InputType.NUMBER),
        ("seed", -1, "blur_radius", InputType.SEED),
        ("choice", "a", "filename_prefix", InputType.ENUM),
    ],
)
def test_every_sidecar_type_becomes_its_tool_input_type(
    type_name: str, default: Any, field: str, expected_type: InputType
) -> None:
    node_id = "3" if field == "filename_prefix" else "2"
    extra = {"options": ["a", "b"]} if type_name == "choice" else {}
    toml = sidecar_input("x", node=node_id, field=field, type=type_name, default=default, **extra)
    [spec] = load(BLUR, toml).inputs
    assert spec.type is expected_type
    assert spec.default == default
    assert spec.options == (("a", "b") if type_name == "choice" else ())


def test_a_boolean_input_targets_a_boolean_field() -> None:
    graph = with_nodes(BLUR, **{"4": node("SaveAnimatedWEBP", images=["2", 0], lossless=True, fps=6.0)})
    toml = 'output = "image"\n' + sidecar_input("lossless", node="4", field="lossless", type="boolean", default=False)
    [spec] = load(graph, toml).inputs
    assert (spec.type, spec.default, spec.required) == (InputType.BOOLEAN, False, False)


def test_an_input_without_a_default_is_required_except_a_seed() -> None:
    toml = sidecar_input("prefix", node="3", field="filename_prefix", type="text") + sidecar_input(
        "seed", node="2", field="blur_radius", type="seed"
    )
    prefix, seed = load(BLUR, toml).inputs
    assert prefix.required and not seed.required


def test_a_node_id_may_be_written_as_a_number() -> None:
    toml = sidecar_input("radius", node=2, field="blur_radius", type="integer")
    assert load(BLUR, toml).targets["radius"] == (Target("2", "blur_radius"),)


def test_a_sidecar_without_inputs_keeps_the_external_nodes_and_sets_the_rest() -> None:
    tool = load(INVERT, 'description = "Invert"\nmax_seconds = 60\n')
    assert [i.name for i in tool.inputs] == ["input_image"]
    assert tool.input_source == "external"
    assert (tool.description, tool.max_seconds, tool.expected_seconds) == ("Invert", 60, None)


# --- reading a workflow with ComfyUIDeployExternal nodes ----------------------------------------


def test_external_nodes_become_the_same_inputs_the_comfydeploy_catalog_reads() -> None:
    graph = {
        "1": node(EXT + "Image", input_id="input_image", default_value=""),
        "2": node(EXT + "NumberInt", input_id="radius", default_value=4, min_value=1, max_value=9),
        "3": node(EXT + "Text", input_id="prefix", default_value="out", display_name="Prefix"),
        "4": node(EXT + "Enum", input_id="method", default_value="area", enum_options='["area", "bicubic"]'),
        "5": node(EXT + "Seed", input_id="seed", default_value=-1),
        "6": node("ImageBlur", image=["1", 0], blur_radius=["2", 0], sigma=1.0),
        "7": node("SaveImage", images=["6", 0], filename_prefix=["3", 0]),
    }
    tool = load(graph)
    version = WorkflowVersionInfo(id="v", workflow_id="w", version=1, workflow_api=graph)  # no UI graph
    deployment = DeploymentInfo(id="d", name="wf", machine_id="m", workflow_id="w", workflow_version_id="v")
    machine = MachineInfo(id="m", name="m", gpu="A10G")
    [catalog_tool] = build_catalog([deployment], [machine], {"v": version}, rates=parse_rates({}))
    assert tool.inputs == catalog_tool.inputs
    assert tool.external_nodes == {
        "input_image": ("1",),
        "radius": ("2",),
        "prefix": ("3",),
        "method": ("4",),
        "seed": ("5",),
    }
    assert tool.primary_input is PrimaryInput.IMAGE_TEXT


def test_external_nodes_are_not_classes_the_server_needs_but_an_image_input_needs_load_image() -> None:
    tool = load(INVERT)
    assert tool.node_classes == {"ImageInvert", "SaveImage", "LoadImage"}


def test_external_nodes_sharing_an_input_id_make_one_input_that_feeds_them_all() -> None:
    graph = with_nodes(
        INVERT, **{"4": node(EXT + "Image", input_id="input_image"), "5": node("SaveImage", images=["4", 0])}
    )
    tool = load(graph)
    assert [i.name for i in tool.inputs] == ["input_image"]
    assert tool.external_nodes == {"input_image": ("1", "4")}


def test_the_description_comes_from_note_nodes_which_are_never_submitted() -> None:
    graph = with_nodes(
        INVERT, **{"9": node("Note", text="  Invert a picture  "), "8": node("MarkdownNote", text="Fast")}
    )
    tool = load(graph)
    assert tool.description == "Invert a picture\n\nFast"
    assert "9" not in tool.graph and "Note" not in tool.node_classes
    assert load(graph, 'description = "From the sidecar"').description == "From the sidecar"


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ({"9": node("SaveAnimatedWEBP", images=["2", 0])}, OutputKind.ANIMATION),
        ({"9": node("SaveAnimatedWEBP", images=["2", 0]), "8": node("SaveImage", images=["2", 0])}, None),
        ({"9": node("VHS_VideoCombine", images=["2", 0], format="video/h264-mp4")}, OutputKind.VIDEO),
    ],
)
def test_the_output_kind_comes_from_the_output_nodes(outputs: dict[str, Any], expected: OutputKind | None) -> None:
    graph = {"1": INVERT["1"], "2": INVERT["2"], **outputs}
    assert load(graph).output_kind is expected


def test_a_custom_output_node_is_accepted_when_the_sidecar_names_its_output() -> None:
    graph = {"1": INVERT["1"], "2": INVERT["2"], "3": node("MySaver", images=["2", 0])}
    assert load(graph, 'output = "video"').output_kind is OutputKind.VIDEO


def test_model_files_are_the_model_names_on_loader_nodes() -> None:
    graph = json.loads((EXAMPLES / "sdxl_txt2img.json").read_text())
    graph["10"] = node("LoraLoader", lora_name="Detail.SAFETENSORS", model=["4", 0], clip=["4", 1], strength_model=1.0)
    graph["11"] = node("SaveImage", images=["8", 0], filename_prefix="not_a_model.ckpt")
    tool = load(graph, 'output = "image"')
    assert set(tool.model_files) == {
        ModelFile("4", "CheckpointLoaderSimple", "ckpt_name", "sd_xl_base_1.0.safetensors"),
        ModelFile("10", "LoraLoader", "lora_name", "Detail.SAFETENSORS"),
    }


def test_an_external_checkpoint_default_feeding_a_loader_is_a_model_file_the_server_needs() -> None:
    graph = json.loads((EXAMPLES / "sdxl_txt2img.json").read_text())
    graph["20"] = node(EXT + "Checkpoint", input_id="checkpoint", default_value="juggernaut_xl.safetensors")
    graph["4"]["inputs"]["ckpt_name"] = ["20", 0]
    tool = load(graph)
    assert tool.model_files == (ModelFile("4", "CheckpointLoaderSimple", "ckpt_name", "juggernaut_xl.safetensors"),)
    assert server_can_run(tool, real_summary()) == (
        "needs the model juggernaut_xl.safetensors (CheckpointLoaderSimple), which this server lacks"
    )


# --- bad files: each names the file and the problem ---------------------------------------------

UI_FORMAT = json.dumps({"nodes": [{"id": 1, "type": "LoadImage"}], "links": [], "version": 0.4})
BAD_GRAPHS: list[tuple[str, Any, str]] = [
    ("bad JSON", "{not json", "is not valid JSON (line 1"),
    ("NaN", '{"1": {"class_type": "EmptyImage", "inputs": {"width": NaN}}}', "is not valid JSON"),
    ("UI format", UI_FORMAT, "export it with Export (API)"),
    ("deep nesting", "[" * 100_000, "is not valid JSON"),
    ("a /prompt request body", {"prompt": BLUR, "client_id": "x"}, 'save only its "prompt" object'),
    ("a list", [1, 2], "is not in ComfyUI's API format"),
    ("no nodes", {}, "has no nodes"),
    ("no class_type", {"1": {"inputs": {}}}, "node 1 has no class_type"),
    ("inputs not an object", {"1": {"class_type": "SaveImage", "inputs": [1]}}, "inputs must be an object"),
    (
        "dangling link",
        with_nodes(BLUR, **{"3": node("SaveImage", images=["9", 0])}),
        "links to node 9, not in the workflow",
    ),
    (
        "link to a note",
        with_nodes(BLUR, **{"9": node("Note", text="x"), "3": node("SaveImage", images=["9", 0])}),
        "a note",
    ),
    ("negative output", with_nodes(BLUR, **{"3": node("SaveImage", images=["2", -1])}), "negative output"),
    (
        "no output node",
        {"1": node("LoadImage", image="a.png"), "2": node("PreviewImage", images=["1", 0])},
        "has no output node",
    ),
    ("external without id", with_nodes(INVERT, **{"1": node(EXT + "Image", default_value="")}), "has no input_id"),
    ("external video", with_nodes(INVERT, **{"1": node(EXT + "Video", input_id="clip")}), "takes no video input"),
    (
        "unknown external",
        with_nodes(INVERT, **{"1": node(EXT + "Gizmo", input_id="g", default_value=3)}),
        "unsupported input class",
    ),
    (
        "second output of a text input",
        with_nodes(
            INVERT,
            **{
                "4": node(EXT + "Text", input_id="t"),
                "3": node("SaveImage", images=["2", 0], filename_prefix=["4", 1]),
            },
        ),
        "uses output 1 of input node 4",
    ),
    (
        "one input id, two types",
        with_nodes(INVERT, **{"4": node(EXT + "Text", input_id="input_image", default_value="x")}),
        "declared by nodes of different types",
    ),
]


@pytest.mark.parametrize(("case", "graph", "problem"), BAD_GRAPHS, ids=[c[0] for c in BAD_GRAPHS])
def test_a_bad_workflow_file_is_refused_naming_the_file_and_the_problem(case: str, graph: Any, problem: str) -> None:
    with pytest.raises(InvalidWorkflow) as caught:
        load(graph, name="broken")
    assert caught.value.file == "broken.json"
    assert problem in caught.value.problem
    assert caught.value.message.startswith("broken.json: ")
    assert isinstance(caught.value, InvalidInput)


def test_a_huge_workflow_file_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidWorkflow, match="larger than 5 MB"):
        load_workflow("big", " " * 5_000_001, None)


RADIUS = {"node": "2", "field": "blur_radius", "type": "integer"}
BAD_SIDECARS: list[tuple[str, str, str]] = [
    ("bad TOML", "description = ", "is not valid TOML"),
    ("duplicate TOML key", "[inputs.a]\nnode = '2'\n[inputs.a]\nnode = '2'\n", "is not valid TOML"),
    ("unknown setting", "descripton = 'x'", "unknown setting 'descripton'"),
    ("unknown output", "output = 'picture'", "output must be one of image, animation, video, text"),
    (
        "output unlike the graph's",
        "output = 'animation'",
        "output is animation but broken.json's output nodes give image",
    ),
    ("expected above max", "expected_seconds = 10\nmax_seconds = 5", "expected_seconds is above max_seconds"),
    ("zero seconds", "max_seconds = 0", "max_seconds must be a number of seconds above 0"),
    ("seconds as text", "expected_seconds = 'soon'", "expected_seconds must be a number"),
    ("description not text", "description = 3", "description must be a text"),
    ("inputs not tables", "inputs = 3", "inputs must be tables"),
    ("input not a table", "[inputs]\nradius = 3", "input 'radius' must be a table"),
    (
        "missing node",
        sidecar_input("radius", **{**RADIUS, "node": "9"}),
        "input 'radius': node 9 is not in the workflow",
    ),
    ("no node", sidecar_input("radius", field="blur_radius", type="integer"), "node must be a node id"),
    (
        "missing field",
        sidecar_input("radius", **{**RADIUS, "field": "radius"}),
        "node 2 (ImageBlur) has no field 'radius'",
    ),
    ("unknown type", sidecar_input("radius", **{**RADIUS, "type": "int"}), "type must be one of text, integer"),
    ("min above max", sidecar_input("radius", **RADIUS, min=10, max=1), "min 10 is above max 1"),
    (
        "default out of range",
        sidecar_input("radius", **RADIUS, default=50, min=1, max=31),
        "default 50 is outside 1..31",
    ),
    ("default below min", sidecar_input("radius", **RADIUS, default=0, min=1), "default 0 is outside 1..…"),
    ("default not whole", sidecar_input("radius", **RADIUS, default=2.5), "default 2.5 is not a whole number"),
    ("bound not a number", sidecar_input("radius", **RADIUS, min="one"), "min must be a number"),
    (
        "bound on text",
        sidecar_input("p", node="3", field="filename_prefix", type="text", max=3),
        "max applies only to integer",
    ),
    (
        "choice without options",
        sidecar_input("p", node="3", field="filename_prefix", type="choice"),
        "a choice needs options",
    ),
    (
        "default not an option",
        sidecar_input("p", node="3", field="filename_prefix", type="choice", options=["a"], default="b"),
        "default 'b' is not one of the options",
    ),
    (
        "repeated option",
        sidecar_input("p", node="3", field="filename_prefix", type="choice", options=["a", "a"]),
        "listed twice",
    ),
    (
        "options on text",
        sidecar_input("p", node="3", field="filename_prefix", type="text", options=["a"]),
        "options apply only",
    ),
    (
        "image default",
        sidecar_input("i", node="1", field="image", type="image", default="x.png"),
        "an image input always",
    ),
    ("seed below -1", sidecar_input("s", node="2", field="blur_radius", type="seed", default=-2), "is not -1 (random)"),
    (
        "boolean default",
        sidecar_input("s", node="3", field="filename_prefix", type="text", default=True),
        "is not a text",
    ),
    (
        "field holds another kind",
        sidecar_input("r", node="2", field="blur_radius", type="text"),
        "holds 5, which is no text value",
    ),
    ("bad name", sidecar_input('"my input"', **RADIUS), "a name is a letter or _"),
    ("unknown key", sidecar_input("radius", **RADIUS, maximum=3), "unknown key 'maximum'"),
    (
        "duplicate names",
        sidecar_input("Radius", **RADIUS) + sidecar_input("radius", node="2", field="sigma", type="number"),
        "duplicate input names 'Radius' and 'radius'",
    ),
    (
        "one field twice",
        sidecar_input("a", **RADIUS) + sidecar_input("b", **RADIUS),
        "inputs 'a' and 'b' both set field 'blur_radius' of node 2",
    ),
]


@pytest.mark.parametrize(("case", "toml", "problem"), BAD_SIDECARS, ids=[c[0] for c in BAD_SIDECARS])
def test_a_bad_sidecar_is_refused_naming_the_file_and_the_problem(case: str, toml: str, problem: str) -> None:
    with pytest.raises(InvalidWorkflow) as caught:
        load(BLUR, toml, name="broken")
    assert caught.value.file == "broken.toml"
    assert problem in caught.value.problem, caught.value.problem


def test_a_sidecar_with_inputs_refuses_a_graph_that_also_has_external_nodes() -> None:
    toml = sidecar_input("prefix", node="3", field="filename_prefix", type="text")
    with pytest.raises(InvalidWorkflow, match="declare the inputs one way") as caught:
        load(INVERT, toml, name="both")
    assert caught.value.file == "both.toml"


# --- building the prompt ---------------------------------------------------------------------


def test_sidecar_values_are_written_at_their_node_and_field_and_the_graph_is_untouched() -> None:
    tool = load(BLUR, BLUR_TOML)
    before = copy.deepcopy(dict(tool.graph))
    prompt = build_prompt(tool, {"radius": 9}, {"image": "upload (1).png"})
    assert prompt["1"]["inputs"]["image"] == "upload (1).png"
    assert prompt["2"]["inputs"]["blur_radius"] == 9
    assert prompt["2"]["inputs"]["image"] == ["1", 0]
    assert tool.graph == before


def test_an_omitted_sidecar_input_uses_its_default_else_the_workflows_own_value() -> None:
    toml = BLUR_TOML + sidecar_input("sigma", node="2", field="sigma", type="number")
    tool = load(BLUR, toml)
    prompt = build_prompt(tool, {}, {"image": "a.png"})
    assert (prompt["2"]["inputs"]["blur_radius"], prompt["2"]["inputs"]["sigma"]) == (5, 1.0)


def test_a_value_of_none_counts_as_omitted() -> None:
    prompt = build_prompt(load(BLUR, BLUR_TOML), {"radius": None}, {"image": "a.png"})
    assert prompt["2"]["inputs"]["blur_radius"] == 5


def test_a_seed_is_sent_as_given_and_an_omitted_random_seed_keeps_the_graphs_value() -> None:
    toml = 'output = "image"\n' + sidecar_input("seed", node="2", field="blur_radius", type="seed", default=-1)
    tool = load(BLUR, toml)
    assert build_prompt(tool, {"seed": 123456789012}, {})["2"]["inputs"]["blur_radius"] == 123456789012
    assert build_prompt(tool, {}, {})["2"]["inputs"]["blur_radius"] == 5


def test_validated_values_fill_every_input_of_the_prompt() -> None:
    tool = load(BLUR, BLUR_TOML)
    as_tool = Tool(
        id="blur", command="blur", display_name="blur", description=tool.description, inputs=tool.inputs,
        primary_input=tool.primary_input, output_kind=tool.output_kind, deployment_id="blur", machine_id=None,
        gpu=None, rate_nanos_per_second=None,
    )  # fmt: skip
    values = validate_inputs(as_tool, {"image": "https://example.com/a.png", "radius": "7"}, rng=random.Random(1))
    prompt = build_prompt(tool, values, {"image": "a.png"})
    assert prompt["2"]["inputs"]["blur_radius"] == 7 and prompt["1"]["inputs"]["image"] == "a.png"


def test_an_external_node_is_removed_and_its_consumers_get_the_value_itself() -> None:
    graph = {
        "1": node("EmptyImage", width=8, height=8, batch_size=1, color=0),
        "2": node(EXT + "NumberInt", input_id="radius", default_value=3),
        "3": node("ImageBlur", image=["1", 0], blur_radius=["2", 0], sigma=1.0),
        "4": node("SaveImage", images=["3", 0], filename_prefix="x"),
    }
    tool = load(graph)
    prompt = build_prompt(tool, {"radius": 7}, {})
    assert "2" not in prompt
    assert prompt["3"]["inputs"]["blur_radius"] == 7
    assert build_prompt(tool, {}, {})["3"]["inputs"]["blur_radius"] == 3  # the node's default_value


def test_an_external_image_becomes_a_load_image_of_the_upload_under_the_same_id() -> None:
    graph = with_nodes(INVERT, **{"4": node("MaskToImage", mask=["1", 1]), "5": node("SaveImage", images=["4", 0])})
    tool = load(graph)
    prompt = build_prompt(tool, {"input_image": "https://example.com/x.png"}, {"input_image": "x (2).png"})
    assert prompt["1"] == {
        "class_type": "LoadImage",
        "inputs": {"image": "x (2).png"},
        "_meta": {"title": "input_image"},
    }
    assert prompt["2"]["inputs"]["image"] == ["1", 0] and prompt["4"]["inputs"]["mask"] == ["1", 1]
    assert tool.graph["1"]["class_type"] == EXT + "Image"


def test_every_node_sharing_an_input_id_gets_the_value() -> None:
    graph = with_nodes(
        INVERT, **{"4": node(EXT + "Image", input_id="input_image"), "5": node("SaveImage", images=["4", 0])}
    )
    prompt = build_prompt(load(graph), {}, {"input_image": "a.png"})
    assert prompt["1"]["class_type"] == prompt["4"]["class_type"] == "LoadImage"


@pytest.mark.parametrize(
    ("graph", "values", "images", "message"),
    [
        (INVERT, {}, {}, "The input 'input_image' needs a picture."),
        (
            with_nodes(
                INVERT,
                **{
                    "4": node(EXT + "Text", input_id="prefix"),
                    "3": node("SaveImage", images=["2", 0], filename_prefix=["4", 0]),
                },
            ),
            {},
            {"input_image": "a.png"},
            "The input 'prefix' has no value.",
        ),
        (INVERT, {"nope": 1}, {"input_image": "a.png"}, "Unknown input 'nope' for the workflow wf."),
    ],
)
def test_a_prompt_that_cannot_be_built_says_which_input_is_wrong(
    graph: dict[str, Any], values: dict[str, Any], images: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        build_prompt(load(graph), values, images)
    assert caught.value.message == message


def test_a_sidecar_image_without_an_upload_is_refused() -> None:
    with pytest.raises(InvalidInput, match="needs a picture"):
        build_prompt(load(BLUR, BLUR_TOML), {}, {})


_NUMERIC_EXTERNALS = st.sampled_from([("NumberInt", 3), ("Number", 1.5), ("Text", "t"), ("Boolean", True), ("Seed", 5)])


@st.composite
def external_graphs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A random chain of nodes, some external inputs, each consumer linking to earlier nodes."""
    graph: dict[str, Any] = {}
    values: dict[str, Any] = {}
    images: dict[str, str] = {}
    count = draw(st.integers(2, 8))
    for index in range(1, count + 1):
        node_id = str(index)
        if draw(st.booleans()):
            if draw(st.booleans()):
                graph[node_id] = node(EXT + "Image", input_id=f"img{index}")
                images[f"img{index}"] = f"file{index}.png"
            else:
                suffix, value = draw(_NUMERIC_EXTERNALS)
                graph[node_id] = node(EXT + suffix, input_id=f"in{index}", default_value=value)
                if draw(st.booleans()):
                    values[f"in{index}"] = value
        else:
            sources = draw(st.lists(st.integers(1, index - 1), max_size=3)) if index > 1 else []
            graph[node_id] = node("Mix", **{f"a{k}": [str(s), 0] for k, s in enumerate(sources)}, level=index)
    graph[str(count + 1)] = node("SaveImage", images=[str(count), 0])
    return graph, values, images


@settings(max_examples=150, deadline=None)
@given(external_graphs())
def test_build_prompt_never_mutates_the_workflow_and_leaves_no_dangling_link(
    case: tuple[dict[str, Any], dict[str, Any], dict[str, str]],
) -> None:
    graph, values, images = case
    tool = load(graph)
    before = copy.deepcopy(dict(tool.graph))
    prompt = build_prompt(tool, values, images)
    assert tool.graph == before
    assert all(str(link[0]) in prompt for link in all_links(prompt))
    assert not any(n["class_type"].startswith(EXT) for n in prompt.values())
    for n in prompt.values():  # the prompt is a copy: changing it leaves the tool alone
        n["inputs"]["changed"] = True
    assert tool.graph == before


# --- what a server offers ----------------------------------------------------------------------


def test_the_summary_of_a_real_object_info_has_bounds_and_options() -> None:
    summary = real_summary()
    assert summary.input("ImageBlur", "blur_radius") == InputInfo("INT", minimum=1, maximum=31)
    assert summary.input("ImageScaleBy", "upscale_method") == InputInfo(
        "COMBO", ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
    )
    assert summary.input("CheckpointLoaderSimple", "ckpt_name") == InputInfo("COMBO", ())
    assert summary.input("WanImageToVideoApi", "resolution") == InputInfo("COMBO", ("480P", "720P", "1080P"))
    assert summary.input("KSampler", "seed") == InputInfo("INT", minimum=0, maximum=float(2**64 - 1))
    assert summary.input("ImageBlur", "image") == InputInfo("IMAGE")
    assert summary.input("SaveImage", "prompt") is None  # hidden inputs are the server's own
    assert summary.has("SaveAnimatedWEBP") and not summary.has("ComfyUIDeployExternalImage")


@pytest.mark.parametrize(
    "raw",
    [None, [], "x", 3, {"A": None}, {"A": {"input": 3}}, {"A": {"input": {"required": [1]}}}, {1: {}}, {"": {}}],
)
def test_an_odd_object_info_never_raises(raw: Any) -> None:
    summary = summary_from_object_info(raw)
    assert all(not inputs for inputs in summary.classes.values())


def test_odd_input_specs_are_left_out_and_odd_bounds_and_options_ignored() -> None:
    raw = {
        "A": {
            "input": {
                "required": {
                    "empty": [],
                    "none": None,
                    "number_head": [3],
                    "inf": ["FLOAT", {"min": float("inf"), "max": True}],
                    "huge": ["INT", {"min": -(10**400), "max": "9"}],
                    "combo": [["a", 2, None, 1.5, True, 10**30, float("nan")]],
                    "new_combo": ["COMBO", {"options": "not a list"}],
                },
                "optional": {"opt": ["STRING", {}], "count": ["INT", {}]},
            }
        }
    }
    inputs = summary_from_object_info(raw).classes["A"]
    assert set(inputs) == {"inf", "huge", "combo", "new_combo", "opt", "count"}
    assert inputs["inf"] == InputInfo("FLOAT") and inputs["huge"] == InputInfo("INT")
    assert inputs["combo"].options == ("a", "2", "1.5")
    assert inputs["new_combo"].options == ()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _JSON, max_size=5))
def test_summary_from_object_info_never_raises_on_any_json(raw: dict[str, Any]) -> None:
    summary = summary_from_object_info(raw)
    assert set(summary.classes) <= set(raw)


def test_model_free_examples_run_on_a_server_without_models_and_sdxl_is_refused_naming_its_model() -> None:
    summary = real_summary()
    reasons = {path.stem: server_can_run(load_example(path.stem), summary) for path in EXAMPLES.glob("*.json")}
    assert reasons == {
        "blur": None,
        "invert": None,
        "upscale": None,
        "animate": None,
        "sdxl_txt2img": "needs the model sd_xl_base_1.0.safetensors (CheckpointLoaderSimple), which this server lacks",
    }


def test_a_server_with_the_model_can_run_sdxl() -> None:
    classes = dict(real_summary().classes)
    classes["CheckpointLoaderSimple"] = {"ckpt_name": InputInfo("COMBO", ("sd_xl_base_1.0.safetensors",))}
    assert server_can_run(load_example("sdxl_txt2img"), ObjectInfoSummary(classes)) is None


def test_a_missing_node_class_is_named_before_any_model() -> None:
    classes = {k: v for k, v in real_summary().classes.items() if k not in ("KSampler", "VAEDecode")}
    reason = server_can_run(load_example("sdxl_txt2img"), ObjectInfoSummary(classes))
    assert reason == "needs the node KSampler (and 1 more), which this server lacks"
    assert (
        server_can_run(load(INVERT), ObjectInfoSummary())
        == "needs the node ImageInvert (and 2 more), which this server lacks"
    )


def test_unbounded_external_numbers_take_the_bounds_of_the_field_they_feed() -> None:
    graph = {
        "1": node("EmptyImage", width=8, height=8, batch_size=1, color=0),
        "2": node(EXT + "NumberInt", input_id="radius", default_value=3),
        "3": node(EXT + "Number", input_id="sigma", default_value=1.0, min_value=0.5),
        "4": node(EXT + "Seed", input_id="seed", default_value=-1),
        "5": node("ImageBlur", image=["1", 0], blur_radius=["2", 0], sigma=["3", 0]),
        "6": node("ImageSharpen", image=["5", 0], sharpen_radius=["2", 0], sigma=1.0, alpha=1.0),
        "7": node("Mystery", value=["4", 0]),
        "8": node("SaveImage", images=["6", 0], filename_prefix="x"),
    }
    tool = with_server_bounds(load(graph), real_summary())
    radius, sigma, seed = (tool.input(n) for n in ("radius", "sigma", "seed"))
    assert radius is not None and (radius.minimum, radius.maximum) == (1, 31)  # ImageSharpen's 1..31 too
    assert sigma is not None and (sigma.minimum, sigma.maximum) == (0.5, 10.0)  # the workflow's own min kept
    assert seed is not None and (seed.minimum, seed.maximum) == (None, None)


def test_unbounded_sidecar_numbers_take_the_server_bounds_too_and_unknown_fields_stay_open() -> None:
    toml = sidecar_input("radius", node="2", field="blur_radius", type="integer") + sidecar_input(
        "prefix", node="3", field="filename_prefix", type="text", default="x"
    )
    bounded = with_server_bounds(load(BLUR, toml), real_summary())
    assert (bounded.inputs[0].minimum, bounded.inputs[0].maximum) == (1, 31)
    untouched = with_server_bounds(load(BLUR, toml), ObjectInfoSummary())
    assert (untouched.inputs[0].minimum, untouched.inputs[0].maximum) == (None, None)


# --- the shipped examples ----------------------------------------------------------------------


def load_example(name: str) -> WorkflowTool:
    sidecar = EXAMPLES / f"{name}.toml"
    return load_workflow(
        name, (EXAMPLES / f"{name}.json").read_text(), sidecar.read_text() if sidecar.exists() else None
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_example_workflow_loads(path: Path) -> None:
    tool = load_example(path.stem)
    assert tool.inputs and tool.output_kind is not None and tool.description


def test_the_examples_show_both_ways_and_their_kinds() -> None:
    kinds = {name: load_example(name) for name in ("blur", "invert", "upscale", "animate", "sdxl_txt2img")}
    assert kinds["invert"].input_source == "external" and kinds["blur"].input_source == "sidecar"
    assert kinds["animate"].output_kind is OutputKind.ANIMATION
    assert kinds["sdxl_txt2img"].primary_input is PrimaryInput.TEXT
    assert kinds["upscale"].input("scale") is not None


# --- any file: a tool or a named refusal, never a crash ----------------------------------------


def load_or_refusal(loading: Callable[[], WorkflowTool]) -> WorkflowTool | InvalidWorkflow:
    try:
        return loading()
    except InvalidWorkflow as exc:
        return exc


_NODE = st.fixed_dictionaries(
    {
        "class_type": st.sampled_from(
            ["SaveImage", "LoadImage", EXT + "Image", EXT + "NumberInt", EXT + "Text", "Note", "X"]
        )
    },
    optional={
        "inputs": st.dictionaries(
            st.sampled_from(["image", "images", "input_id", "default_value", "text", "a"]),
            _JSON | st.tuples(st.sampled_from(["1", "2", "3", 1]), st.integers(-1, 2)).map(list),
            max_size=4,
        )
    },
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["1", "2", "3"]), _NODE | _JSON, max_size=3))
def test_any_json_graph_loads_or_is_refused_naming_its_file(graph: dict[str, Any]) -> None:
    tool = load_or_refusal(lambda: load(graph, name="any"))
    if isinstance(tool, InvalidWorkflow):
        assert tool.file == "any.json"
        return
    assert tool.output_kind is not None or tool.node_classes


_TOML_VALUE = st.one_of(
    st.integers(-3, 40),
    st.floats(-5, 50, allow_nan=False),
    st.booleans(),
    st.sampled_from(
        [
            '"a"',
            '"1"',
            '"2"',
            '"image"',
            '"blur_radius"',
            '"integer"',
            '"choice"',
            '"seed"',
            '"text"',
            '"number"',
            '["a", "b"]',
            "[]",
        ]
    ),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["node", "field", "type", "default", "min", "max", "options", "description"]),
        _TOML_VALUE,
        max_size=8,
    )
)
def test_any_sidecar_input_table_loads_or_is_refused_naming_its_file(table: dict[str, Any]) -> None:
    toml = "[inputs.x]\n" + "".join(
        f"{key} = {str(value).lower() if isinstance(value, bool) else value}\n" for key, value in table.items()
    )
    tool = load_or_refusal(lambda: load(BLUR, toml, name="any"))
    if isinstance(tool, InvalidWorkflow):
        assert tool.file == "any.toml"
        return
    [spec] = tool.inputs
    assert spec.minimum is None or spec.maximum is None or spec.minimum <= spec.maximum
