"""The self-hosted ComfyUI backend: the ``Backend`` port over a pool of the operator's ComfyUI servers.

Each workflow file is a deployment (its id is the file name); each server is a machine with its GPU.
A tool is priced at the dearest server able to run it (holds cover any of them), each run is
charged at the rate of the server that ran it, and a tool is disabled,
naming the server and what it lacks, when no up server can. ``queue_run`` answers at once: the run
waits in Noema's line until the scheduler submits it. Given a ``line`` (the database), every run not
yet ended is kept there too, and a restarted Noema takes the line up again in the same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from noema.adapters.backends.comfyui.client import ComfyUIClient
from noema.adapters.backends.comfyui.line import Kept, RunLine, restore
from noema.adapters.backends.comfyui.links import LinkFetcher
from noema.adapters.backends.comfyui.pool import Server
from noema.adapters.backends.comfyui.runs import (
    Run,
    generation_of,
    image_inputs,
    input_spec,
    new_run_id,
    waiting_update,
)
from noema.adapters.backends.comfyui.scheduler import OnUpdate, Scheduler
from noema.adapters.backends.comfyui.status import CLIENT_PREFIX, ServerStatus, server_status
from noema.adapters.media_store import MediaStore
from noema.domain.comfyui_workflows import WorkflowTool, build_prompt, load_workflow, server_can_run, with_server_bounds
from noema.domain.errors import BackendRejected, InvalidWorkflow
from noema.domain.pricing import rate_for
from noema.domain.runs import (
    DeploymentInfo,
    MachineInfo,
    RunUpdate,
    UploadedFile,
    WorkflowInfo,
    WorkflowVersionInfo,
)

LABEL = "ComfyUI"


def load_workflows_dir(folder: Path) -> dict[str, WorkflowTool]:
    """Every ``NAME.json`` (with its optional ``NAME.toml``) in ``folder``; InvalidWorkflow names a bad file."""
    if not folder.is_dir():
        raise InvalidWorkflow(str(folder), "is not a folder of workflow files")
    tools: dict[str, WorkflowTool] = {}
    for path in sorted(folder.glob("*.json")):
        sidecar = path.with_suffix(".toml")
        try:
            text = path.read_text(encoding="utf-8")
            toml = sidecar.read_text(encoding="utf-8") if sidecar.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidWorkflow(path.name, f"cannot be read ({type(exc).__name__})") from None
        tools[path.stem] = load_workflow(path.stem, text, toml)
    return tools


class ComfyUIBackend:
    """A pool of ComfyUI servers as one ``Backend``."""

    label = LABEL

    def __init__(
        self,
        *,
        servers: list[tuple[str, str | None]],
        workflows: Mapping[str, WorkflowTool],
        http: httpx.AsyncClient,
        store: MediaStore,
        rates: Mapping[str, int],
        slots: int = 2,
        health_seconds: float = 3.0,
        links: LinkFetcher | None = None,
        line: RunLine | None = None,
    ) -> None:
        client_id = f"{CLIENT_PREFIX}{uuid.uuid4().hex[:12]}"
        pool = [
            Server(url, gpu, ComfyUIClient(url, http=http, client_id=client_id), rate=rate_for(gpu, rates))
            for url, gpu in servers
        ]
        self.workflows = dict(workflows)
        self.store = store
        self.rates = dict(rates)
        self.links = links or LinkFetcher(http, None)
        self.line = line
        self.scheduler = Scheduler(pool, store, slots=slots, health_seconds=health_seconds, kept=Kept(line))

    @property
    def servers(self) -> list[Server]:
        """The pool, in the configured order."""
        return self.scheduler.servers

    async def start(self, on_update: OnUpdate) -> None:
        """Take up the kept line, check every server once, then keep checking, listening and dispatching."""
        if self.line is not None:
            await self._restore(self.line)
        await self._check_unchecked()
        self.scheduler.start(on_update)

    async def close(self) -> None:
        """Stop the background tasks (the kept line outlives them)."""
        await self.scheduler.close()

    async def _restore(self, line: RunLine) -> None:
        scheduler = self.scheduler
        for run in await restore(
            line, workflows=self.workflows, servers=self.servers, store=self.store, links=self.links
        ):
            scheduler.runs[run.id] = run
            if run.server is None:
                scheduler.waiting.append(run.id)
                continue
            run.server.ours.add(run.id)
            scheduler.by_prompt[str(run.prompt_id)] = run

    async def _check_unchecked(self) -> None:
        for server in self.servers:
            if not server.checked:
                await self.scheduler.check(server)

    async def status(self) -> list[ServerStatus]:
        """Each server as it answers now (for ``noema backends``)."""
        return [await server_status(server, self.workflows) for server in self.servers]

    # --- runs --------------------------------------------------------------------------------

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """Put a run in Noema's line and return its id at once (bad inputs are refused here, not later)."""
        tool = self.workflows.get(deployment_id)
        if tool is None:
            raise BackendRejected(f"There is no workflow {deployment_id[:60]!r} on the ComfyUI servers.", status=404)
        values = dict(inputs)
        images = await image_inputs(tool, values, self.store, self.links)
        build_prompt(tool, values, {name: "check.png" for name in images})  # raises InvalidInput on bad values
        run = Run(new_run_id(), tool, values, images, generation_of(webhook_url))
        await self.scheduler.kept.add(run)
        self.scheduler.runs[run.id] = run
        self.scheduler.waiting.append(run.id)
        self.scheduler.wake()
        return run.id

    async def has_room(self, deployment_id: str) -> bool:
        """Whether a run of this workflow would go to a server now (not down, not full, nobody waiting for one)."""
        tool = self.workflows.get(deployment_id)
        return tool is not None and self.scheduler.has_room(tool)

    async def get_run(self, run_id: str) -> RunUpdate:
        """Waiting in Noema, queued or running on a server, or its end from the server's history."""
        run = self.scheduler.runs.get(run_id)
        if run is None:
            raise BackendRejected("The ComfyUI backend does not know this run (Noema restarted).", status=404)
        if run.final is not None:
            return run.final
        if run.id in self.scheduler.waiting:
            return waiting_update(run.id, self.scheduler.ahead_of(run.id))
        return await self.scheduler.observe(run)

    async def cancel_run(self, run_id: str) -> None:
        """Waiting: removed; queued on a server: deleted there; running: interrupted."""
        run = self.scheduler.runs.get(run_id)
        if run is not None:
            await self.scheduler.cancel(run)

    async def upload_file(self, *, filename: str, content: bytes, content_type: str) -> UploadedFile:
        """Keep the file in Noema's media store; it goes to the chosen server when the run is submitted."""
        url = await self.store.save(content, filename)
        return UploadedFile(file_id=url.rsplit("/", 2)[-2], url=url)

    # --- the catalog -------------------------------------------------------------------------

    async def list_deployments(self) -> list[DeploymentInfo]:
        """Each workflow, on the dearest server able to run it, or with the reason none can."""
        await self._check_unchecked()
        return [self._deployment(name, tool) for name, tool in sorted(self.workflows.items())]

    def _deployment(self, name: str, tool: WorkflowTool) -> DeploymentInfo:
        able = [s for s in self.servers if s.up and server_can_run(tool, s.summary) is None]
        problem = None if able else self._why_not(tool)
        chosen = max(able, key=self._price_key) if able else self.servers[0]
        bounded = with_server_bounds(tool, chosen.summary) if able else tool
        return DeploymentInfo(
            id=name,
            name=name,
            workflow_id=name,
            workflow_version_id=name,
            machine_id=chosen.url,
            description=tool.description,
            input_types=tuple(input_spec(spec) for spec in bounded.inputs),
            problem=problem,
            expected_seconds=tool.expected_seconds,
            max_seconds=tool.max_seconds,
        )

    def _price_key(self, server: Server) -> tuple[int, int]:
        # An unpriced server is the dearest: a run may land there, so the tool must not look priced.
        return (1, 0) if server.rate is None else (0, server.rate)

    def _why_not(self, tool: WorkflowTool) -> str:
        reasons = []
        for server in self.servers:
            if not server.up:
                reasons.append(f"{server.label} is down ({server.reason})")
            else:
                reasons.append(f"{server.label} {server_can_run(tool, server.summary)}")
        return "No GPU server can run this workflow: " + "; ".join(reasons)

    async def list_machines(self) -> list[MachineInfo]:
        """Each server, with its GPU."""
        return [MachineInfo(id=s.url, name=s.url, gpu=s.gpu) for s in self.servers]

    async def list_workflows(self) -> list[WorkflowInfo]:
        """Each workflow file."""
        return [WorkflowInfo(id=name, name=name) for name in sorted(self.workflows)]

    async def list_workflow_versions(self, workflow_id: str) -> list[WorkflowVersionInfo]:
        """The one version of a workflow file: its graph (the catalog reads its outputs from it)."""
        tool = self.workflows.get(workflow_id)
        if tool is None:
            return []
        return [WorkflowVersionInfo(id=workflow_id, workflow_id=workflow_id, version=1, workflow_api=dict(tool.graph))]
