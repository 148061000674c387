"""Every object the sandbox sends validates against ComfyDeploy's published response models.

The models (``tests/integration/comfydeploy_models.py``) follow the reference, not the sandbox: if the
sandbox drifts from the real API (a ``"type": null`` input, a missing key, a wrong status), this fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from noema.bootstrap import Container
from noema.domain.tools import InputType
from tests.integration.comfydeploy_models import (
    CancelResponse,
    CreateRunResponse,
    DeploymentModel,
    ErrorDetail,
    FileUploadResponse,
    MachineModel,
    WorkflowModel,
    WorkflowRunModel,
    WorkflowRunWebhookBody,
    WorkflowVersionModel,
)
from tests.integration.test_sandbox_server import AUTH, Recorder, Sandbox, open_sandbox, png_bytes, upload


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with open_sandbox(tmp_path, Recorder()) as opened:
        yield opened


async def _get(sandbox: Sandbox, path: str) -> Any:
    response = await sandbox.client.get(f"/api{path}", headers=AUTH)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def _check(model: type[BaseModel], body: Any) -> None:
    model.model_validate(body)


async def test_deployments_machines_workflows_and_versions_match_the_published_models(sandbox: Sandbox) -> None:
    deployments = await _get(sandbox, "/deployments")
    assert len(deployments) >= 6
    for deployment in deployments:
        _check(DeploymentModel, deployment)
        _check(DeploymentModel, await _get(sandbox, f"/deployment/{deployment['id']}"))
        _check(WorkflowModel, await _get(sandbox, f"/workflow/{deployment['workflow_id']}"))
        for version in await _get(sandbox, f"/workflow/{deployment['workflow_id']}/versions"):
            _check(WorkflowVersionModel, version)
        _check(WorkflowVersionModel, await _get(sandbox, f"/workflow-version/{deployment['workflow_version_id']}"))
    for workflow in await _get(sandbox, "/workflows"):
        _check(WorkflowModel, workflow)
    machines = await _get(sandbox, "/machines")
    for machine in machines:
        _check(MachineModel, machine)
        _check(MachineModel, await _get(sandbox, f"/machine/{machine['id']}"))


async def test_input_types_leave_out_classes_comfydeploy_has_no_type_for_like_the_seed(sandbox: Sandbox) -> None:
    deployments = await _get(sandbox, "/deployments")
    listed = [item for d in deployments for item in d.get("input_types") or []]
    assert listed and all(isinstance(item["type"], str) for item in listed)
    txt2img = next(d for d in deployments if d["workflow"]["name"] == "txt2img")
    ids = {item["input_id"] for item in txt2img["input_types"]}
    assert "input_text" in ids and "input_seed" not in ids
    # The seed node is still in the workflow's graph, where a client finds it.
    version = await _get(sandbox, f"/workflow-version/{txt2img['workflow_version_id']}")
    classes = {node["class_type"] for node in version["workflow_api"].values()}
    assert "ComfyUIDeployExternalSeed" in classes


async def test_the_catalog_over_the_sandbox_still_offers_the_seed_it_finds_in_the_workflow(
    container: Container,
) -> None:
    tool = await container.catalog.find("txt2img")
    assert tool.extra["input_source"] == "input_types"
    seed = next(i for i in tool.inputs if i.name == "input_seed")
    assert seed.type is InputType.SEED and not seed.required and seed.default == -1


async def test_runs_webhooks_uploads_cancels_and_errors_match_the_published_models(sandbox: Sandbox) -> None:
    uploaded = await upload(sandbox, png_bytes((64, 48), (10, 120, 200)), "image/png")
    _check(FileUploadResponse, uploaded.json())
    url = uploaded.json()["file_url"]
    runs = [
        await sandbox.queue("txt2img", {"input_text": "a fox", "input_seed": 3}, webhook_intermediate_status=True),
        await sandbox.queue("animate", {"input_text": "balls", "input_seed": 4}),
        await sandbox.queue("caption", {"input_image": url}),
        await sandbox.queue("img2img", {"input_text": "no image"}),  # fails: a required input is missing
    ]
    _check(WorkflowRunModel, await sandbox.run(runs[0]))  # before it ends
    for run_id in runs:
        _check(WorkflowRunModel, await sandbox.finish(run_id))
    assert {(await sandbox.run(r))["status"] for r in runs} == {"success", "failed"}

    slow = await sandbox.queue("txt2img", {"input_text": "stop me"})
    cancelled = await sandbox.client.post(f"/api/run/{slow}/cancel", headers=AUTH)
    _check(CancelResponse, cancelled.json())
    _check(WorkflowRunModel, await sandbox.finish(slow))

    assert sandbox.recorder.posts
    for post in sandbox.recorder.posts:
        _check(WorkflowRunWebhookBody, post)
    refused = await sandbox.client.post("/api/run/deployment/queue", json={"inputs": {}}, headers=AUTH)
    _check(ErrorDetail, refused.json())
    body = {"deployment_id": (await _get(sandbox, "/deployments"))[0]["id"], "inputs": {"input_text": "x"}}
    created = await sandbox.client.post("/api/run/deployment/queue", json=body, headers=AUTH)
    _check(CreateRunResponse, created.json())
    for missing in ("/run/6a1b4c1e-0000-4000-8000-000000000000", "/deployment/nope", "/machine/nope"):
        _check(ErrorDetail, (await sandbox.client.get(f"/api{missing}", headers=AUTH)).json())
