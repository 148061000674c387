"""The shipped example workflows, built into prompts by Noema, run on the real ComfyUI 0.3.64 peer.

The peer is the session's shared one (``real_comfyui``: ``tests/fakes/comfyui_peer``). It has no model files, so the SDXL example must be reported
as lacking its checkpoint, and the server itself must refuse it. A peer that cannot start fails these
tests with its log; they never skip.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from noema.domain.comfyui_workflows import (
    WorkflowTool,
    build_prompt,
    load_workflow,
    server_can_run,
    summary_from_object_info,
    with_server_bounds,
)
from tests.fakes.comfyui_peer import Server, log_tail

pytestmark = pytest.mark.comfyui

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
RUN_TIMEOUT = 60


@pytest.fixture(scope="session")
def peer(real_comfyui: Server) -> Server:
    """The session's real ComfyUI peer (shared with the contract and end-to-end tests)."""
    return real_comfyui


def example(name: str) -> WorkflowTool:
    sidecar = EXAMPLES / f"{name}.toml"
    text = (EXAMPLES / f"{name}.json").read_text()
    return load_workflow(name, text, sidecar.read_text() if sidecar.exists() else None)


def picture(width: int = 24, height: int = 16) -> bytes:
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 10 % 256, y * 15 % 256, 40) for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def upload(client: httpx.Client, content: bytes) -> str:
    answer = client.post("/upload/image", files={"image": (f"noema-{uuid.uuid4().hex[:8]}.png", content, "image/png")})
    answer.raise_for_status()
    name: str = answer.json()["name"]
    return name


def run(peer: Server, prompt: dict[str, Any]) -> dict[str, Any]:
    """Submit a prompt and wait for its history entry."""
    with peer.client() as client:
        answer = client.post("/prompt", json={"prompt": prompt, "client_id": "noema-test"})
        assert answer.status_code == 200, answer.text
        prompt_id = answer.json()["prompt_id"]
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            history = client.get(f"/history/{prompt_id}").json()
            if history:
                entry: dict[str, Any] = history[prompt_id]
                return entry
            time.sleep(0.1)
    pytest.fail(f"prompt {prompt_id} did not finish in {RUN_TIMEOUT} s; log:\n{log_tail(peer.log)}")


def output_image(peer: Server, entry: dict[str, Any]) -> Image.Image:
    assert entry["status"]["status_str"] == "success", entry["status"]
    [files] = [o["images"] for o in entry["outputs"].values()]
    [file] = files
    assert file["type"] == "output"
    with peer.client() as client:
        answer = client.get("/view", params=file)
    assert answer.status_code == 200
    return Image.open(io.BytesIO(answer.content))


@pytest.mark.parametrize(
    ("name", "values", "size", "frames"),
    [
        ("blur", {"radius": 3}, (24, 16), 1),
        ("invert", {}, (24, 16), 1),
        ("upscale", {"scale": 2.0}, (48, 32), 1),
        ("animate", {"repeats": 2, "fps": 5.0}, (24, 16), 4),
    ],
)
def test_a_model_free_example_runs_on_the_real_comfyui_and_delivers_its_output(
    peer: Server, name: str, values: dict[str, Any], size: tuple[int, int], frames: int
) -> None:
    with peer.client() as client:
        summary = summary_from_object_info(client.get("/object_info").json())
        tool = with_server_bounds(example(name), summary)
        assert server_can_run(tool, summary) is None
        [image_input] = [i.name for i in tool.inputs if i.type.value == "image"]
        uploaded = {image_input: upload(client, picture())}
    result = output_image(peer, run(peer, build_prompt(tool, values, uploaded)))
    assert result.size == size
    assert getattr(result, "n_frames", 1) == frames
    if name == "invert":
        assert result.convert("RGB").getpixel((2, 3)) == (255 - 20, 255 - 45, 255 - 40)


def test_an_external_number_input_is_bounded_by_the_live_server_and_its_value_inlined(peer: Server) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 255}},
        "2": {"class_type": "ComfyUIDeployExternalNumberInt", "inputs": {"input_id": "radius", "default_value": 2}},
        "3": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": ["2", 0], "sigma": 1.0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "noema_bounds"}},
    }
    with peer.client() as client:
        summary = summary_from_object_info(client.get("/object_info").json())
    tool = with_server_bounds(load_workflow("bounded", json.dumps(graph), None), summary)
    radius = tool.input("radius")
    assert radius is not None and (radius.minimum, radius.maximum) == (1, 31)
    assert output_image(peer, run(peer, build_prompt(tool, {"radius": 4}, {}))).size == (32, 32)


def test_sdxl_is_reported_lacking_its_checkpoint_and_the_server_refuses_it(peer: Server) -> None:
    tool = example("sdxl_txt2img")
    with peer.client() as client:
        summary = summary_from_object_info(client.get("/object_info").json())
        assert server_can_run(tool, summary) == (
            "needs the model sd_xl_base_1.0.safetensors (CheckpointLoaderSimple), which this server lacks"
        )
        prompt = build_prompt(tool, {"prompt": "a lighthouse", "seed": 7}, {})
        answer = client.post("/prompt", json={"prompt": prompt, "client_id": "noema-test"})
    assert answer.status_code == 400
    errors = answer.json()["node_errors"]["4"]["errors"]
    assert errors[0]["type"] == "value_not_in_list" and "sd_xl_base_1.0.safetensors" in errors[0]["details"]
