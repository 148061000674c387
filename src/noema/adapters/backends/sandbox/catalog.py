"""The sandbox's fixed catalog: machines, workflows, workflow versions and deployments.

The definitions live in ``catalog_data``; this module holds their types, the lookups, and the
JSON views in the exact shapes ComfyDeploy's V2 API returns (reference §A.10, §A.12).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from noema.adapters.backends.sandbox import graphs

#: ComfyDeploy owner fields; the sandbox has one pretend user and no organisation.
SANDBOX_USER_ID = "user_sandbox"
CATALOG_CREATED_AT = "2025-01-01T00:00:00.000Z"
#: The class type of serverless machines in ComfyDeploy.
MACHINE_TYPE = "comfy-deploy-serverless"


class RenderKind(StrEnum):
    """What the sandbox renders for a deployment."""

    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    ANIMATE = "animate"
    UPSCALE = "upscale"
    CAPTION = "caption"


class InputTypesShape(StrEnum):
    """How a deployment presents ``input_types``, so clients meet every shape the real API has."""

    LISTED = "listed"
    NULL = "null"
    ABSENT = "absent"


@dataclass(frozen=True)
class Machine:
    id: str
    name: str
    gpu: str


@dataclass(frozen=True)
class InputDef:
    """One ``ComfyUIDeployExternal*`` input node of a workflow."""

    node_id: str
    input_id: str
    class_type: str
    display_name: str
    description: str
    #: ``graphs.NO_DEFAULT`` makes the input required
    default: Any = graphs.NO_DEFAULT
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None
    options: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        """An input is required when it has no default."""
        return self.default is graphs.NO_DEFAULT


@dataclass(frozen=True)
class NodeDef:
    """A processing node of a workflow in ComfyUI's API format."""

    node_id: str
    class_type: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class OutputDef:
    """The output node of a workflow and the key its files appear under in ``outputs[].data``."""

    node_id: str
    class_type: str
    output_id: str | None
    data_key: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Deployment:
    """A deployed workflow: its ids, machine, graph and what the sandbox renders for it."""

    name: str
    id: str
    workflow_id: str
    #: oldest first; the deployment runs the last one
    version_ids: tuple[str, ...]
    machine: Machine
    kind: RenderKind
    note: str
    inputs: tuple[InputDef, ...]
    nodes: tuple[NodeDef, ...]
    output: OutputDef
    input_types_shape: InputTypesShape = InputTypesShape.LISTED

    @property
    def workflow_version_id(self) -> str:
        """The version this deployment runs."""
        return self.version_ids[-1]

    def input(self, input_id: str) -> InputDef | None:
        """The input with this id, if the workflow has one."""
        return next((spec for spec in self.inputs if spec.input_id == input_id), None)

    def api_graph(self) -> dict[str, Any]:
        """The workflow in ComfyUI's API format."""
        nodes = [(spec.node_id, spec.class_type, graphs.input_node_inputs(spec)) for spec in self.inputs]
        nodes += [(node.node_id, node.class_type, node.inputs) for node in self.nodes]
        nodes.append((self.output.node_id, self.output.class_type, self.output.inputs))
        return graphs.api_graph(nodes)

    def execution_order(self) -> list[str]:
        """The class types in the order a ComfyUI run executes them (for live status)."""
        return [node["class_type"] for node in self.api_graph().values()]


class Catalog:
    """Lookups over a fixed set of machines and deployments."""

    def __init__(self, machines: tuple[Machine, ...], deployments: tuple[Deployment, ...]) -> None:
        self.machines = machines
        self.deployments = deployments
        self._by_id = {deployment.id: deployment for deployment in deployments}

    def deployment(self, deployment_id: str) -> Deployment | None:
        """The deployment with this id."""
        return self._by_id.get(deployment_id)

    def deployment_by_name(self, name: str) -> Deployment:
        """The deployment whose workflow has this name; KeyError otherwise."""
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        raise KeyError(name)

    def workflow(self, workflow_id: str) -> Deployment | None:
        """The deployment of this workflow (each sandbox workflow is deployed exactly once)."""
        return next((d for d in self.deployments if d.workflow_id == workflow_id), None)

    def version(self, version_id: str) -> tuple[Deployment, int] | None:
        """The deployment and the 1-based version number of a workflow version id."""
        for deployment in self.deployments:
            if version_id in deployment.version_ids:
                return deployment, deployment.version_ids.index(version_id) + 1
        return None


#: Fields of the real ``MachineModel`` that the server always sends and a sandbox machine has no value for.
_UNUSED_MACHINE_FIELDS = (
    "build_log",
    "auth_token",
    "snapshot",
    "models",
    "ws_gpu",
    "pod_id",
    "build_machine_instance_id",
    "modal_app_id",
    "target_workflow_id",
    "dependencies",
    "object_info",
    "object_info_str",
    "filename_list_cache",
    "extensions",
    "import_failed_logs",
    "machine_version_id",
)


def machine_json(machine: Machine) -> dict[str, Any]:
    """A ``MachineModel`` as ``GET /api/machines`` returns it."""
    return {
        "id": machine.id,
        "name": machine.name,
        "user_id": SANDBOX_USER_ID,
        "org_id": None,
        "type": MACHINE_TYPE,
        "gpu": machine.gpu,
        "status": "ready",
        "endpoint": "not-used",
        "disabled": False,
        "machine_version": None,
        "created_at": CATALOG_CREATED_AT,
        "updated_at": CATALOG_CREATED_AT,
        **dict.fromkeys(_UNUSED_MACHINE_FIELDS),
    }


def workflow_json(deployment: Deployment) -> dict[str, Any]:
    """A workflow object as ``GET /api/workflow/{id}`` returns it."""
    return {
        "id": deployment.workflow_id,
        "name": deployment.name,
        "user_id": SANDBOX_USER_ID,
        "org_id": None,
        "selected_machine_id": deployment.machine.id,
        "description": None,
        "pinned": False,
        "deleted": False,
        "created_at": CATALOG_CREATED_AT,
        "updated_at": CATALOG_CREATED_AT,
    }


def version_json(deployment: Deployment, version: int) -> dict[str, Any]:
    """A workflow version with its UI graph (Note node included) and its API graph."""
    api = deployment.api_graph()
    created_at = f"2025-01-{version:02d}T00:00:00.000Z"
    return {
        "id": deployment.version_ids[version - 1],
        "workflow_id": deployment.workflow_id,
        "version": version,
        "comment": None,
        "workflow": graphs.ui_graph(api, note=deployment.note),
        "workflow_api": api,
        "user_id": SANDBOX_USER_ID,
        "snapshot": {"comfyui": "sandbox", "git_custom_nodes": {}},
        "dependencies": None,
        "created_at": created_at,
        "updated_at": created_at,
    }


def versions_json(deployment: Deployment) -> list[dict[str, Any]]:
    """Every version of a workflow, newest first."""
    return [version_json(deployment, n) for n in range(len(deployment.version_ids), 0, -1)]


def deployment_json(deployment: Deployment) -> dict[str, Any]:
    """A ``DeploymentModel`` as ``GET /api/deployments`` returns it."""
    body: dict[str, Any] = {
        "id": deployment.id,
        "user_id": SANDBOX_USER_ID,
        "org_id": None,
        "workflow_version_id": deployment.workflow_version_id,
        "workflow_id": deployment.workflow_id,
        "machine_id": deployment.machine.id,
        "share_slug": None,
        "description": None,
        "share_options": None,
        "showcase_media": None,
        "environment": "production",
        "created_at": CATALOG_CREATED_AT,
        "updated_at": CATALOG_CREATED_AT,
        "workflow": {"id": deployment.workflow_id, "name": deployment.name},
        # Only ComfyDeploy's own output nodes carry an output_id; the published model requires one.
        "output_types": [{"class_type": output.class_type, "output_id": output.output_id}]
        if (output := deployment.output).output_id is not None
        else [],
    }
    listed = graphs.input_types(deployment.api_graph())
    if deployment.input_types_shape is InputTypesShape.LISTED and listed:  # upstream sends no empty list
        body["input_types"] = listed
    elif deployment.input_types_shape is InputTypesShape.NULL:
        body["input_types"] = None
    return body
