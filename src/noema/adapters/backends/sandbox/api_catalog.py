"""``/api`` routes for deployments, machines, workflows and workflow versions (reference §A.2, §A.12)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from noema.adapters.backends.sandbox.catalog import (
    deployment_json,
    machine_json,
    version_json,
    versions_json,
    workflow_json,
)
from noema.adapters.backends.sandbox.state import State

PageSize = Annotated[int | None, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]

router = APIRouter(tags=["catalog"])


def _page(items: list[dict[str, Any]], *, offset: int, limit: int | None) -> list[dict[str, Any]]:
    return items[offset : None if limit is None else offset + limit]


def _matches(search: str | None, name: str) -> bool:
    return not search or search.lower() in name.lower()


@router.get("/deployments")
async def list_deployments(
    state: State,
    environment: str | None = None,
    is_fluid: bool | None = None,
    page_size: PageSize = None,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Every deployment (all of them live in the ``production`` environment)."""
    if environment not in (None, "production"):
        return []
    items = [deployment_json(deployment) for deployment in state.catalog.deployments]
    return _page(items, offset=offset, limit=page_size)


@router.get("/deployment/{deployment_id}")
async def get_deployment(deployment_id: str, state: State) -> dict[str, Any]:
    """One deployment."""
    deployment = state.catalog.deployment(deployment_id)
    if deployment is None:
        raise HTTPException(404, "Deployment not found")
    return deployment_json(deployment)


@router.get("/machines")
async def list_machines(
    state: State, search: str | None = None, limit: PageSize = 100, offset: Offset = 0
) -> list[dict[str, Any]]:
    """Every machine with its GPU."""
    items = [machine_json(m) for m in state.catalog.machines if _matches(search, m.name)]
    return _page(items, offset=offset, limit=limit)


@router.get("/machine/{machine_id}")
async def get_machine(machine_id: str, state: State) -> dict[str, Any]:
    """One machine."""
    machine = next((m for m in state.catalog.machines if m.id == machine_id), None)
    if machine is None:
        raise HTTPException(404, "Machine not found")
    return machine_json(machine)


@router.get("/workflows")
async def list_workflows(
    state: State, search: str | None = None, limit: PageSize = None, offset: Offset = 0
) -> list[dict[str, Any]]:
    """Every workflow."""
    items = [workflow_json(d) for d in state.catalog.deployments if _matches(search, d.name)]
    return _page(items, offset=offset, limit=limit)


@router.get("/workflow/{workflow_id}")
async def get_workflow(workflow_id: str, state: State) -> dict[str, Any]:
    """One workflow."""
    deployment = state.catalog.workflow(workflow_id)
    if deployment is None:
        raise HTTPException(404, "Workflow not found")
    return workflow_json(deployment)


@router.get("/workflow/{workflow_id}/versions")
async def list_workflow_versions(
    workflow_id: str, state: State, limit: PageSize = None, offset: Offset = 0
) -> list[dict[str, Any]]:
    """The versions of a workflow, newest first, with their UI and API graphs."""
    deployment = state.catalog.workflow(workflow_id)
    if deployment is None:
        raise HTTPException(404, "Workflow not found")
    return _page(versions_json(deployment), offset=offset, limit=limit)


@router.get("/workflow-version/{version_id}")
async def get_workflow_version(version_id: str, state: State) -> dict[str, Any]:
    """One workflow version."""
    found = state.catalog.version(version_id)
    if found is None:
        raise HTTPException(404, "Workflow version not found")
    deployment, number = found
    return version_json(deployment, number)
