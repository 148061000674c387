"""A tool's base-model family, read from the checkpoint and UNet names of its workflow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from noema.domain.base_models import base_model_of, family_of_model_name
from noema.domain.catalog import build_catalog
from noema.domain.loras import Family
from noema.domain.pricing import parse_rates
from noema.domain.runs import DeploymentInfo, MachineInfo, WorkflowVersionInfo
from noema.domain.tools import Tool, ToolOverride
from noema.services.catalog import tool_from_json, tool_to_json


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("sd_xl_base_1.0.safetensors", Family.SDXL),
        ("sdxl_lightning_4step.safetensors", Family.SDXL),
        ("juggernautXL_v9Rdphoto2Lightning.safetensors", Family.SDXL),
        ("RealVisXL_V4.0.safetensors", Family.SDXL),
        ("sd15.safetensors", Family.SD15),
        ("v1-5-pruned-emaonly.ckpt", Family.SD15),
        ("SD1.5/dreamshaper.safetensors", Family.SD15),
        ("ponyDiffusionV6XL_v6.safetensors", Family.PONY),
        ("flux1-dev-fp8.safetensors", Family.FLUX),
        ("flux1-pro.safetensors", Family.FLUX),
        ("sd3.5_large.safetensors", Family.SD3),
        ("sd3_medium_incl_clips.safetensors", Family.SD3),
        ("dreamshaper_8.safetensors", None),
        ("4x-UltraSharp.pth", None),
        ("pixlart.safetensors", None),
        ("", None),
    ],
)
def test_a_model_file_name_names_its_family_or_nothing(name: str, family: Family | None) -> None:
    assert family_of_model_name(name) is family


def _graph(*nodes: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {node_id: {"class_type": cls, "inputs": inputs} for node_id, cls, inputs in nodes}


def test_the_checkpoint_loader_decides_the_family() -> None:
    graph = _graph(
        ("10", "CheckpointLoaderSimple", {"ckpt_name": "sd_xl_base_1.0.safetensors"}),
        ("11", "ADE_AnimateDiffLoaderWithContext", {"motion_model": "mm_sd15_v3"}),  # not a checkpoint
    )
    assert base_model_of(graph) is Family.SDXL


def test_a_unet_loader_counts_like_a_checkpoint() -> None:
    assert base_model_of(_graph(("10", "UNETLoader", {"unet_name": "flux1-dev.safetensors"}))) is Family.FLUX


def test_a_checkpoint_chosen_by_an_external_input_uses_its_default() -> None:
    graph = _graph(
        ("1", "ComfyUIDeployExternalCheckpoint", {"input_id": "ckpt", "default_value": "v1-5-pruned.ckpt"}),
        ("10", "CheckpointLoaderSimple", {"ckpt_name": ["1", 0]}),
    )
    assert base_model_of(graph) is Family.SD15


def test_loaders_of_two_families_give_no_family() -> None:
    graph = _graph(
        ("10", "UNETLoader", {"unet_name": "flux1-dev.safetensors"}),
        ("20", "CheckpointLoaderSimple", {"ckpt_name": "sd_xl_refiner_1.0.safetensors"}),
    )
    assert base_model_of(graph) is None


def test_two_loaders_of_one_family_agree() -> None:
    graph = _graph(
        ("10", "CheckpointLoaderSimple", {"ckpt_name": "sd_xl_base_1.0.safetensors"}),
        ("20", "CheckpointLoaderSimple", {"ckpt_name": "sd_xl_refiner_1.0.safetensors"}),
    )
    assert base_model_of(graph) is Family.SDXL


@pytest.mark.parametrize(
    "graph",
    [
        None,
        [],
        "x",
        {"1": None},
        {"1": {"inputs": None}},
        {"1": {"inputs": {"ckpt_name": 5}}},
        {"1": {"inputs": {"ckpt_name": ["9", 0]}}},
    ],
)
def test_odd_graphs_give_no_family_and_never_raise(graph: Any) -> None:
    assert base_model_of(graph) is None


def _tool_of(ckpt: str, override: ToolOverride | None = None) -> Tool:
    version = WorkflowVersionInfo(
        id="v1",
        workflow_id="w1",
        version=1,
        workflow_api={
            "1": {"class_type": "ComfyUIDeployExternalText", "inputs": {"input_id": "input_text"}},
            "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        },
    )
    deployment = DeploymentInfo(id="d1", name="draw", workflow_id="w1", workflow_version_id="v1", machine_id="m1")
    machine = MachineInfo(id="m1", name="m", gpu="A10G")
    overrides = {"draw": override} if override else None
    return build_catalog([deployment], [machine], {"v1": version}, rates=parse_rates({}), overrides=overrides)[0]


def test_the_catalog_gives_each_tool_the_family_of_its_checkpoint() -> None:
    assert _tool_of("sd_xl_base_1.0.safetensors").base_model is Family.SDXL
    assert _tool_of("mystery.safetensors").base_model is None


def test_the_family_survives_the_snapshot_and_old_snapshots_still_load() -> None:
    tool = _tool_of("flux1-dev.safetensors")
    saved = json.loads(json.dumps(tool_to_json(tool)))
    assert saved["base_model"] == "FLUX" and tool_from_json(saved) == tool
    del saved["base_model"]  # a snapshot written before tools had a family
    assert tool_from_json(saved).base_model is None


def test_an_operator_can_name_the_family_or_switch_loras_off_for_a_tool() -> None:
    assert _tool_of("dreamshaper_8.safetensors", ToolOverride(base_model="sd 1.5")).base_model is Family.SD15
    assert _tool_of("sd_xl_base_1.0.safetensors", ToolOverride(base_model="none")).base_model is None
    kept = _tool_of("sd_xl_base_1.0.safetensors", ToolOverride(base_model="SD9"))
    assert kept.base_model is Family.SDXL
    assert kept.extra["override_warnings"] == [
        "base_model 'SD9' ignored: use SD1.5, SDXL, PONY, FLUX, SD3, SD1.5-XL or none"
    ]
