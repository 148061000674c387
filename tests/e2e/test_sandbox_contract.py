"""The ComfyDeploy adapter against the standalone sandbox (``noema sandbox``) over real HTTP.

The sandbox stands in for ComfyDeploy's cloud: the same client, the same wire format, webhooks over
the network. If Noema works against it with ``NOEMA_BACKEND=comfydeploy``, the only difference left
from production is the base URL and the key.
"""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from noema.adapters.backends.comfydeploy import ComfyDeployBackend
from noema.adapters.backends.sandbox import DEPLOYMENT_IDS
from noema.domain.errors import BackendRejected
from noema.domain.runs import OutputKind, RunStatus, RunUpdate
from tests.fakes.processes import (
    SANDBOX_KEY,
    NoemaProcess,
    free_port,
    funded_api_account,
    noema_env,
    start_sandbox,
    start_serve,
)

ADMIN_KEY = "contract-admin-key-0123456789"
ADMIN = {"X-Internal-Client-Key": ADMIN_KEY}
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def _png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _nanos(usd: str) -> int:
    whole, _, fraction = usd.partition(".")
    return int(whole) * 1_000_000_000 + int(fraction.ljust(9, "0"))


async def _run_until_terminal(backend: ComfyDeployBackend, run_id: str, sandbox: NoemaProcess) -> RunUpdate:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    seen = []
    while True:
        update = await backend.get_run(run_id)
        seen.append(update.status)
        if update.status is not None and update.status.is_terminal:
            return update
        assert loop.time() < deadline, f"run {run_id} not finished: {seen[-5:]}\n{sandbox.tail()}"
        await asyncio.sleep(0.05)


async def test_the_comfydeploy_client_speaks_to_the_standalone_sandbox_over_real_http(tmp_path: Path) -> None:
    port = free_port()
    sandbox = await start_sandbox(tmp_path / "sandbox-data", cwd=tmp_path, port=port, run_seconds=0.5)
    try:
        async with httpx.AsyncClient() as client:
            backend = ComfyDeployBackend(client=client, base_url=f"http://127.0.0.1:{port}/api", api_key=SANDBOX_KEY)

            # The catalog: deployments on machines with GPUs, workflows and their versions.
            deployments = {d.name: d for d in await backend.list_deployments()}
            assert {"txt2img", "img2img", "animate", "upscale", "caption", "flux-pro"} <= set(deployments)
            txt2img = deployments["txt2img"]
            assert txt2img.id == DEPLOYMENT_IDS["txt2img"] and txt2img.environment == "production"
            assert txt2img.input_types is not None
            assert "input_text" in {i.input_id for i in txt2img.input_types}
            assert txt2img.output_types == ("ComfyDeployOutputImage",)
            machines = {m.id: m for m in await backend.list_machines()}
            assert machines[txt2img.machine_id or ""].gpu == "A10G"
            assert {"A10G", "L4", "T4", "CPU", "H200"} <= {m.gpu for m in machines.values()}
            workflows = {w.name: w for w in await backend.list_workflows()}
            assert workflows["txt2img"].id == txt2img.workflow_id
            versions = await backend.list_workflow_versions(workflows["txt2img"].id)
            assert txt2img.workflow_version_id in {v.id for v in versions}
            assert all(v.workflow_id == txt2img.workflow_id and v.workflow_api for v in versions)

            # A run without a webhook, followed by polling alone, to success with a real PNG.
            run_id = await backend.queue_run(
                deployment_id=txt2img.id, inputs={"input_text": "a contract", "input_seed": 7}, webhook_url=None
            )
            run = await _run_until_terminal(backend, run_id, sandbox)
            assert (run.run_id, run.status, run.error, run.gpu) == (run_id, RunStatus.SUCCESS, None, "A10G")
            assert run.progress == 1.0
            assert len(run.outputs) == 1 and run.outputs[0].kind is OutputKind.IMAGE, run.outputs
            image = run.outputs[0]
            assert image.mime_type == "image/png" and image.url is not None
            assert image.url.startswith(f"http://127.0.0.1:{port}/files/")
            downloaded = await client.get(image.url)
            assert downloaded.status_code == 200, downloaded.text
            assert Image.open(io.BytesIO(downloaded.content)).format == "PNG"

            # Cancelling a finished run is harmless and changes nothing.
            await backend.cancel_run(run_id)
            assert (await backend.get_run(run_id)).status is RunStatus.SUCCESS

            # An upload comes back as a URL serving the very same bytes.
            content = _png((200, 30, 90))
            uploaded = await backend.upload_file(filename="dot.png", content=content, content_type="image/png")
            assert uploaded.file_id and uploaded.url.startswith(f"http://127.0.0.1:{port}/")
            fetched = await client.get(uploaded.url)
            assert fetched.status_code == 200 and fetched.content == content

            # A run the server does not know is a rejection with its 404, not a retry or a crash.
            with pytest.raises(BackendRejected) as unknown:
                await backend.get_run("00000000-0000-4000-8000-000000000000")
            assert unknown.value.status == 404
        assert sandbox.alive(), sandbox.tail()
        assert SANDBOX_KEY not in sandbox.tail(100_000)  # a configured key is never printed or logged
    finally:
        sandbox.stop()


async def test_noema_sandbox_without_a_key_prints_a_random_one_and_answers_only_to_it(tmp_path: Path) -> None:
    port = free_port()
    sandbox = await start_sandbox(tmp_path / "sandbox-data", cwd=tmp_path, port=port, run_seconds=0.5, api_key=None)
    try:
        printed = re.search(r"Sandbox API key for this start: (\S+)", sandbox.stdout_path.read_text())
        assert printed is not None, sandbox.tail()
        key = printed.group(1)
        assert len(key) >= 32 and "NOEMA_COMFYDEPLOY_API_KEY" in sandbox.stdout_path.read_text()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for token in ("anything", "sandbox", SANDBOX_KEY):
                refused = await client.get("/api/machines", headers={"Authorization": f"Bearer {token}"})
                assert refused.status_code == 401, token
            assert (await client.get("/api/machines", headers={"Authorization": f"Bearer {key}"})).status_code == 200
            home = (await client.get("/")).text
            assert "any bearer token" not in home and "noema sandbox" in home
        assert key not in sandbox.stderr_path.read_text()  # printed for the operator, never logged
    finally:
        sandbox.stop()


def _noema_settings(db_url: str, port: int, sandbox_port: int, **extra: str) -> dict[str, str]:
    return noema_env(
        {
            "NOEMA_DATABASE_URL": db_url,
            "NOEMA_HOST": "127.0.0.1",
            "NOEMA_PORT": str(port),
            "NOEMA_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NOEMA_INTERNAL_API_KEYS": f"admin:{ADMIN_KEY}",
            "NOEMA_BACKEND": "comfydeploy",
            "NOEMA_COMFYDEPLOY_BASE_URL": f"http://127.0.0.1:{sandbox_port}/api",
            "NOEMA_COMFYDEPLOY_API_KEY": SANDBOX_KEY,
            "NOEMA_LOG_FORMAT": "json",
            **extra,
        }
    )


async def _generate(
    client: httpx.AsyncClient, auth: dict[str, str], prompt: str, processes: list[NoemaProcess], seconds: float = 30
) -> dict[str, Any]:
    """Ask for a txt2img through the public API and wait (at most ``seconds``) until it ends."""
    tails = "\n".join(p.tail() for p in processes)
    r = await client.post(
        "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": prompt}}
    )
    assert r.status_code == 202, f"{r.text}\n{tails}"
    gid = r.json()["id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        body: dict[str, Any] = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()
        if body["status"] in TERMINAL:
            return body
        if loop.time() > deadline:
            tails = "\n".join(p.tail() for p in processes)
            raise AssertionError(f"generation {gid} still {body['status']} after {seconds} s\n{tails}")
        await asyncio.sleep(0.1)


async def _wallet(client: httpx.AsyncClient, aid: str) -> dict[str, Any]:
    response = await client.get(f"/internal/v1/data/users/{aid}/economy", headers=ADMIN)
    assert response.status_code == 200, response.text
    wallet: dict[str, Any] = response.json()
    return wallet


async def _sandbox_run(sandbox_port: int, run_id: str) -> dict[str, Any]:
    """The run as the sandbox itself keeps it."""
    async with httpx.AsyncClient(timeout=10) as sandbox:
        response = await sandbox.get(
            f"http://127.0.0.1:{sandbox_port}/api/run/{run_id}", headers={"Authorization": f"Bearer {SANDBOX_KEY}"}
        )
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


async def _webhooks_applied(client: httpx.AsyncClient) -> float:
    metrics = (await client.get("/metrics")).text
    found = re.search(r"^noema_webhook_apply_seconds_count (\S+)$", metrics, re.MULTILINE)
    assert found is not None, metrics[:2000]
    return float(found.group(1))


async def _check_paid_success(
    client: httpx.AsyncClient, aid: str, body: dict[str, Any], before: dict[str, Any]
) -> None:
    assert body["status"] == "succeeded", body
    cost = _nanos(body["costUsd"])
    assert cost > 0 and body["durationSeconds"] > 0, body
    assert body["outputs"] and body["outputs"][0]["kind"] == "image", body
    after = await _wallet(client, aid)
    assert _nanos(after["usdCredit"]) == _nanos(before["usdCredit"]) - cost, (before, after, body["costUsd"])
    assert after["heldUsd"] == "0.000000000", after


async def test_noema_with_the_comfydeploy_backend_runs_against_the_standalone_sandbox_like_the_cloud(
    db_url: str, tmp_path: Path
) -> None:
    sandbox_port, port = free_port(), free_port()
    processes: list[NoemaProcess] = []
    try:
        sandbox = await start_sandbox(
            tmp_path / "sandbox-data",
            cwd=tmp_path,
            port=sandbox_port,
            run_seconds=0.5,
            webhook_base=f"http://127.0.0.1:{port}",
        )
        processes.append(sandbox)
        env = _noema_settings(db_url, port, sandbox_port)
        noema = await start_serve(env, cwd=tmp_path, name="serve-webhooks", port=port)
        processes.append(noema)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            aid, auth = await funded_api_account(client, admin=ADMIN, env=env, cwd=tmp_path, platform_id="contract-1")
            tools = {t["command"]: t for t in (await client.get("/api/v1/tools", headers=auth)).json()}
            assert tools["txt2img"]["enabled"] and tools["txt2img"]["gpu"] == "A10G", tools.get("txt2img")
            assert tools["txt2img"]["backend"] == "ComfyDeploy", tools["txt2img"]

            # With webhooks: the sandbox posts them to NOEMA_PUBLIC_URL over the network. Polling is
            # 60 s away (the default quiet time), so ending within the wait means the webhooks arrived.
            before = await _wallet(client, aid)
            body = await _generate(client, auth, "over webhooks", processes)
            await _check_paid_success(client, aid, body, before)
            assert await _webhooks_applied(client) > 0
            image = await client.get(body["outputs"][0]["url"])
            assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).format == "PNG"
            run = await _sandbox_run(sandbox_port, body["runId"])
            # The run read never shows the webhook URL (it carries the generation's token).
            assert run["status"] == "success" and "webhook" not in run, run
        noema.stop()

        # Without webhooks (the backend cannot reach Noema): the same run followed by polling alone.
        # (The test below proves the default quiet time polls at once without webhooks.)
        env = _noema_settings(
            db_url,
            port,
            sandbox_port,
            NOEMA_COMFYDEPLOY_WEBHOOKS="false",
            NOEMA_POLL_SECONDS="1",
            NOEMA_QUIET_SECONDS="1",
        )
        noema = await start_serve(env, cwd=tmp_path, name="serve-polling", port=port)
        processes.append(noema)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            before = await _wallet(client, aid)
            body = await _generate(client, auth, "by polling", processes)
            await _check_paid_success(client, aid, body, before)
            assert await _webhooks_applied(client) == 0
            run = await _sandbox_run(sandbox_port, body["runId"])
            assert run["status"] == "success" and "webhook" not in run, run
    finally:
        for process in processes:
            process.kill()


async def test_without_webhooks_a_run_is_followed_by_polling_at_once_with_the_default_quiet_time(
    tmp_path: Path,
) -> None:
    sandbox_port, port = free_port(), free_port()
    processes: list[NoemaProcess] = []
    try:
        processes.append(
            await start_sandbox(tmp_path / "sandbox-data", cwd=tmp_path, port=sandbox_port, run_seconds=0.5)
        )
        # README: "false when the backend cannot reach NOEMA_PUBLIC_URL: runs are then followed by polling".
        # The workers poll such runs every 2 s at most, so a 0.5 s run must end well within 10 s.
        db = f"sqlite+aiosqlite:///{tmp_path / 'noema.db'}"
        env = _noema_settings(db, port, sandbox_port, NOEMA_COMFYDEPLOY_WEBHOOKS="false")
        processes.append(await start_serve(env, cwd=tmp_path, name="serve-polling", port=port))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            aid, auth = await funded_api_account(client, admin=ADMIN, env=env, cwd=tmp_path, platform_id="poll-1")
            before = await _wallet(client, aid)
            body = await _generate(client, auth, "polled at once", processes, seconds=10)
            await _check_paid_success(client, aid, body, before)
    finally:
        for process in processes:
            process.kill()
