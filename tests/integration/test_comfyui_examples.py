"""The shipped example workflows, built into prompts by Noema, run on the real ComfyUI 0.3.64 peer.

The peer is started once per session on a free port in a temporary folder (``../shared/peers/comfyui/
start``, or ``NOEMA_COMFYUI_PEER_START``). It has no model files, so the SDXL example must be reported
as lacking its checkpoint, and the server itself must refuse it. A peer that cannot start fails these
tests with its log; they never skip.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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

pytestmark = pytest.mark.comfyui

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
START = Path(os.environ.get("NOEMA_COMFYUI_PEER_START", ROOT.parent / "shared" / "peers" / "comfyui" / "start"))
START_TIMEOUT = 900  # the first start on a machine builds ComfyUI's virtualenv
RUN_TIMEOUT = 60


@dataclass
class Peer:
    """A running ComfyUI server."""

    url: str
    pid: int
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """The real ComfyUI, started for this test session and stopped after it."""
    folder = tmp_path_factory.mktemp("comfyui")
    log = folder / "comfyui.log"
    try:
        done = subprocess.run(
            [str(START), "--port", str(_free_port()), "--dir", str(folder)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"the ComfyUI peer did not start ({exc}); its log:\n{_tail(log)}")
    words = done.stdout.split()
    if done.returncode != 0 or "ready" not in words:
        pytest.fail(f"the ComfyUI peer did not start:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}\n{_tail(log)}")
    running = Peer(url=words[words.index("ready") + 1], pid=int(words[words.index("pid") + 1]), log=log)
    yield running
    os.kill(running.pid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.kill(running.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)


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


def run(peer: Peer, prompt: dict[str, Any]) -> dict[str, Any]:
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
    pytest.fail(f"prompt {prompt_id} did not finish in {RUN_TIMEOUT} s; log:\n{_tail(peer.log)}")


def output_image(peer: Peer, entry: dict[str, Any]) -> Image.Image:
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
    peer: Peer, name: str, values: dict[str, Any], size: tuple[int, int], frames: int
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


def test_an_external_number_input_is_bounded_by_the_live_server_and_its_value_inlined(peer: Peer) -> None:
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


def test_sdxl_is_reported_lacking_its_checkpoint_and_the_server_refuses_it(peer: Peer) -> None:
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
