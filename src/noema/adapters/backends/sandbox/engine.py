"""The run engine: creates runs, moves each live run along its timeline on a timer, renders, cancels."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from noema.adapters.backends.sandbox.catalog import Catalog, Deployment
from noema.adapters.backends.sandbox.config import Dice
from noema.adapters.backends.sandbox.fetch import NOT_OURS, ImageFetcher
from noema.adapters.backends.sandbox.files import FileStore
from noema.adapters.backends.sandbox.inputs import InputError, image_input_id, resolve_inputs, with_seed
from noema.adapters.backends.sandbox.outputs import output_rows
from noema.adapters.backends.sandbox.renderer import ImageInputError, render
from noema.adapters.backends.sandbox.runs import RunRecord, RunStore, utcnow
from noema.adapters.backends.sandbox.timeline import FAULT_MESSAGE, Step, timeline_for
from noema.adapters.backends.sandbox.webhooks import WebhookSender, webhook_payload
from noema.config.sandbox_faults import Fault
from noema.domain.runs import RunStatus

logger = logging.getLogger(__name__)


class RunEngine:
    """Owns the live runs: each waits for its next timeline step on one event-loop timer, not a task.

    A step changes the run in memory and sends its webhook; the run's file is written only when the
    run is created and when it ends. Rendering a finished run's outputs is the one thing that gets a
    task of its own, while it renders.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: RunStore,
        files: FileStore,
        fetcher: ImageFetcher,
        webhooks: WebhookSender,
        dice: Dice,
        run_seconds: float,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._files = files
        self._fetcher = fetcher
        self._webhooks = webhooks
        self._dice = dice
        self._run_seconds = run_seconds
        #: the timer of each live run's next step
        self._timers: dict[str, asyncio.TimerHandle] = {}
        #: runs rendering their outputs now
        self._rendering: dict[str, asyncio.Task[None]] = {}
        #: finished runs whose files are being written
        self._saving: set[asyncio.Task[None]] = set()
        #: class types in execution order, per deployment (the graph walk is done once)
        self._orders: dict[str, tuple[str, ...]] = {}

    def submit(
        self,
        deployment: Deployment,
        *,
        inputs: Mapping[str, Any],
        webhook: str | None,
        intermediate: bool,
        gpu: str | None,
    ) -> RunRecord:
        """Create a run of a deployment and start it along its timeline."""
        workflow_inputs = with_seed(deployment, inputs, self._dice)
        failure, fail_early = None, False
        try:
            values = resolve_inputs(deployment, workflow_inputs)
        except InputError as exc:
            failure, fail_early = f"Error: {exc}", True
        else:
            image_id = image_input_id(deployment)
            if image_id is not None and not self._fetcher.accepts(str(values[image_id])):
                failure, fail_early = f"Error: {NOT_OURS}", True
        if failure is None and self._dice.hit(Fault.RUN_FAIL):
            failure = FAULT_MESSAGE
        record = RunRecord(
            id=str(uuid.uuid4()),
            deployment_id=deployment.id,
            workflow_id=deployment.workflow_id,
            workflow_version_id=deployment.workflow_version_id,
            machine_id=deployment.machine.id,
            gpu=gpu or deployment.machine.gpu,
            workflow_inputs=workflow_inputs,
            webhook=webhook,
            webhook_intermediate_status=intermediate,
            number=self._store.next_number(),
            created_at=utcnow(),
            run_seconds=self._run_seconds,
            planned_failure=failure,
            fail_early=fail_early,
        )
        self._store.add(record)
        self._schedule(record, self._steps(deployment, record))
        return record

    def resume(self) -> int:
        """Carry on every unfinished run in the store from where the clock says it is; returns how many.

        Steps that fell due while the server was down are applied at once and announced as one
        update (the run's state now); a run whose end is due ends at once.
        """
        resumed = 0
        for record in self._store.unfinished():
            if record.id in self._timers or record.id in self._rendering:
                continue
            deployment = self._catalog.deployment(record.deployment_id)
            if deployment is None:
                logger.warning("sandbox cannot resume run %s: its deployment is unknown", record.id)
                continue
            steps = self._steps(deployment, record)
            self._catch_up(record, steps)
            self._schedule(record, steps)
            resumed += 1
        return resumed

    def cancel(self, run_id: str) -> RunRecord | None:
        """Cancel a run; a finished run keeps its status. None when the run does not exist."""
        record = self._store.get(run_id)
        if record is None or record.is_terminal:
            return record
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()
        rendering = self._rendering.pop(run_id, None)
        if rendering is not None:
            rendering.cancel()
        record.finish(RunStatus.CANCELLED, at=utcnow())
        self._notify(record, status_change=True)
        self._save_finished(record)
        return record

    def scheduled(self) -> int:
        """How many runs wait on a timer for their next step."""
        return len(self._timers)

    async def stop(self) -> None:
        """Stop every run where it is (their files let the next start resume them); finish writing files."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        rendering = list(self._rendering.values())
        self._rendering.clear()
        for task in rendering:
            task.cancel()
        await asyncio.gather(*rendering, return_exceptions=True)
        await asyncio.gather(*self._saving, return_exceptions=True)

    # --- moving along the timeline ------------------------------------------------------------

    def _steps(self, deployment: Deployment, record: RunRecord) -> tuple[Step, ...]:
        order = self._orders.get(deployment.id)
        if order is None:
            order = self._orders[deployment.id] = tuple(deployment.execution_order())
        return timeline_for(order, record.run_seconds, record.planned_failure, record.fail_early)

    def _schedule(self, record: RunRecord, steps: tuple[Step, ...]) -> None:
        # A record from an older graph may have counted more steps; its last step still ends it.
        step = steps[min(record.step, len(steps) - 1)]
        delay = (record.created_at + timedelta(seconds=step.at) - utcnow()).total_seconds()
        loop = asyncio.get_running_loop()
        self._timers[record.id] = loop.call_later(max(0.0, delay), self._fire, record.id)

    def _catch_up(self, record: RunRecord, steps: tuple[Step, ...]) -> None:
        """Apply the steps already due, short of the run's end, and announce where that leaves the run."""
        now, before = utcnow(), record.status
        while record.step < len(steps) - 1:
            step = steps[record.step]
            due = record.created_at + timedelta(seconds=step.at)
            if due > now or step.finish or (step.status is not None and step.status.is_terminal):
                break
            self._change(record, step, step.status, due)
            record.step += 1
        if record.status is not before:
            self._notify(record, status_change=True)

    def _fire(self, run_id: str) -> None:
        """A run's next step is due: apply it and set the timer for the one after."""
        self._timers.pop(run_id, None)
        record = self._store.live(run_id)
        if record is None or record.is_terminal:
            return
        try:
            deployment = self._catalog.deployment(record.deployment_id)
            if deployment is None:
                logger.warning("sandbox cannot go on with run %s: its deployment is unknown", run_id)
                return
            steps = self._steps(deployment, record)
            step = steps[min(record.step, len(steps) - 1)]
            due = record.created_at + timedelta(seconds=step.at)
            if step.finish:
                task = asyncio.create_task(self._render_and_finish(record, deployment, step, due))
                self._rendering[run_id] = task
                task.add_done_callback(lambda done: self._rendered(run_id, done))
                return
            self._apply(record, step, step.status, due)
            record.step += 1
            if not record.is_terminal:
                self._schedule(record, steps)
        except Exception:
            # A run must never stop silently: log it and leave its file for the next start to resume.
            logger.exception("sandbox run %s stopped on an unexpected error", run_id)

    def _rendered(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._rendering.get(run_id) is task:
            del self._rendering[run_id]
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox run %s stopped on an unexpected error", run_id, exc_info=task.exception())

    async def _render_and_finish(self, record: RunRecord, deployment: Deployment, step: Step, due: datetime) -> None:
        status = await self._render_outputs(record, deployment)
        if record.is_terminal:  # cancelled while rendering
            return
        self._apply(record, step, status, due)
        record.step += 1

    def _apply(self, record: RunRecord, step: Step, status: RunStatus | None, due: datetime) -> None:
        """Apply a step, announce it, and write the run's file if it ended."""
        self._change(record, step, status, due)
        self._notify(record, status_change=status is not None)
        if record.is_terminal:
            self._save_finished(record)

    def _change(self, record: RunRecord, step: Step, status: RunStatus | None, due: datetime) -> None:
        if step.progress is not None and status is not RunStatus.FAILED:
            record.progress = step.progress
        if step.live_status is not None:
            record.live_status = step.live_status
        record.updated_at = utcnow()
        if status is None:
            return
        if status.is_terminal:
            record.finish(status, at=due)
            return
        record.status = status
        if status is RunStatus.QUEUED:
            record.queued_at = due
        elif status is RunStatus.STARTED:
            record.started_at = due
            if record.queued_at is not None:
                record.cold_start_duration = round((due - record.queued_at).total_seconds(), 3)

    def _save_finished(self, record: RunRecord) -> None:
        task = asyncio.create_task(self._store.save_finished(record))
        self._saving.add(task)
        task.add_done_callback(self._saved)

    def _saved(self, task: asyncio.Task[None]) -> None:
        self._saving.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox could not write a finished run's file", exc_info=task.exception())

    async def _render_outputs(self, record: RunRecord, deployment: Deployment) -> RunStatus:
        """Render and store the outputs; FAILED (the reason as live status) if the inputs are unusable."""
        try:
            values = resolve_inputs(deployment, record.workflow_inputs)
            image_id = image_input_id(deployment)
            source = await self._fetcher.fetch(values[image_id]) if image_id else None
            rendered = await asyncio.to_thread(render, deployment.kind, values, source)
            rows = await asyncio.to_thread(output_rows, record.id, deployment, rendered, self._files)
        except (InputError, ImageInputError) as exc:
            record.live_status = f"Error: {exc}"
            return RunStatus.FAILED
        except Exception:
            logger.exception("sandbox failed to render run %s", record.id)
            record.live_status = "Error: the sandbox could not render this run"
            return RunStatus.FAILED
        if not record.is_terminal:
            record.outputs = rows
            self._notify_outputs(record)
        return RunStatus.SUCCESS

    # --- webhooks -----------------------------------------------------------------------------

    def _notify(self, record: RunRecord, *, status_change: bool) -> None:
        if record.webhook is None or (not status_change and not record.webhook_intermediate_status):
            return
        self._webhooks.send(
            record.webhook, webhook_payload(record), status_change=status_change, final=record.is_terminal
        )

    def _notify_outputs(self, record: RunRecord) -> None:
        # ``run.output`` goes out only to URLs that ask for it (``?target_events=run.output``).
        if record.webhook is None or "run.output" not in record.webhook.partition("target_events=")[2]:
            return
        for row in record.outputs:
            payload = webhook_payload(record, event_type="run.output", outputs=[row])
            self._webhooks.send(record.webhook, payload, status_change=False, final=False)
