"""Open number inputs take ComfyUI's range for the field they feed, else the node's own; operators set their own."""

from __future__ import annotations

from typing import Any

import pytest

from noema.domain.catalog import build_catalog
from noema.domain.errors import InvalidInput
from noema.domain.input_bounds import NODE_LIMIT
from noema.domain.inputs import validate_inputs
from noema.domain.pricing import parse_rates
from noema.domain.runs import DeploymentInfo, MachineInfo, WorkflowVersionInfo
from noema.domain.tools import Tool, ToolOverride

EXT = "ComfyUIDeployExternal"
MACHINE = MachineInfo(id="m-a10g", name="a10g", gpu="A10G")


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


GRAPH = {
    "1": node(EXT + "Text", input_id="input_text"),
    "2": node(EXT + "NumberInt", input_id="steps", default_value=20),
    "3": node(EXT + "Number", input_id="cfg", default_value=7.0),
    "4": node(EXT + "NumberInt", input_id="batch", default_value=1),
    "5": node(EXT + "NumberInt", input_id="width", default_value=512, min_value=256),
    "6": node(EXT + "NumberInt", input_id="loose", default_value=3),
    "7": node(EXT + "Seed", input_id="seed", default_value=-1),
    "10": node("EmptyLatentImage", width=["5", 0], height=512, batch_size=["4", 0]),
    "11": node("KSampler", steps=["2", 0], cfg=["3", 0], seed=["7", 0], latent_image=["10", 0]),
    "12": node("Mystery", value=["6", 0]),
}


def tool(graph: dict[str, Any] = GRAPH, /, **overrides: ToolOverride) -> Tool:
    dep = DeploymentInfo(id="dep-1", name="txt2img", machine_id=MACHINE.id, workflow_version_id="v-1", input_types=None)
    versions = {"v-1": WorkflowVersionInfo(id="v-1", workflow_id="wf", version=1, workflow_api=graph)}
    [built] = build_catalog([dep], [MACHINE], versions, rates=parse_rates({}), overrides=overrides)
    return built


def bounds(t: Tool, name: str) -> tuple[float | None, float | None]:
    spec = t.input(name)
    assert spec is not None
    return spec.minimum, spec.maximum


def test_an_open_number_input_takes_comfyuis_range_for_the_core_field_it_feeds() -> None:
    t = tool()
    assert bounds(t, "steps") == (1, 10000)
    assert bounds(t, "cfg") == (0, 100)
    assert bounds(t, "batch") == (1, 4096)
    assert bounds(t, "width") == (256, 16384)  # the workflow's own minimum is kept


def test_an_input_feeding_no_known_field_is_held_to_the_nodes_own_range_and_the_seed_to_its_own() -> None:
    t = tool()
    assert bounds(t, "loose") == (-NODE_LIMIT, NODE_LIMIT)
    assert bounds(t, "seed") == (None, None)  # a seed is checked against 0 … 2**64 - 1 (or -1) by its type


@pytest.mark.parametrize("steps", [99999999, -5, 10**12])
def test_absurd_steps_on_a_comfydeploy_workflow_without_bounds_are_refused_naming_the_range(steps: int) -> None:
    import random

    with pytest.raises(InvalidInput, match="must be between 1 and 10000"):
        validate_inputs(tool(), {"input_text": "a fox", "steps": steps}, rng=random.Random(1))


def test_an_override_sets_the_bounds_and_bad_ones_are_ignored_with_a_warning() -> None:
    good = tool(**{"txt2img": ToolOverride(bounds={"steps": [1, 50], "cfg": [1.5, 12]})})
    assert bounds(good, "steps") == (1, 50) and bounds(good, "cfg") == (1.5, 12)
    assert "override_warnings" not in good.extra
    bad = {"steps": [50, 1], "cfg": "1-12", "input_text": [1, 2], "nope": [1, 2], "batch": [1.5, 4], "width": [0, 9]}
    t = tool(**{"txt2img": ToolOverride(bounds=bad)})
    assert bounds(t, "steps") == (1, 10000) and bounds(t, "cfg") == (0, 100) and bounds(t, "batch") == (1, 4096)
    assert bounds(t, "width") == (0, 9)
    warnings = t.extra["override_warnings"]
    assert sum("ignored" in w for w in warnings) == 5
    assert "the default of 'width' lies outside its new bounds; set one in defaults" in warnings


def test_odd_graphs_leave_the_catalog_standing() -> None:
    odd = {**GRAPH, "13": node("KSampler", steps=[10**5000, 0]), "14": "not a node", "15": node(EXT + "NumberInt")}
    assert bounds(tool(odd), "steps") == (1, 10000)
