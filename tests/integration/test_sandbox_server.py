"""The sandbox backend speaks ComfyDeploy's V2 API: runs, webhooks, outputs, catalog, uploads, faults."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image, ImageSequence
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from noema.adapters.backends.sandbox import (
    DEPLOYMENT_IDS,
    SandboxConfig,
    SandboxServer,
    create_standalone_app,
    parse_faults,
)

BASE_URL = "http://sandbox"
HOOK_URL = "http://hooks/webhook"
API_KEY = "test-token"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
RUN_SECONDS = 0.3
TERMINAL = {"success", "failed", "cancelled", "timeout"}


def png_bytes(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Recorder:
    """A tiny webhook receiver and image host reached through the sandbox's injected http client."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    failures_left: int = 0
    #: how often the image route was asked for (the sandbox must never fetch it)
    fetched: int = 0

    def app(self) -> Starlette:
        async def webhook(request: Request) -> Response:
            if self.failures_left > 0:
                self.failures_left -= 1
                return JSONResponse({"error": "try again"}, status_code=500)
            self.posts.append(await request.json())
            self.content_types.append(request.headers.get("content-type", ""))
            return JSONResponse({"status": "ok"})

        async def image(request: Request) -> Response:
            self.fetched += 1
            return Response(png_bytes((300, 200), (20, 200, 40)), media_type="image/png")

        return Starlette(
            routes=[
                Route("/webhook", webhook, methods=["POST"]),
                Route("/green.png", image),
            ]
        )

    def statuses(self, run_id: str) -> list[str]:
        return [p["status"] for p in self.posts if p["run_id"] == run_id and p["event_type"] == "run.updated"]


@dataclass
class Sandbox:
    server: SandboxServer
    client: httpx.AsyncClient
    recorder: Recorder

    async def queue(self, name: str, inputs: Mapping[str, Any], **extra: Any) -> str:
        body = {"deployment_id": DEPLOYMENT_IDS[name], "inputs": dict(inputs), "webhook": HOOK_URL, **extra}
        response = await self.client.post("/api/run/deployment/queue", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        return str(response.json()["run_id"])

    async def run(self, run_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/run/{run_id}", headers=AUTH)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_for(self, run_id: str, statuses: set[str], timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                run = await self.run(run_id)
                if run["status"] in statuses:
                    return run
                await asyncio.sleep(0.02)

    async def finish(self, run_id: str) -> dict[str, Any]:
        run = await self.wait_for(run_id, TERMINAL)
        await self.server.webhooks.wait_idle()
        return run

    async def download(self, url: str) -> httpx.Response:
        assert url.startswith(f"{BASE_URL}/files/")
        response = await self.client.get(url)
        assert response.status_code == 200
        return response


@asynccontextmanager
async def open_sandbox(data_dir: Path, recorder: Recorder, **config: Any) -> AsyncIterator[Sandbox]:
    settings = {"run_seconds": RUN_SECONDS, "seed": 1234, "api_key": API_KEY, "webhook_base": "http://hooks", **config}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=recorder.app())) as hooks_client:
        server = SandboxServer(
            SandboxConfig(public_base_url=BASE_URL, data_dir=data_dir, **settings), http_client=hooks_client
        )
        await server.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url=BASE_URL) as client:
                yield Sandbox(server, client, recorder)
        finally:
            await server.stop()


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with open_sandbox(tmp_path, Recorder()) as opened:
        yield opened


async def upload(sandbox: Sandbox, content: bytes, content_type: str, name: str = "photo.png") -> httpx.Response:
    files = {"file": (name, content, content_type)}
    return await sandbox.client.post("/api/file/upload", files=files, headers=AUTH)


# --- auth and request validation -------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}])
async def test_api_routes_refuse_requests_without_a_bearer_token(sandbox: Sandbox, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/api/deployments"), ("POST", "/api/run/deployment/queue"), ("GET", "/api/run/x")]:
        response = await sandbox.client.request(method, path, headers=headers, json={})
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid or missing token"}


async def test_a_configured_api_key_must_match(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), api_key="secret-key") as sandbox:
        wrong = await sandbox.client.get("/api/machines", headers=AUTH)
        right = await sandbox.client.get("/api/machines", headers={"Authorization": "Bearer secret-key"})
    assert wrong.status_code == 401
    assert right.status_code == 200


async def test_queue_without_deployment_id_is_a_422_in_fastapi_shape(sandbox: Sandbox) -> None:
    response = await sandbox.client.post("/api/run/deployment/queue", json={"inputs": {}}, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "deployment_id"]
    assert error["type"] == "missing"


async def test_queue_for_an_unknown_deployment_is_404(sandbox: Sandbox) -> None:
    body = {"deployment_id": "00000000-0000-0000-0000-000000000000", "inputs": {}}
    response = await sandbox.client.post("/api/run/deployment/queue", json=body, headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"detail": "Deployment not found"}


async def test_unknown_run_is_404_and_cancelling_it_reproduces_the_500_quirk(sandbox: Sandbox) -> None:
    missing = await sandbox.client.get("/api/run/6a1b4c1e-0000-4000-8000-000000000000", headers=AUTH)
    cancel = await sandbox.client.post("/api/run/6a1b4c1e-0000-4000-8000-000000000000/cancel", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Run not found"}
    assert cancel.status_code == 500
    assert cancel.json() == {"detail": "Error cancel function 404: Run not found or has no modal function call ID"}


# --- the run lifecycle ------------------------------------------------------------------------


async def test_txt2img_run_goes_through_every_status_and_yields_a_downloadable_png(sandbox: Sandbox) -> None:
    inputs = {"input_text": "a red fox in the snow", "input_seed": 42, "width": 320, "height": 256, "extra": 1}
    run_id = await sandbox.queue("txt2img", inputs, gpu="A10G", execution_mode="async")
    run = await sandbox.finish(run_id)

    assert sandbox.recorder.statuses(run_id) == ["queued", "started", "running", "success"]
    assert all(ct.startswith("application/json") for ct in sandbox.recorder.content_types)
    last = sandbox.recorder.posts[-1]
    assert set(last) == {"event_type", "status", "live_status", "progress", "run_id", "outputs"}
    assert last["progress"] == 1.0
    assert last["outputs"] == run["outputs"]

    assert run["status"] == "success"
    assert run["origin"] == "api"
    assert run["gpu"] == "A10G"
    assert run["workflow_inputs"]["input_text"] == "a red fox in the snow"
    assert run["created_at"].endswith("Z") and run["ended_at"].endswith("Z")
    assert run["live_status"].startswith("Executing ")
    for key in ("queued_at", "started_at", "machine_id", "workflow_version_id", "workflow_id", "number"):
        assert run[key]
    assert run["queue_position"] is None and run["run_duration"] > 0

    (output,) = run["outputs"]
    assert output["run_id"] == run_id and output["type"] is None
    assert output["output_id"] == "output_images"
    assert output["node_meta"] == {"node_class": "ComfyDeployOutputImage"}
    (image,) = output["data"]["images"]
    assert image["type"] == "output" and image["subfolder"] == "" and image["is_public"] is True
    assert image["filename"].endswith(".png")
    response = await sandbox.download(image["url"])
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as picture:
        assert picture.format == "PNG"
        assert picture.size == (320, 256)


async def test_same_prompt_and_seed_render_identical_bytes_and_another_seed_differs(sandbox: Sandbox) -> None:
    prompt = {"input_text": "lighthouse at dusk", "width": 256, "height": 256}
    run_ids = [await sandbox.queue("txt2img", {**prompt, "input_seed": seed}, webhook=None) for seed in (7, 7, 8)]
    pictures = []
    for run_id in run_ids:
        run = await sandbox.finish(run_id)
        pictures.append((await sandbox.download(run["outputs"][0]["data"]["images"][0]["url"])).content)
    assert pictures[0] == pictures[1]
    assert pictures[0] != pictures[2]


async def test_a_random_seed_is_chosen_and_recorded_in_workflow_inputs(sandbox: Sandbox) -> None:
    run_id = await sandbox.queue("txt2img", {"input_text": "anything", "input_seed": -1}, webhook=None)
    run = await sandbox.run(run_id)
    assert isinstance(run["workflow_inputs"]["input_seed"], int)
    assert run["workflow_inputs"]["input_seed"] != -1


async def test_intermediate_webhooks_report_rising_progress_and_live_status(sandbox: Sandbox) -> None:
    run_id = await sandbox.queue("txt2img", {"input_text": "x", "input_seed": 1}, webhook_intermediate_status=True)
    await sandbox.finish(run_id)
    running = [p for p in sandbox.recorder.posts if p["status"] == "running"]
    assert len(running) > 3
    progresses = [p["progress"] for p in running]
    assert progresses == sorted(progresses) and progresses[-1] == 1.0
    assert {p["live_status"] for p in running[1:]} >= {"Executing KSampler", "Executing VAEDecode"}


async def test_get_run_reports_running_progress_while_the_run_executes(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), run_seconds=1.0) as sandbox:
        run_id = await sandbox.queue("txt2img", {"input_text": "slow", "input_seed": 3}, webhook=None)
        run = await sandbox.wait_for(run_id, {"running"})
        await asyncio.sleep(0.4)
        later = await sandbox.run(run_id)
    assert run["started_at"] is not None and run["ended_at"] is None
    assert later["status"] == "running"
    assert 0 < later["progress"] < 1
    assert later["live_status"].startswith("Executing ")


async def test_cancel_stops_a_live_run_for_good_and_sends_a_webhook(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), run_seconds=0.6) as sandbox:
        run_id = await sandbox.queue("txt2img", {"input_text": "stop me", "input_seed": 5})
        await sandbox.wait_for(run_id, {"running"})
        response = await sandbox.client.post(f"/api/run/{run_id}/cancel", headers=AUTH)
        await asyncio.sleep(0.7)
        await sandbox.server.webhooks.wait_idle()
        run = await sandbox.run(run_id)
    assert response.json() == {"status": "success", "message": "Function cancelled"}
    assert run["status"] == "cancelled"
    assert run["outputs"] == [] and run["ended_at"] is not None
    assert sandbox.recorder.statuses(run_id) == ["queued", "started", "running", "cancelled"]


async def test_cancelling_a_finished_run_succeeds_without_changing_it(sandbox: Sandbox) -> None:
    run_id = await sandbox.queue("txt2img", {"input_text": "done", "input_seed": 9})
    await sandbox.finish(run_id)
    response = await sandbox.client.post(f"/api/run/{run_id}/cancel", headers=AUTH)
    await sandbox.server.webhooks.wait_idle()
    assert response.status_code == 200
    assert (await sandbox.run(run_id))["status"] == "success"
    assert sandbox.recorder.statuses(run_id)[-1] == "success"


# --- other workflows --------------------------------------------------------------------------


async def test_animate_yields_a_looping_gif_under_gifs(sandbox: Sandbox) -> None:
    run_id = await sandbox.queue("animate", {"input_text": "bouncing balls", "input_seed": 11}, webhook=None)
    run = await sandbox.finish(run_id)
    (output,) = run["outputs"]
    (gif,) = output["data"]["gifs"]
    assert output["node_meta"] == {"node_class": "VHS_VideoCombine"}
    assert gif["format"] == "image/gif" and gif["type"] == "output" and gif["filename"].endswith(".gif")
    response = await sandbox.download(gif["url"])
    assert response.headers["content-type"] == "image/gif"
    with Image.open(io.BytesIO(response.content)) as animation:
        assert animation.format == "GIF"
        assert sum(1 for _ in ImageSequence.Iterator(animation)) >= 8
        assert animation.info["loop"] == 0


async def test_img2img_uses_an_uploaded_file_and_upscale_doubles_it(sandbox: Sandbox) -> None:
    uploaded = await upload(sandbox, png_bytes((200, 120), (30, 60, 220)), "image/png")
    assert uploaded.status_code == 200
    body = uploaded.json()
    assert body["message"] == "File uploaded successfully" and body["file_name"] == "photo.png"
    url = body["file_url"]
    restyle = await sandbox.queue("img2img", {"input_image": url, "input_text": "as a mosaic"}, webhook=None)
    bigger = await sandbox.queue("upscale", {"input_image": url}, webhook=None)

    run = await sandbox.finish(restyle)
    assert run["status"] == "success", run["live_status"]
    restyled = (await sandbox.download(run["outputs"][0]["data"]["images"][0]["url"])).content
    upscaled_run = await sandbox.finish(bigger)
    (image,) = upscaled_run["outputs"][0]["data"]["images"]
    assert upscaled_run["outputs"][0]["node_meta"] == {"node_class": "SaveImage"}
    with Image.open(io.BytesIO((await sandbox.download(image["url"])).content)) as upscaled:
        assert upscaled.size == (400, 240)
    with Image.open(io.BytesIO(restyled)) as picture:
        assert picture.width / picture.height == pytest.approx(200 / 120, rel=0.02)


async def test_img2img_reads_data_uri_images_and_never_fetches_remote_ones(sandbox: Sandbox) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(png_bytes((64, 64), (250, 250, 0))).decode()
    remote = await sandbox.queue("img2img", {"input_image": "http://hooks/green.png"}, webhook=None)
    inline = await sandbox.queue("img2img", {"input_image": data_uri}, webhook=None)
    assert (await sandbox.finish(remote))["status"] == "failed"
    assert (await sandbox.finish(inline))["status"] == "success"
    assert sandbox.recorder.fetched == 0


async def test_caption_returns_plain_text_outputs(sandbox: Sandbox) -> None:
    url = (await upload(sandbox, png_bytes((160, 90), (20, 40, 230)), "image/png")).json()["file_url"]
    run = await sandbox.finish(await sandbox.queue("caption", {"input_image": url}, webhook=None))
    (output,) = run["outputs"]
    assert output["output_id"] == "output_text"
    assert output["data"]["text"] == ["A 160×90 image, mostly blue (sandbox caption)"]


@pytest.mark.parametrize(
    ("name", "inputs", "reason"),
    [
        ("img2img", {"input_image": "http://hooks/green.png"}, "only from its own files"),
        ("caption", {"input_image": "data:image/png;base64,bm90IGFuIGltYWdl"}, "could not be decoded"),
        ("upscale", {"input_image": f"{BASE_URL}/files/uploads/nothing/here.png"}, "does not exist"),
        ("txt2img", {"input_seed": 1}, "input_text is required"),
        ("txt2img", {"input_text": "x", "width": 99999}, "width must be at most 1536"),
    ],
)
async def test_unusable_inputs_fail_the_run_with_a_clear_live_status(
    sandbox: Sandbox, name: str, inputs: dict[str, Any], reason: str
) -> None:
    run = await sandbox.finish(await sandbox.queue(name, inputs))
    assert run["status"] == "failed"
    assert run["live_status"].startswith("Error: ")
    assert reason in run["live_status"]
    assert run["outputs"] == []
    assert sandbox.recorder.statuses(run["id"])[-1] == "failed"


# --- uploads and files ------------------------------------------------------------------------


async def test_upload_refuses_text_files_and_oversized_files(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), max_upload_bytes=1000) as sandbox:
        text = await upload(sandbox, b"hello", "text/plain", name="notes.txt")
        big = await upload(sandbox, b"\0" * 2000, "application/octet-stream", name="blob.bin")
        missing = await sandbox.client.post("/api/file/upload", headers=AUTH, data={"x": "y"})
    assert text.status_code == 400
    assert "text/plain" in text.json()["detail"]
    assert big.status_code == 413
    assert missing.status_code == 422


async def test_files_outside_the_store_are_not_served(sandbox: Sandbox) -> None:
    for path in ("/files/../runs/x.json", "/files/%2e%2e/%2e%2e/etc/passwd", "/files/uploads/none.png"):
        assert (await sandbox.client.get(path)).status_code == 404


async def test_home_page_says_it_is_a_sandbox(sandbox: Sandbox) -> None:
    response = await sandbox.client.get("/")
    assert response.status_code == 200
    assert "Noema sandbox backend — not a real GPU" in response.text


# --- the catalog ------------------------------------------------------------------------------


async def test_deployments_machines_and_workflows_follow_the_real_shapes(sandbox: Sandbox) -> None:
    deployments = (await sandbox.client.get("/api/deployments?environment=production", headers=AUTH)).json()
    machines = {m["id"]: m for m in (await sandbox.client.get("/api/machines", headers=AUTH)).json()}
    assert {d["workflow"]["name"] for d in deployments} >= set(DEPLOYMENT_IDS)
    assert {m["type"] for m in machines.values()} == {"comfy-deploy-serverless"}
    gpu_of = {d["workflow"]["name"]: machines[d["machine_id"]]["gpu"] for d in deployments}
    assert gpu_of["txt2img"] == "A10G" and gpu_of["flux-pro"] == "H200" and gpu_of["animate"] == "L40S"
    assert any(d.get("input_types") is None for d in deployments)
    txt2img = next(d for d in deployments if d["workflow"]["name"] == "txt2img")
    prompt = next(i for i in txt2img["input_types"] if i["input_id"] == "input_text")
    sampler = next(i for i in txt2img["input_types"] if i["input_id"] == "sampler")
    assert prompt["class_type"] == "ComfyUIDeployExternalText" and prompt["default_value"] is None
    assert sampler["enum_options"] == ["euler", "euler_ancestral", "dpmpp_2m", "ddim"]
    assert txt2img["output_types"] == [{"class_type": "ComfyDeployOutputImage", "output_id": "output_images"}]
    one = await sandbox.client.get(f"/api/deployment/{txt2img['id']}", headers=AUTH)
    assert one.json() == txt2img
    assert (await sandbox.client.get("/api/deployments?environment=staging", headers=AUTH)).json() == []


async def test_workflow_versions_carry_note_and_external_input_nodes(sandbox: Sandbox) -> None:
    deployments = (await sandbox.client.get("/api/deployments", headers=AUTH)).json()
    animate = next(d for d in deployments if d["workflow"]["name"] == "animate")
    assert "input_types" not in animate
    workflows = (await sandbox.client.get("/api/workflows", headers=AUTH)).json()
    assert animate["workflow_id"] in {w["id"] for w in workflows}
    versions = (await sandbox.client.get(f"/api/workflow/{animate['workflow_id']}/versions", headers=AUTH)).json()
    version = versions[0]
    assert version["id"] == animate["workflow_version_id"]
    note = next(n for n in version["workflow"]["nodes"] if n["type"] == "Note")
    assert "animation" in note["widgets_values"][0].lower()
    classes = {node["class_type"] for node in version["workflow_api"].values()}
    assert "ComfyUIDeployExternalText" in classes and "VHS_VideoCombine" in classes
    same = await sandbox.client.get(f"/api/workflow-version/{version['id']}", headers=AUTH)
    assert same.json() == version
    txt2img_workflow = next(d for d in deployments if d["workflow"]["name"] == "txt2img")["workflow_id"]
    numbers = [
        v["version"]
        for v in (await sandbox.client.get(f"/api/workflow/{txt2img_workflow}/versions", headers=AUTH)).json()
    ]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) >= 2
    assert (await sandbox.client.get("/api/workflow/nope", headers=AUTH)).status_code == 404


# --- faults -----------------------------------------------------------------------------------


async def test_submit_error_answers_500_or_429_and_creates_no_run(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), faults={"submit_error": 1.0}) as sandbox:
        body = {"deployment_id": DEPLOYMENT_IDS["txt2img"], "inputs": {"input_text": "x"}}
        responses = [await sandbox.client.post("/api/run/deployment/queue", json=body, headers=AUTH) for _ in range(8)]
    assert {r.status_code for r in responses} <= {500, 429}
    for response in responses:
        if response.status_code == 429:
            assert response.headers["retry-after"] == "1"
        else:
            assert response.json() == {"detail": "Internal Server Error"}
    assert list((tmp_path / "runs").glob("*.json")) == []


async def test_run_fail_fault_fails_the_run_after_it_started_running(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), faults={"run_fail": 1.0}) as sandbox:
        run = await sandbox.finish(await sandbox.queue("txt2img", {"input_text": "doomed", "input_seed": 2}))
    assert run["status"] == "failed"
    assert run["live_status"] == "Error: CUDA out of memory (sandbox fault)"
    assert run["outputs"] == []
    assert sandbox.recorder.statuses(run["id"]) == ["queued", "started", "running", "failed"]


async def test_webhook_drop_sends_nothing_but_the_run_still_succeeds(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), faults={"webhook_drop": 1.0}) as sandbox:
        run = await sandbox.finish(await sandbox.queue("txt2img", {"input_text": "quiet", "input_seed": 2}))
    assert run["status"] == "success"
    assert sandbox.recorder.posts == []


async def test_webhook_duplicate_sends_every_status_twice(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), faults={"webhook_duplicate": 1.0}) as sandbox:
        run = await sandbox.finish(await sandbox.queue("txt2img", {"input_text": "echo", "input_seed": 2}))
    expected = ["queued", "queued", "started", "started", "running", "running", "success", "success"]
    assert sandbox.recorder.statuses(run["id"]) == expected


async def test_webhook_reorder_delivers_a_status_after_the_next_one(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), faults={"webhook_reorder": 1.0}) as sandbox:
        run = await sandbox.finish(await sandbox.queue("txt2img", {"input_text": "shuffle", "input_seed": 2}))
    statuses = sandbox.recorder.statuses(run["id"])
    assert sorted(statuses) == sorted(["queued", "started", "running", "success"])
    assert statuses != ["queued", "started", "running", "success"]
    assert statuses.index("started") < statuses.index("queued")


async def test_webhooks_are_retried_after_a_failed_attempt(tmp_path: Path) -> None:
    recorder = Recorder(failures_left=1)
    async with open_sandbox(tmp_path, recorder) as sandbox:
        run = await sandbox.finish(await sandbox.queue("txt2img", {"input_text": "retry", "input_seed": 2}))
    assert sandbox.recorder.statuses(run["id"]) == ["queued", "started", "running", "success"]


# --- restart ----------------------------------------------------------------------------------


async def test_a_new_server_on_the_same_data_dir_resumes_unfinished_runs(tmp_path: Path) -> None:
    recorder = Recorder()
    async with open_sandbox(tmp_path, recorder, run_seconds=0.8) as first:
        run_id = await first.queue("txt2img", {"input_text": "survive a restart", "input_seed": 4})
        await first.wait_for(run_id, {"running"})
    # A live run's file is written once, when it is made: where the run is follows from the clock.
    on_disk = json.loads((tmp_path / "runs" / f"{run_id}.json").read_text())
    assert on_disk["status"] == "not-started" and on_disk["run_seconds"] == 0.8

    async with open_sandbox(tmp_path, recorder, run_seconds=5.0) as second:
        run = await second.finish(run_id)
        next_run = await second.queue("txt2img", {"input_text": "after", "input_seed": 4}, webhook=None)
        number = (await second.run(next_run))["number"]
    assert run["status"] == "success"
    assert run["outputs"][0]["data"]["images"][0]["url"].startswith(f"{BASE_URL}/files/outputs/{run_id}/")
    # The resumed run says where it is once (running), not the statuses it already sent, then ends.
    assert recorder.statuses(run_id) == ["queued", "started", "running", "running", "success"]
    assert number == run["number"] + 1


async def test_mounted_under_a_prefix_it_serves_its_files_and_openapi(tmp_path: Path) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Recorder().app())) as hooks_client:
        config = SandboxConfig(
            public_base_url="http://noema/sandbox", data_dir=tmp_path, run_seconds=RUN_SECONDS, api_key=API_KEY
        )
        server = SandboxServer(config, http_client=hooks_client)
        parent = FastAPI()
        parent.mount("/sandbox", server.app)
        await server.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=parent), base_url="http://noema") as client:
                openapi = await client.get("/sandbox/openapi.json")
                green = "data:image/png;base64," + base64.b64encode(png_bytes((300, 200), (20, 200, 40))).decode()
                body = {"deployment_id": DEPLOYMENT_IDS["upscale"], "inputs": {"input_image": green}}
                queued = await client.post("/sandbox/api/run/deployment/queue", json=body, headers=AUTH)
                await asyncio.sleep(RUN_SECONDS + 0.2)
                run = (await client.get(f"/sandbox/api/run/{queued.json()['run_id']}", headers=AUTH)).json()
                url = run["outputs"][0]["data"]["images"][0]["url"]
                picture = await client.get(url)
        finally:
            await server.stop()
    assert "/api/run/deployment/queue" in openapi.json()["paths"]
    assert url.startswith("http://noema/sandbox/files/outputs/")
    with Image.open(io.BytesIO(picture.content)) as upscaled:
        assert upscaled.size == (600, 400)


async def test_standalone_app_starts_and_stops_with_its_lifespan(tmp_path: Path) -> None:
    app = create_standalone_app(
        SandboxConfig(public_base_url="http://127.0.0.1:9100", data_dir=tmp_path, api_key=API_KEY)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9100") as client:
            response = await client.get("/api/machines", headers=AUTH)
    assert response.status_code == 200


# --- configuration ----------------------------------------------------------------------------


def test_parse_faults_reads_a_comma_separated_list() -> None:
    assert parse_faults("") == {}
    assert parse_faults(" webhook_drop=0.2, run_fail=1 ,") == {"webhook_drop": 0.2, "run_fail": 1.0}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("webhook_lose=0.1", "webhook_lose"),
        ("run_fail=often", "often"),
        ("run_fail=1.5", "run_fail"),
        ("submit_error=-0.1", "submit_error"),
        ("run_fail", "run_fail"),
        ("run_fail=nan", "run_fail"),
    ],
)
def test_parse_faults_names_the_bad_item(raw: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_faults(raw)


def test_config_refuses_relative_urls_and_bad_fault_probabilities(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="public_base_url"):
        SandboxConfig(public_base_url="/sandbox", data_dir=tmp_path)
    with pytest.raises(ValueError, match="run_fail"):
        SandboxConfig(public_base_url=BASE_URL, data_dir=tmp_path, faults={"run_fail": 2.0})


# --- memory ------------------------------------------------------------------------------------


async def test_a_finished_run_leaves_memory_and_is_still_read_from_its_file(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder()) as sandbox:
        ids = [await sandbox.queue("txt2img", {"input_text": f"fox {i}"}, webhook=None) for i in range(3)]
        assert sandbox.server.store.in_memory() == 3
        finished = [await sandbox.finish(run_id) for run_id in ids]
        # A finished run leaves memory once its file is written, off the event loop, a moment after its
        # status reads success (a loaded CI machine saw one still in memory right after the last finish).
        await _until(lambda: sandbox.server.store.in_memory() == 0)
        assert sandbox.server.store.in_memory() == 0, "finished runs must not stay in memory"
        again = await sandbox.run(ids[0])
        assert again["status"] == "success" and again["outputs"] == finished[0]["outputs"]
        for bad in ("../runs", "not-a-run", ids[0].upper()):
            response = await sandbox.client.get(f"/api/run/{bad}", headers=AUTH)
            assert response.status_code == 404, bad
    async with open_sandbox(tmp_path, Recorder()) as reopened:
        assert reopened.server.store.in_memory() == 0
        assert (await reopened.run(ids[2]))["status"] == "success"
        later = await reopened.queue("txt2img", {"input_text": "after a restart"}, webhook=None)
        assert (await reopened.run(later))["number"] == max(r["number"] for r in finished) + 1


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_live_runs_wait_on_timers_not_tasks_and_idle_webhook_channels_are_dropped(tmp_path: Path) -> None:
    async with open_sandbox(tmp_path, Recorder(), run_seconds=60.0) as sandbox:
        tasks_before = len(asyncio.all_tasks())
        ids = [await sandbox.queue("txt2img", {"input_text": f"long {i}"}) for i in range(50)]
        assert sandbox.server.engine.scheduled() == 50
        assert len(asyncio.all_tasks()) - tasks_before < 50, "a live run must not own a task"
        # Each run's first status (queued, at 5% of 60 s) is posted; then its delivery state is let go.
        await _until(lambda: all(sandbox.recorder.statuses(run_id) == ["queued"] for run_id in ids))
        await sandbox.server.webhooks.wait_idle()
        assert sandbox.server.webhooks.pending_runs() == 0
        assert sandbox.server.store.in_memory() == 50
        cancelled = [
            (await sandbox.client.post(f"/api/run/{run_id}/cancel", headers=AUTH)).status_code for run_id in ids
        ]
        assert cancelled == [200] * 50
        assert sandbox.server.engine.scheduled() == 0
        await sandbox.server.webhooks.wait_idle()
        assert all(sandbox.recorder.statuses(run_id) == ["queued", "cancelled"] for run_id in ids)
        # The cancelled runs' files are written off the event loop, then the runs leave memory.
        await _until(lambda: sandbox.server.store.in_memory() == 0)
    for run_id in ids:
        assert json.loads((tmp_path / "runs" / f"{run_id}.json").read_text())["status"] == "cancelled"
