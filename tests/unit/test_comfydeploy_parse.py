"""ComfyDeploy's wire format → Noema's run and catalog types (pure functions, no I/O)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noema.adapters.backends.comfydeploy_parse import (
    TEXT_LIMIT,
    parse_deployment,
    parse_machine,
    parse_run,
    parse_workflow,
    parse_workflow_version,
    readable_reason,
)
from noema.domain.errors import BackendProtocolError
from noema.domain.runs import InputSpec, OutputKind, RunOutput, RunStatus

DATA = Path(__file__).parents[1] / "data" / "comfydeploy"
RUN_ID = "9b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
CDN = "https://cdn.example/outputs"


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def run_with(*data: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A webhook body whose outputs carry the given ``data`` objects."""
    outputs = [{"node_id": "9", "output_id": f"out_{i}", "data": d} for i, d in enumerate(data)]
    return {"run_id": RUN_ID, "status": "success", "outputs": outputs, **fields}


def media(filename: str, **extra: Any) -> dict[str, Any]:
    return {"url": f"{CDN}/{filename}", "type": "output", "filename": filename, "subfolder": "", **extra}


# --- statuses, progress, live status ----------------------------------------------------------


@pytest.mark.parametrize("status", [s.value for s in RunStatus])
def test_every_comfydeploy_status_parses_to_the_same_named_run_status(status: str) -> None:
    assert parse_run({"run_id": RUN_ID, "status": status}).status == RunStatus(status)


def test_a_webhook_without_a_status_has_no_status() -> None:
    assert parse_run({"run_id": RUN_ID, "live_status": "Executing KSampler"}).status is None


@pytest.mark.parametrize("status", ["finished", "SUCCEEDED", "", 3])
def test_an_unknown_status_is_a_protocol_error(status: object) -> None:
    with pytest.raises(BackendProtocolError):
        parse_run({"run_id": RUN_ID, "status": status})


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (0.43, 0.43),
        (1, 1.0),
        (-0.2, 0.0),
        (1.7, 1.0),
        ("0.5", 0.5),
        (None, None),
        ("n/a", None),
        (True, None),
    ],
)
def test_progress_is_clamped_to_between_zero_and_one(progress: object, expected: float | None) -> None:
    assert parse_run({"run_id": RUN_ID, "progress": progress}).progress == expected


def test_a_long_live_status_is_trimmed_to_500_characters() -> None:
    update = parse_run({"run_id": RUN_ID, "live_status": "x" * 2000})
    assert update.live_status is not None
    assert len(update.live_status) == TEXT_LIMIT


def test_the_run_object_from_get_run_parses_with_its_id_and_gpu() -> None:
    update = parse_run(fixture("run_running.json"))
    assert update.run_id == RUN_ID
    assert update.status is RunStatus.RUNNING
    assert update.progress == 0.43
    assert update.live_status == "Executing KSampler"
    assert update.gpu == "A10G"
    assert update.outputs == ()
    assert update.error is None


def test_the_webhook_body_parses_like_the_run_object() -> None:
    update = parse_run(fixture("webhook_success.json"))
    assert update.run_id == RUN_ID
    assert update.status is RunStatus.SUCCESS
    assert update.progress == 1.0
    assert [o.filename for o in update.outputs] == ["ComfyUI_00001_.png"]


# --- malformed payloads -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [[], "run", None, 42, {"status": "running"}, {"run_id": ""}, {"id": None}])
def test_a_payload_that_is_not_an_object_or_lacks_a_run_id_is_a_protocol_error(payload: Any) -> None:
    with pytest.raises(BackendProtocolError):
        parse_run(payload)


@pytest.mark.parametrize(
    "outputs",
    [
        None,
        "nope",
        [None, 3, "x", {"data": None}, {"data": []}],
        [{"data": {"images": "not-a-list"}}],
        [{"data": {"images": [None, 7, "https://cdn/x.png", {"filename": "no-url.png"}]}}],
        [{"data": {"images": [{"url": "file:///etc/passwd", "filename": "passwd.png"}]}}],
        [{"data": {"images": [{"url": "javascript:alert(1)", "filename": "x.png"}]}}],
    ],
)
def test_malformed_outputs_are_skipped_without_failing_the_update(outputs: Any) -> None:
    update = parse_run({"run_id": RUN_ID, "status": "success", "outputs": outputs})
    assert update.status is RunStatus.SUCCESS
    assert update.outputs == ()


def test_one_malformed_item_does_not_hide_the_good_ones_next_to_it() -> None:
    update = parse_run(run_with({"images": [{"type": "output"}, media("good.png")]}))
    assert [o.filename for o in update.outputs] == ["good.png"]


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=8) | st.sampled_from(["images", "gifs", "temp"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["outputs", "progress", "live_status", "error", "gpu"]), JSON))
def test_a_valid_run_id_and_status_always_parse_whatever_else_the_payload_holds(
    payload: dict[str, Any],
) -> None:
    update = parse_run({**payload, "run_id": RUN_ID, "status": "running"})
    assert update.run_id == RUN_ID
    assert update.progress is None or 0.0 <= update.progress <= 1.0


# --- outputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "item", "kind", "mime"),
    [
        ("images", media("a.png"), OutputKind.IMAGE, "image/png"),
        ("images", media("a.JPG"), OutputKind.IMAGE, "image/jpeg"),
        ("images", media("a.gif"), OutputKind.ANIMATION, "image/gif"),
        ("images", media("a.webp"), OutputKind.ANIMATION, "image/webp"),
        ("gifs", media("v.gif", format="image/gif"), OutputKind.ANIMATION, "image/gif"),
        ("gifs", media("v.mp4", format="video/h264-mp4"), OutputKind.VIDEO, "video/mp4"),
        ("gifs", media("v.webm", format="video/webm"), OutputKind.VIDEO, "video/webm"),
        ("gifs", media("v.mov"), OutputKind.VIDEO, "video/quicktime"),
        ("gifs", media("v", format="video/h264-mp4"), OutputKind.VIDEO, "video/mp4"),
        ("gifs", media("v", format="image/gif"), OutputKind.ANIMATION, "image/gif"),
        ("files", media("model.safetensors"), OutputKind.FILE, None),
        ("files", media("clip.mp4"), OutputKind.VIDEO, "video/mp4"),
        ("files", media("depth.exr"), OutputKind.IMAGE, "image/x-exr"),
        ("audio", media("song.flac"), OutputKind.AUDIO, "audio/flac"),
        ("audio", media("speech.mp3"), OutputKind.AUDIO, "audio/mpeg"),
    ],
)
def test_each_output_key_and_extension_maps_to_its_kind_and_mime_type(
    key: str, item: dict[str, Any], kind: OutputKind, mime: str | None
) -> None:
    (output,) = parse_run(run_with({key: [item]})).outputs
    assert (output.kind, output.mime_type) == (kind, mime)
    assert output.url == item["url"]
    assert output.filename == item["filename"]


@pytest.mark.parametrize("key", ["text", "text_file"])
def test_plain_string_text_items_become_text_outputs(key: str) -> None:
    (output,) = parse_run(run_with({key: ["A red fox in the snow."]})).outputs
    assert output == RunOutput(kind=OutputKind.TEXT, text="A red fox in the snow.", node_id="9", output_id="out_0")


def test_temp_previews_are_skipped() -> None:
    update = parse_run(run_with({"images": [media("keep.png"), media("preview.png", type="temp")]}))
    assert [o.filename for o in update.outputs] == ["keep.png"]


def test_the_execution_time_output_is_skipped() -> None:
    update = parse_run(run_with({"execution_time": [{"node_id": "3", "time": 12.3}]}, {"images": [media("a.png")]}))
    assert [o.filename for o in update.outputs] == ["a.png"]


def test_node_id_and_output_id_are_kept_and_an_item_output_id_wins() -> None:
    update = parse_run(run_with({"images": [media("a.png"), media("b.png", output_id="hero")]}))
    assert [(o.node_id, o.output_id) for o in update.outputs] == [("9", "out_0"), ("9", "hero")]


def test_a_missing_filename_is_taken_from_the_url() -> None:
    item = {"url": f"{CDN}/runs/x/My%20Picture.png?sig=abc", "type": "output"}
    (output,) = parse_run(run_with({"images": [item]})).outputs
    assert (output.filename, output.mime_type) == ("My Picture.png", "image/png")


def test_every_output_of_the_real_success_run_is_kept_in_order() -> None:
    outputs = parse_run(fixture("run_success.json")).outputs
    assert [(o.kind, o.filename or o.text, o.node_id) for o in outputs] == [
        (OutputKind.IMAGE, "ComfyUI_00001_.png", "9"),
        (OutputKind.VIDEO, "AnimateDiff_00001.mp4", "12"),
        (OutputKind.ANIMATION, "AnimateDiff_00002.gif", "12"),
        (OutputKind.TEXT, "A red fox sitting in the snow.", "15"),
    ]


# --- failure reasons --------------------------------------------------------------------------


def test_a_failed_run_without_an_error_field_uses_its_live_status_as_the_reason() -> None:
    update = parse_run(fixture("webhook_failed.json"))
    assert update.status is RunStatus.FAILED
    assert update.error == "Executing KSampler"


def test_a_running_run_has_no_error_even_with_a_live_status() -> None:
    assert parse_run(fixture("run_running.json")).error is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("Out of credits", "Out of credits"),
        ({"message": "Node 3 crashed"}, "Node 3 crashed"),
        ({"error": {"message": "inner"}}, "inner"),
        (
            {
                "node_type": "KSampler",
                "exception_type": "torch.OutOfMemoryError",
                "exception_message": "CUDA OOM",
            },
            "KSampler: CUDA OOM",
        ),
        ({"exception_type": "ValueError", "exception_message": "bad seed"}, "ValueError: bad seed"),
        ([{"msg": "first"}, "second", None], "first; second"),
        ({"code": 42, "where": "upload"}, "code: 42, where: upload"),
    ],
)
def test_an_error_reason_that_is_an_object_is_rendered_as_readable_text(error: Any, reason: str) -> None:
    update = parse_run({"run_id": RUN_ID, "status": "failed", "live_status": "Executing X", "error": error})
    assert update.error == reason
    assert "{" not in reason
    assert "[object Object]" not in reason


@pytest.mark.parametrize("value", [None, "", "   ", {}, [], True, {"nested": {"deep": {}}}])
def test_an_empty_reason_renders_as_nothing(value: Any) -> None:
    assert readable_reason(value) is None


def test_a_validation_error_list_names_the_field() -> None:
    assert readable_reason(fixture("error_422.json")["detail"]) == "body.deployment_id: Field required"


# --- deployments ------------------------------------------------------------------------------


def test_a_deployment_with_input_types_keeps_its_inputs_outputs_and_environment() -> None:
    deployment = parse_deployment(fixture("deployments.json")[0])
    assert deployment.id == "15e79589-12c9-453c-a41a-348fdd7de957"
    assert deployment.name == "txt2img"
    assert deployment.environment == "production"
    assert deployment.workflow_id == "7d2e9a10-5c4b-4e3f-8a1d-2b3c4d5e6f70"
    assert deployment.workflow_version_id == "3f0c7a52-2b7e-4f51-9d5e-6a1b2c3d4e5f"
    assert deployment.machine_id == "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    assert deployment.output_types == ("ComfyDeployOutputImage",)
    assert deployment.input_types is not None
    text, steps, sampler = deployment.input_types
    assert text == InputSpec(
        input_id="input_text",
        class_type="ComfyUIDeployExternalText",
        type="string",
        default_value="a cat",
        display_name="Prompt",
        description=None,
    )
    assert (steps.min_value, steps.max_value, steps.default_value) == (1.0, 50.0, 20)
    assert sampler.enum_options == ("euler", "dpmpp_2m", "ddim")


def test_a_deployment_without_input_types_has_none_and_falls_back_to_its_description_for_a_name() -> None:
    deployment = parse_deployment(fixture("deployments.json")[1])
    assert deployment.input_types is None
    assert deployment.output_types == ()
    assert deployment.name == "upscaler (staging)"
    assert deployment.environment == "staging"


@pytest.mark.parametrize(
    ("fields", "name"),
    [({"workflow": {"name": "wf"}, "name": "n"}, "wf"), ({"name": "n"}, "n"), ({"workflow": "junk"}, "d-1")],
)
def test_a_deployment_name_comes_from_its_workflow_then_name_then_description_then_id(
    fields: dict[str, Any], name: str
) -> None:
    assert parse_deployment({"id": "d-1", **fields}).name == name


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ('["a", "b"]', ("a", "b")),
        (["a", 2], ("a", "2")),
        ("not json", None),
        ('{"a": 1}', None),
    ],
)
def test_enum_options_may_be_a_list_or_a_json_string(options: Any, expected: tuple[str, ...] | None) -> None:
    item = {"input_id": "input_enum", "class_type": "ComfyUIDeployExternalEnum", "enum_options": options}
    deployment = parse_deployment({"id": "d-1", "input_types": [item]})
    assert deployment.input_types is not None
    assert deployment.input_types[0].enum_options == expected


def test_enum_options_fall_back_to_the_raw_options_string_of_the_node() -> None:
    item = {"input_id": "input_enum", "class_type": "ComfyUIDeployExternalEnum", "options": '["x"]'}
    deployment = parse_deployment({"id": "d-1", "input_types": [item]})
    assert deployment.input_types is not None
    assert deployment.input_types[0].enum_options == ("x",)


def test_an_input_without_input_id_or_class_type_is_skipped() -> None:
    items = [
        {"class_type": "ComfyUIDeployExternalText"},
        {"input_id": "x"},
        "junk",
        {"input_id": "ok", "class_type": "C"},
    ]
    deployment = parse_deployment({"id": "d-1", "input_types": items})
    assert deployment.input_types is not None
    assert [spec.input_id for spec in deployment.input_types] == ["ok"]


@pytest.mark.parametrize("obj", [{}, {"id": ""}, [], None, {"id": "d", "input_types": "nope"}])
def test_a_deployment_without_an_id_or_with_bad_input_types_is_a_protocol_error(obj: Any) -> None:
    with pytest.raises(BackendProtocolError):
        parse_deployment(obj)


# --- machines, workflows, versions ------------------------------------------------------------


def test_machines_take_their_gpu_from_gpu_or_the_older_gpu_type_upper_cased() -> None:
    machines = [parse_machine(m) for m in fixture("machines.json")]
    assert [(m.name, m.gpu) for m in machines] == [("sdxl-a10g", "A10G"), ("legacy-l4", "L4")]


def test_a_machine_without_a_gpu_has_none() -> None:
    assert parse_machine({"id": "m-1"}).gpu is None


def test_a_workflow_parses_with_its_name() -> None:
    workflow = parse_workflow(fixture("workflows.json")[0])
    assert (workflow.id, workflow.name) == ("7d2e9a10-5c4b-4e3f-8a1d-2b3c4d5e6f70", "txt2img")


def test_a_workflow_version_keeps_both_graphs() -> None:
    version = parse_workflow_version(fixture("workflow_versions.json")[0])
    assert version.version == 2
    assert version.workflow["nodes"][0]["type"] == "Note"
    assert version.workflow_api["6"]["class_type"] == "ComfyUIDeployExternalText"


def test_a_workflow_version_without_a_workflow_id_takes_the_one_asked_for() -> None:
    version = parse_workflow_version({"id": "v-1", "workflow_api": '{"1": {}}'}, workflow_id="w-1")
    assert (version.workflow_id, version.workflow, version.workflow_api) == ("w-1", {}, {"1": {}})
