"""The pool at work: health checks, Noema's waiting line, submitting, and each server's websocket.

Runs wait first come first served (kept in the database too, see ``line``) until an able, up server
has a free slot. What the
sockets say becomes ``RunUpdate``s handed to ``on_update`` (progress at most once a second per run);
the end of a run is always read from the server's history, so its times are the server's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from noema.adapters.backends.comfyui.events import (
    Connected,
    Disconnected,
    Event,
    EventListener,
    Executing,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    Progress,
)
from noema.adapters.backends.comfyui.line import Kept
from noema.adapters.backends.comfyui.pool import Candidate, Server, choose_server
from noema.adapters.backends.comfyui.progress import PromptState, apply_event
from noema.adapters.backends.comfyui.runs import (
    RESTARTED,
    Run,
    failed,
    final_update,
    progress_update,
    started_update,
    waiting_update,
    with_nonce,
)
from noema.adapters.media_store import MediaStore
from noema.domain.comfyui_workflows import WorkflowTool, build_prompt, server_can_run, summary_from_object_info
from noema.domain.errors import BackendOutcomeUnknown, BackendPromptInvalid, BackendUnavailable, ExternalServiceError
from noema.domain.runs import RunStatus, RunUpdate

logger = logging.getLogger(__name__)
OnUpdate = Callable[[str | None, RunUpdate], Awaitable[None]]
PROGRESS_EVERY = 1.0  #: seconds between two progress updates of one run


class Scheduler:
    """Servers, runs and the background tasks that move runs through them."""

    def __init__(
        self, servers: list[Server], store: MediaStore, *, slots: int, health_seconds: float, kept: Kept | None = None
    ) -> None:
        self.servers = servers
        self.kept = kept or Kept(None)
        self.store = store
        self.slots = slots
        self.health_seconds = health_seconds
        self.runs: dict[str, Run] = {}
        self.waiting: deque[str] = deque()
        self.by_prompt: dict[str, Run] = {}
        self.on_update: OnUpdate | None = None
        self._turn = 0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- life --------------------------------------------------------------------------------

    def start(self, on_update: OnUpdate) -> None:
        """Start health checks, sockets and the dispatcher."""
        self.on_update = on_update
        self._spawn(self._dispatch_forever())
        for server in self.servers:
            self._spawn(self._health_forever(server))
            self._spawn(self._listen_forever(server))

    async def close(self) -> None:
        """Stop every background task."""
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def wake(self) -> None:
        """Look at the waiting line again."""
        self._wake.set()

    # --- health ------------------------------------------------------------------------------

    async def check(self, server: Server) -> set[str]:
        """``/system_stats`` (and ``/object_info`` when it comes up, ``/queue`` each time); the prompts queued."""
        try:
            await server.client.system_stats()
            if not server.up:
                server.summary = summary_from_object_info(await server.client.object_info_raw())
            queue = await server.client.queue()
        except ExternalServiceError as exc:
            if server.up or not server.checked:
                logger.warning("%s is down: %s", server.label, exc.message[:200])
            server.up, server.reason = False, exc.message[:200]
            server.checked = True
            return set()
        server.up, server.reason, server.checked = True, "up", True
        server.queued = len(queue.running) + len(queue.pending)
        return {*queue.running, *queue.pending}

    async def _health_forever(self, server: Server) -> None:
        while True:
            queued = await self.check(server)
            for run_id in list(server.ours):
                run = self.runs[run_id]
                # Events may be missed (a socket down, a server that restarted and lost its queue):
                # a run of ours the server no longer has queued is looked up in its history.
                if server.up and run.submitted and (not server.socket_open or run.prompt_id not in queued):
                    await self._poll_quietly(run)
            self.wake()
            await asyncio.sleep(self.health_seconds)

    async def _poll_quietly(self, run: Run) -> None:
        try:
            update = await self.observe(run)
        except ExternalServiceError:
            return
        if update.status is not None and update.status.is_terminal:
            await self.push(run, update)

    # --- the waiting line --------------------------------------------------------------------

    def ahead_of(self, run_id: str) -> int:
        """How many runs wait before this one."""
        return list(self.waiting).index(run_id) if run_id in self.waiting else 0

    def has_room(self, tool: WorkflowTool) -> bool:
        """Whether a run of ``tool`` would go to a server now: more free slots on able, up servers than runs wait."""
        free = sum(
            max(0, self.slots - len(s.ours)) for s in self.servers if s.up and server_can_run(tool, s.summary) is None
        )
        return free > len(self.waiting)

    async def _dispatch_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._dispatch_pass()

    async def _dispatch_pass(self) -> None:
        for run_id in list(self.waiting):
            run = self.runs[run_id]
            candidates = [
                Candidate(s.up, s.up and server_can_run(run.tool, s.summary) is None, len(s.ours), s.queued)
                for s in self.servers
            ]
            index = choose_server(candidates, slots=self.slots, turn=self._turn)
            if index is None:
                continue
            server = self.servers[index]
            self._turn = (index + 1) % len(self.servers)
            self.waiting.remove(run_id)
            server.ours.add(run_id)
            server.queued += 1
            run.server = server
            # Prompts reach the server's queue in the order of Noema's line, though their uploads overlap.
            ahead, sent = server.last_send, asyncio.get_running_loop().create_future()
            server.last_send = sent
            self._spawn(self._submit(run, server, ahead, sent))
        for place, run_id in enumerate(list(self.waiting)):
            run = self.runs[run_id]
            if run.told_ahead != place:
                run.told_ahead = place
                await self.push(run, waiting_update(run.id, place))

    async def _submit(
        self, run: Run, server: Server, ahead: asyncio.Future[None] | None, sent: asyncio.Future[None]
    ) -> None:
        try:
            await self._send(run, server, ahead)
        finally:
            if not sent.done():
                sent.set_result(None)

    async def _send(self, run: Run, server: Server, ahead: asyncio.Future[None] | None) -> None:
        prompt_id = str(uuid.uuid4())
        if not await self.kept.claim(run, server, prompt_id):  # ended, or another process sent it
            self._release(run)
            run.server = None
            return
        try:
            names = {name: await server.client.upload_image(*image) for name, image in run.images.items()}
            prompt = with_nonce(build_prompt(run.tool, run.values, names), uuid.uuid4().hex[:10])
            run.prompt_id, run.state = prompt_id, PromptState(prompt_id, node_count=len(prompt))
            self.by_prompt[prompt_id] = run
            if ahead is not None:
                await ahead  # the run sent here before this one is on the server's queue first
            await server.client.queue_prompt(prompt, prompt_id=prompt_id, strict=True)
            run.submitted = True
            if run.cancel_requested:  # cancelled while the prompt was on its way: stop it there now
                await self.cancel(run)
        except BackendPromptInvalid as exc:
            await self.end(run, failed(run, f"ComfyUI refused the workflow: {exc.message}; nothing was charged."))
            return
        except BackendOutcomeUnknown:
            run.submitted = True  # it may be queued under our prompt id: the next look at the server tells
        except BackendUnavailable as exc:
            server.up, server.reason = False, exc.message[:200]
            self._release(run)
            run.server, run.prompt_id, run.state = None, None, None
            await self.kept.release(run)  # before it can be claimed again under a new prompt id
            self.waiting.appendleft(run.id)
            return
        except ExternalServiceError as exc:
            await self.end(run, failed(run, f"The GPU server could not start the run ({exc.message[:200]})."))
            return
        if run.cancel_requested:
            await self.cancel(run)

    async def requeue(self, run: Run) -> None:
        """Put a run its server lost back at the head of the line (once)."""
        self._release(run)
        run.resubmitted = True
        run.server, run.prompt_id, run.state, run.submitted = None, None, None, False
        await self.kept.release(run)  # before it can be claimed again under a new prompt id
        self.waiting.appendleft(run.id)
        self.wake()

    def _release(self, run: Run) -> None:
        if run.server is not None:
            run.server.ours.discard(run.id)
        if run.prompt_id is not None:
            self.by_prompt.pop(run.prompt_id, None)
        self.wake()

    async def end(self, run: Run, update: RunUpdate) -> RunUpdate:
        """Record the run's end, free its slot and tell the service."""
        if run.final is None:
            run.final = update
            self._release(run)
            if run.id in self.waiting:
                self.waiting.remove(run.id)
            await self.kept.remove(run)
            await self.push(run, update)
        return run.final

    # --- looking at one run on its server ----------------------------------------------------

    async def observe(self, run: Run) -> RunUpdate:
        """The run's state from its server: history if it ended, else its place in the server's queue."""
        async with run.lock:
            if run.final is not None:
                return run.final
            server, prompt_id = run.server, run.prompt_id
            if server is None or prompt_id is None or not run.submitted:
                return RunUpdate(run_id=run.id, status=RunStatus.QUEUED, live_status="being sent to a GPU server")
            result = await server.client.history(prompt_id)
            if result is None:
                queue = await server.client.queue()
                if prompt_id in queue.running:
                    progress = run.state.progress if run.state else None
                    return RunUpdate(run_id=run.id, status=RunStatus.RUNNING, progress=progress, gpu=server.gpu)
                if prompt_id in queue.pending:
                    ahead = queue.pending.index(prompt_id) + len(queue.running)
                    live = f"queued on the GPU server: {ahead} ahead of you"
                    return RunUpdate(run_id=run.id, status=RunStatus.QUEUED, live_status=live, gpu=server.gpu)
                result = await server.client.history(prompt_id)
            if result is not None:
                return await self.end(run, await final_update(run, result, server.client, self.store))
            if run.started or run.resubmitted:
                return await self.end(run, failed(run, RESTARTED))
            await self.requeue(run)
            return RunUpdate(run_id=run.id, status=RunStatus.QUEUED, live_status="sent again to a GPU server")

    async def cancel(self, run: Run) -> None:
        """Stop the run wherever it is."""
        run.cancel_requested = True
        if run.final is not None:
            return
        if run.id in self.waiting or run.server is None or run.prompt_id is None or not run.submitted:
            if run.id in self.waiting:
                await self.end(run, RunUpdate(run_id=run.id, status=RunStatus.CANCELLED, error="Cancelled."))
            return
        client = run.server.client
        queue = await client.queue()
        if run.prompt_id in queue.pending:
            await client.delete_queued(run.prompt_id)
            await self.end(run, RunUpdate(run_id=run.id, status=RunStatus.CANCELLED, error="Cancelled."))
        elif run.prompt_id in queue.running:
            await client.interrupt(run.prompt_id)

    # --- the sockets -------------------------------------------------------------------------

    async def push(self, run: Run, update: RunUpdate) -> None:
        """Hand one update to the service (never raises: a failed write is seen again by polling)."""
        if self.on_update is None:
            return
        try:
            await self.on_update(run.generation_id, update)
        except Exception:
            logger.exception("could not record an update of run %s", run.id)

    async def _listen_forever(self, server: Server) -> None:
        listener = EventListener(server.url, client_id=server.client.client_id)
        async for event in listener.events():
            self.handle(server, event)

    def handle(self, server: Server, event: Event) -> None:
        """One socket event: fold it into its run and push what the user should see."""
        if isinstance(event, Connected | Disconnected):
            server.socket_open = isinstance(event, Connected)
            return
        run = self.by_prompt.get(getattr(event, "prompt_id", ""))
        if run is None or run.state is None or run.final is not None:
            return
        run.state = apply_event(run.state, event)
        if isinstance(event, ExecutionSuccess | ExecutionError | ExecutionInterrupted) or (
            isinstance(event, Executing) and event.node is None
        ):
            self._spawn(self._poll_quietly(run))
        elif isinstance(event, ExecutionStart):
            run.last_push = time.monotonic()
            self._spawn(self.push(run, started_update(run, server, event.at)))
        elif isinstance(event, Executing | Progress) and time.monotonic() - run.last_push >= PROGRESS_EVERY:
            run.last_push = time.monotonic()
            self._spawn(self.push(run, progress_update(run, server)))
