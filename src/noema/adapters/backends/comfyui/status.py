"""What ``noema backends`` shows of each ComfyUI server: up or down and why, GPU, queue, Noema's share, tools.

Noema's prompts are told apart by their ``client_id``: every Noema process sends ``noema-…``, so a
one-shot command sees the runs that a serving process put on the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from noema.adapters.backends.comfyui.pool import Server
from noema.domain.comfyui_workflows import WorkflowTool, server_can_run, summary_from_object_info
from noema.domain.errors import ExternalServiceError

CLIENT_PREFIX = "noema-"  #: the start of every ``client_id`` Noema sends


@dataclass(frozen=True)
class ServerStatus:
    """One server as the operator sees it."""

    url: str
    gpu: str | None  #: the configured GPU (it names the price)
    up: bool
    reason: str  #: "up", or why it is down
    devices: tuple[str, ...] = ()  #: what the server itself reports
    running: int = 0
    pending: int = 0
    noema: int = 0  #: prompts queued or running there that Noema sent
    tools: tuple[tuple[str, str | None], ...] = ()  #: each workflow and why the server cannot run it (None: it can)


async def server_status(server: Server, workflows: Mapping[str, WorkflowTool]) -> ServerStatus:
    """Ask the server now: ``/system_stats``, ``/queue`` and ``/object_info``; a failure is the reason it is down."""
    try:
        stats = await server.client.system_stats()
        queue = await server.client.queue()
        summary = summary_from_object_info(await server.client.object_info_raw())
    except ExternalServiceError as exc:
        return ServerStatus(server.url, server.gpu, up=False, reason=exc.message[:200])
    tools = tuple((name, server_can_run(tool, summary)) for name, tool in sorted(workflows.items()))
    return ServerStatus(
        server.url,
        server.gpu,
        up=True,
        reason="up",
        devices=stats.devices,
        running=len(queue.running),
        pending=len(queue.pending),
        noema=sum(1 for c in queue.client_ids if c.startswith(CLIENT_PREFIX)),
        tools=tools,
    )
