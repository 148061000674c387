"""Noema's waiting line kept outside the process: each run not yet ended, so a restart loses none.

The scheduler writes through ``Kept`` (a failed write is logged, never raised: the run goes on in
memory); on start the backend reads the line back with ``restore``, first come first served, and
runs already sent to a server are followed there again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from noema.adapters.backends.comfyui.links import LinkFetcher
from noema.adapters.backends.comfyui.pool import Server
from noema.adapters.backends.comfyui.progress import PromptState
from noema.adapters.backends.comfyui.runs import Run, image_inputs
from noema.adapters.media_store import MediaStore
from noema.domain.comfyui_workflows import WorkflowTool
from noema.domain.errors import NoemaError

logger = logging.getLogger(__name__)


class RunLine(Protocol):
    """Where the runs not yet ended are kept (the database in production)."""

    async def add(self, run_id: str, record: dict[str, Any]) -> None: ...
    async def claim(self, run_id: str, *, server: str, prompt_id: str) -> bool: ...
    async def release(self, run_id: str, *, resubmitted: bool) -> None: ...
    async def remove(self, run_id: str) -> None: ...
    async def load(self) -> list[tuple[str, dict[str, Any]]]: ...


class Kept:
    """The scheduler's writes to the line; without one (or when a write fails) the run lives in memory only."""

    def __init__(self, line: RunLine | None) -> None:
        self.line = line

    async def add(self, run: Run) -> None:
        """A new run at the end of the line."""
        record = {"workflow": run.tool.name, "values": run.values, "generation_id": run.generation_id}
        await self._quietly("add", run, self.line.add(run.id, record) if self.line else None)

    async def claim(self, run: Run, server: Server, prompt_id: str) -> bool:
        """Whether this process may send the run (False: it ended, or another process sent it)."""
        if self.line is None:
            return True
        try:
            return await self.line.claim(run.id, server=server.url, prompt_id=prompt_id)
        except Exception:
            logger.exception("could not claim run %s in the kept line; sending it anyway", run.id)
            return True

    async def release(self, run: Run) -> None:
        """The run is waiting again."""
        await self._quietly(
            "release", run, self.line.release(run.id, resubmitted=run.resubmitted) if self.line else None
        )

    async def remove(self, run: Run) -> None:
        """The run ended."""
        await self._quietly("remove", run, self.line.remove(run.id) if self.line else None)

    async def _quietly(self, what: str, run: Run, write: Any) -> None:
        if write is None:
            return
        try:
            await write
        except Exception:
            logger.exception("could not %s run %s in the kept line", what, run.id)


async def restore(
    line: RunLine,
    *,
    workflows: Mapping[str, WorkflowTool],
    servers: list[Server],
    store: MediaStore,
    links: LinkFetcher,
) -> list[Run]:
    """The kept runs, first come first: waiting ones as they were, sent ones on their server again.

    A run whose workflow file or server is gone, or whose inputs can no longer be read, is dropped
    (the reconciler then ends its generation, charging nothing).
    """
    by_url = {server.url: server for server in servers}
    runs: list[Run] = []
    for run_id, record in await line.load():
        tool = workflows.get(str(record.get("workflow")))
        server = by_url.get(str(record.get("server"))) if record.get("prompt_id") else None
        values = record.get("values")
        if tool is None or not isinstance(values, dict) or (record.get("prompt_id") and server is None):
            await line.remove(run_id)
            continue
        try:
            images = await image_inputs(tool, values, store, links)
        except NoemaError:
            await line.remove(run_id)
            continue
        generation = record.get("generation_id")
        run = Run(run_id, tool, values, images, generation if isinstance(generation, str) else None)
        run.resubmitted = bool(record.get("resubmitted"))
        if server is not None:
            prompt_id = str(record["prompt_id"])
            run.server, run.prompt_id, run.submitted = server, prompt_id, True
            run.state = PromptState(prompt_id, node_count=len(tool.graph))
        runs.append(run)
    return runs
