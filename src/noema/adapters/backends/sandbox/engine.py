"""The run engine: creates runs, walks each live run's timeline in a task, renders, cancels."""

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
from noema.adapters.backends.sandbox.timeline import FAULT_MESSAGE, Step, build_timeline
from noema.adapters.backends.sandbox.webhooks import WebhookSender, webhook_payload
from noema.config.sandbox_faults import Fault
from noema.domain.runs import RunStatus

logger = logging.getLogger(__name__)


class RunEngine:
    """Owns the live runs: one asyncio task per run that applies its timeline steps on time."""

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
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def submit(
        self,
        deployment: Deployment,
        *,
        inputs: Mapping[str, Any],
        webhook: str | None,
        intermediate: bool,
        gpu: str | None,
    ) -> RunRecord:
        """Create a run of a deployment and start walking its timeline."""
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
        self._store.save(record)
        self._spawn(record.id)
        return record

    def resume(self) -> int:
        """Start a task for every unfinished run in the store; returns how many."""
        resumed = 0
        for record in self._store.unfinished():
            if record.id not in self._tasks:
                self._spawn(record.id)
                resumed += 1
        return resumed

    def cancel(self, run_id: str) -> RunRecord | None:
        """Cancel a run; a finished run keeps its status. None when the run does not exist."""
        record = self._store.get(run_id)
        if record is None or record.is_terminal:
            return record
        task = self._tasks.pop(run_id, None)
        if task is not None:
            task.cancel()
        record.finish(RunStatus.CANCELLED, at=utcnow())
        self._store.save(record)
        self._notify(record, status_change=True)
        return record

    async def stop(self) -> None:
        """Stop every run task; their records stay as they are, ready to be resumed."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, run_id: str) -> None:
        task = asyncio.create_task(self._drive(run_id), name=f"sandbox-run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda done: self._forget(run_id, done))

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]

    async def _drive(self, run_id: str) -> None:
        record = self._store.get(run_id)
        deployment = self._catalog.deployment(record.deployment_id) if record else None
        if record is None or deployment is None:
            logger.warning("sandbox cannot resume run %s: its deployment is unknown", run_id)
            return
        steps = build_timeline(
            deployment.execution_order(),
            run_seconds=record.run_seconds,
            failure=record.planned_failure,
            fail_early=record.fail_early,
        )
        try:
            await self._walk(record, deployment, steps)
        except Exception:
            # A run task must never die silently: log it and leave the record to be resumed.
            logger.exception("sandbox run %s stopped on an unexpected error", run_id)

    async def _walk(self, record: RunRecord, deployment: Deployment, steps: list[Step]) -> None:
        # A record from an older graph may have counted more steps; its last step still ends it.
        for index in range(min(record.step, len(steps) - 1), len(steps)):
            step = steps[index]
            due = record.created_at + timedelta(seconds=step.at)
            delay = (due - utcnow()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            if record.is_terminal:
                return
            await self._apply(record, deployment, step, due)
            record.step = index + 1
            self._store.save(record)

    async def _apply(self, record: RunRecord, deployment: Deployment, step: Step, due: datetime) -> None:
        status = step.status
        if step.finish:
            status = await self._render_outputs(record, deployment)
            if record.is_terminal:  # cancelled while rendering
                return
        if step.progress is not None and status is not RunStatus.FAILED:
            record.progress = step.progress
        if step.live_status is not None:
            record.live_status = step.live_status
        record.updated_at = utcnow()
        if status is None:
            self._notify(record, status_change=False)
            return
        if status.is_terminal:
            record.finish(status, at=due)
        else:
            self._enter(record, status, due)
        self._notify(record, status_change=True)

    @staticmethod
    def _enter(record: RunRecord, status: RunStatus, due: datetime) -> None:
        record.status = status
        if status is RunStatus.QUEUED:
            record.queued_at = due
        elif status is RunStatus.STARTED:
            record.started_at = due
            if record.queued_at is not None:
                record.cold_start_duration = round((due - record.queued_at).total_seconds(), 3)

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
