"""Changing what the embedded sandbox deploys, as an operator changes ComfyDeploy: add copies, take one away."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from noema.adapters.backends.sandbox import SandboxServer
from noema.adapters.backends.sandbox.catalog import Catalog, Deployment


def copy_of(sandbox: SandboxServer, name: str, *, as_name: str, **changes: Any) -> Deployment:
    """A new deployment like ``name`` (its own ids), with ``changes`` (machine, inputs …)."""
    base = sandbox.catalog.deployment_by_name(name)
    salt = uuid.uuid5(uuid.NAMESPACE_URL, as_name)
    return dataclasses.replace(
        base,
        name=as_name,
        id=str(uuid.uuid5(salt, "deployment")),
        workflow_id=str(uuid.uuid5(salt, "workflow")),
        version_ids=(str(uuid.uuid5(salt, "version")),),
        **changes,
    )


def _swap(sandbox: SandboxServer, catalog: Catalog) -> None:
    sandbox.catalog = catalog
    sandbox.app.state.sandbox = dataclasses.replace(sandbox.app.state.sandbox, catalog=catalog)
    sandbox.engine._catalog = catalog  # the engine renders runs of the new deployments too


def publish(sandbox: SandboxServer, *deployments: Deployment) -> None:
    """The sandbox lists and runs these deployments too."""
    _swap(sandbox, Catalog(sandbox.catalog.machines, sandbox.catalog.deployments + deployments))


def withdraw(sandbox: SandboxServer, deployment_id: str) -> None:
    """The sandbox forgets a deployment: queueing a run on it answers 404 (a tool cached by Noema still names it)."""
    kept = tuple(d for d in sandbox.catalog.deployments if d.id != deployment_id)
    _swap(sandbox, Catalog(sandbox.catalog.machines, kept))
