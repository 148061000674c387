"""Asking for a generation: validate, price, hold, create, then submit to the backend.

The generation row and the hold commit before the backend is called (create before submit), so
an early webhook always finds its generation and a crash never leaves money held for nothing
(the reconciler settles what was left pending).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from noema.domain import ledger, preferences
from noema.domain.errors import (
    AccountNotFound,
    AmountOwed,
    BackendProtocolError,
    Conflict,
    ExternalServiceError,
    InsufficientFunds,
    InvalidInput,
    LimitExceeded,
    ToolDisabled,
)
from noema.domain.generation import Generation, GenerationStatus
from noema.domain.inputs import validate_inputs
from noema.domain.loras import Lora
from noema.domain.money import display_usd, format_usd
from noema.domain.payments import owed_message
from noema.domain.platform_updates import PlatformUpdate
from noema.domain.pricing import estimate_nanos, hold_for, max_cost_nanos
from noema.domain.tools import ACCOUNT, Tool, ToolCaller
from noema.ports import Backend, Clock, Metrics, RoomAware, Secrets, UnitOfWorkFactory
from noema.services import cancel, events, failover, history, media_inputs, run_updates
from noema.services.catalog import Catalog
from noema.services.durations import RecentDurations
from noema.services.economy import post
from noema.services.lora_prompts import apply_loras
from noema.services.loras import LoraLibrary

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a platform or the API says when someone runs a tool."""

    account_id: str
    tool_ref: str  #: tool id or command name
    inputs: Mapping[str, Any]
    platform: str = "api"
    delivery: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    idempotency_key: str | None = None
    files: Mapping[str, tuple[str, bytes, str]] = field(default_factory=dict)  #: input -> (name, bytes, mime)
    fallbacks: tuple[str, ...] = ()  #: tools to try, in order, when the backend cannot run ``tool_ref``
    caller: ToolCaller = ACCOUNT  #: whose visibility rule applies (an account unless the admin client asks)
    answers: PlatformUpdate | None = None  #: the chat update asking; recorded as answered with the generation


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 3
    per_minute: int = 20
    quiet_for: timedelta = timedelta(seconds=60)  #: silence before the reconciler polls a run
    poll_every: timedelta = timedelta(seconds=20)  #: how often a quiet run is polled again
    webhooks: bool = True


class GenerationService:
    """The request → hold → create → submit use case."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        secrets: Secrets,
        backend: Backend,
        catalog: Catalog,
        limits: Limits,
        webhook_base: str,
        metrics: Metrics,
        rng: random.Random | None = None,
        loras: LoraLibrary | None = None,
        max_loras: int = 5,
    ) -> None:
        self.uow_factory, self.clock, self.backend, self.catalog = uow_factory, clock, backend, catalog
        self.limits, self.webhook_base, self.metrics, self.secrets = limits, webhook_base, metrics, secrets
        self.rng = rng or random.Random(secrets.randbits(64))
        self.loras, self.max_loras = loras, max_loras
        self.durations = RecentDurations(uow_factory)

    async def request(self, req: GenerationRequest) -> Generation:
        """Run a tool for an account; returns the generation (already failed if the backend refused).

        Before the backend is called there is one transaction: the account's defaults are read, the
        inputs checked, the limits counted and the hold and the generation written together. The
        catalog, the expected run time and the LoRA library come from memory (each refreshed on its
        own schedule), so they are read before it and never while it holds the database.
        """
        tools = await self._candidates(req)
        raw = {
            **req.inputs,
            **{name: media_inputs.data_uri(mime, content) for name, (_n, content, mime) in req.files.items()},
        }
        fingerprint = _fingerprint(tools[0].id, raw)  # of what the request said, without the defaults
        prices = await self._prices(tools)
        registry = await self.loras.loras() if self.loras is not None and _takes_loras(tools[0]) else None
        try:
            generation, token, inputs = await self._create(req, tools, raw, fingerprint, prices, registry)
        except Conflict:
            if req.idempotency_key is None:
                raise
            return await self._replay(req, fingerprint)  # a concurrent retry won the insert
        if token is None:
            return generation  # the same Idempotency-Key again: the first request's generation
        return await self._submit(generation, tools, inputs, token)

    async def _candidates(self, req: GenerationRequest) -> list[Tool]:
        """The tool asked for and its fallbacks that can run (the first disabled one says why, if none can)."""
        tools = [await self.catalog.find(ref, caller=req.caller) for ref in (req.tool_ref, *req.fallbacks)]
        tools = await self.catalog.with_stand_ins(tools)
        enabled = [t for t in tools if t.enabled]
        if not enabled:
            raise ToolDisabled(tools[0].disabled_reason or f"/{tools[0].command} is disabled.")
        return enabled

    async def estimate(self, tool: Tool) -> tuple[int, float]:
        """What a run of the tool is expected to cost (nanos) and take (seconds) right now."""
        seconds = await self._expected_seconds(tool)
        return max(1, estimate_nanos(tool, expected_seconds=seconds)), seconds

    async def cancel(self, generation_id: str, *, account_id: str | None, reason: str | None = None) -> Generation:
        """Stop a live generation: charge the GPU seconds used, release the rest (``account_id`` None: anyone's)."""
        more = {"reason": reason} if reason is not None else {}
        return await cancel.cancel(
            self.uow_factory,
            self.clock,
            self.backend,
            generation_id,
            account_id=account_id,
            metrics=self.metrics,
            **more,
        )

    async def _expected_seconds(self, tool: Tool) -> float:
        return await self.durations.expected_seconds(tool)

    async def _prices(self, tools: list[Tool]) -> tuple[int, int]:
        """The estimate and the ceiling of the hold, both covering the dearest candidate.

        A fallback may run, and the price follows the one that does.
        """
        estimate = max([(await self.estimate(t))[0] for t in tools])
        return estimate, max(max(max_cost_nanos(t) for t in tools), estimate)

    async def _replay(self, req: GenerationRequest, fingerprint: str) -> Generation:
        async with self.uow_factory() as uow:
            existing = await uow.generations.by_idempotency_key(req.account_id, req.idempotency_key or "")
        return _same_request(existing, fingerprint)

    async def _create(
        self,
        req: GenerationRequest,
        tools: list[Tool],
        raw: dict[str, Any],
        fingerprint: str,
        prices: tuple[int, int],
        registry: Sequence[Lora] | None,
    ) -> tuple[Generation, str | None, dict[str, Any]]:
        """Check, hold and create in one transaction; the token is None when the Idempotency-Key replays."""
        tool = tools[0]
        estimate, ceiling = prices
        now = self.clock.now()
        async with self.uow_factory() as uow:
            # One statement: the account's row lock, its defaults, its live and recent runs, its replay.
            check = await uow.accounts.lock_for_request(
                req.account_id, tool_id=tool.id, since=now - timedelta(minutes=1), idempotency_key=req.idempotency_key
            )
            if check is None:
                raise AccountNotFound()
            account = check.account
            # The account's defaults go under what the request says; the fingerprint is of what it said.
            inputs = validate_inputs(tool, preferences.under_explicit(tool, check.defaults, raw), rng=self.rng)
            # After validation, so that an over-long prompt gets the tool's own length message.
            inputs, meta = apply_loras(tool, inputs, req.account_id, registry=registry, max_loras=self.max_loras)
            if check.replayed_id is not None:
                return _same_request(await uow.generations.get(check.replayed_id), fingerprint), None, inputs
            if check.live >= self.limits.max_concurrent:
                raise LimitExceeded(
                    f"You already have {self.limits.max_concurrent} generations running; "
                    "wait for one to finish or cancel one."
                )
            if check.recent >= self.limits.per_minute:
                raise LimitExceeded(f"At most {self.limits.per_minute} generations a minute; try again shortly.")
            if account.owed_nanos > 0:
                raise AmountOwed(owed_message(account.owed_nanos), details={"owedUsd": format_usd(account.owed_nanos)})
            # The hold is the most this run may cost, capped by what the account has free; Noema
            # stops the run when its cost reaches it, so nothing is ever charged beyond it.
            held = hold_for(free=account.free_nanos, estimate=estimate, ceiling=ceiling)
            if held is None:
                raise _not_enough(account.free_nanos, account.held_nanos, estimate)
            posting = ledger.hold(account, held)
            token = self.secrets.token(32)
            generation = Generation.for_tool(
                tool,
                now,
                id=uow.ids.new(),
                account_id=account.id,
                inputs=media_inputs.storable(inputs),
                estimated_cost_nanos=estimate,
                hold_nanos=held,
                webhook_token_hash=run_updates.hash_token(token),
                platform=req.platform,
                delivery=dict(req.delivery),
                session_id=req.session_id,
                idempotency_key=req.idempotency_key,
                request_fingerprint=fingerprint,
                next_poll_at=now + self.limits.quiet_for,
                meta=meta,
            )
            uow.generations.add(generation)
            post(
                uow,
                account,
                posting,
                key=f"hold:{generation.id}",
                now=now,
                description=f"hold for /{tool.command}",
                transaction_type="generation_hold",
                generation_id=generation.id,
                tool_id=tool.id,
            )
            events.record(
                uow,
                "generation_requested",
                now=now,
                account_id=account.id,
                session_id=req.session_id,
                platform=req.platform,
                data={"generationId": generation.id, "tool": tool.command, "estimatedCostUsd": format_usd(estimate)},
            )
            if req.answers is not None:  # a redelivery of the update now finds it answered
                await uow.platform_updates.record(req.answers, at=now)
            await uow.commit()
            self.metrics.generation_status(GenerationStatus.PENDING.value)
            return generation, token, inputs

    async def _submit(
        self, generation: Generation, tools: list[Tool], inputs: dict[str, Any], token: str
    ) -> Generation:
        """Submit to the first candidate that takes the run; a backend failure moves on to the next."""
        for index, tool in enumerate(tools):
            if index + 1 < len(tools) and not await _has_room(self.backend, tool):
                log.info("candidate_skipped_full", generation_id=generation.id, tool=tool.command)
                continue  # own servers down or full: the next candidate (the cloud) takes it at once
            try:
                if index:  # a fallback: its own schema checks the inputs, its own price is frozen
                    inputs = validate_inputs(tool, inputs, rng=self.rng)
                    moved = await failover.move_to(self.uow_factory(), generation.id, tool, self.clock.now())
                    if moved is None:
                        return await history.get(self.uow_factory(), generation.id)
                    generation = moved
                values = await media_inputs.upload(self.backend, tool, inputs)
                run_id = await self.backend.queue_run(
                    deployment_id=tool.deployment_id, inputs=values, webhook_url=self._webhook_url(generation.id, token)
                )
                break
            except (ExternalServiceError, InvalidInput) as exc:
                self.metrics.backend_error(type(exc).__name__)
                log.warning("submit_failed", generation_id=generation.id, tool=tool.command, error=str(exc)[:200])
                if index + 1 < len(tools) and failover.worth_another(exc):
                    continue
                return await run_updates.finish(
                    self.uow_factory(),
                    self.clock,
                    generation.id,
                    GenerationStatus.FAILED,
                    reason=_submit_reason(exc),
                    metrics=self.metrics,
                )
        fresh = await self._mark_submitted(generation, run_id, values)
        log.info("generation_submitted", generation_id=generation.id, run_id=run_id, account_id=generation.account_id)
        if fresh.is_terminal:
            # Cancelled (or timed out) while the submit was on its way: the run it made must not go
            # on running on the operator's bill.
            await self._stop_orphan(fresh, run_id)
        return fresh

    async def _mark_submitted(self, generation: Generation, run_id: str, values: dict[str, Any]) -> Generation:
        """Record the backend's run id: one statement while the row is as this request left it, else locked."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            generation.mark_submitted(run_id, now)  # what was written (pending) plus the submit
            generation.inputs = values
            if await uow.generations.save_submit(generation):
                await uow.commit()
                return generation
            fresh = await uow.generations.get(generation.id, for_update=True)
            assert fresh is not None
            fresh.mark_submitted(run_id, now)
            fresh.inputs = values
            await uow.commit()
            return fresh

    async def _stop_orphan(self, generation: Generation, run_id: str) -> None:
        try:
            await self.backend.cancel_run(run_id)
        except ExternalServiceError as exc:
            self.metrics.backend_error("cancel")
            log.warning("orphan_cancel_failed", generation_id=generation.id, run_id=run_id, error=str(exc)[:200])
            return
        log.info("orphan_run_cancelled", generation_id=generation.id, run_id=run_id, status=generation.status.value)

    def _webhook_url(self, generation_id: str, token: str) -> str | None:
        if not self.limits.webhooks:
            return None
        return f"{self.webhook_base}/api/webhook/comfydeploy?generation_id={generation_id}&token={token}"


def _takes_loras(tool: Tool) -> bool:
    """Whether the tool's prompt can call LoRAs (a text prompt and a known base model)."""
    return tool.prompt_input is not None and tool.base_model is not None


async def _has_room(backend: Backend, tool: Tool) -> bool:
    """Whether the backend would start a run of the tool now (one that cannot say always would)."""
    return await backend.has_room(tool.deployment_id) if isinstance(backend, RoomAware) else True


def _same_request(existing: Generation | None, fingerprint: str) -> Generation:
    """The generation an Idempotency-Key already made, if the request is the same one."""
    if existing is None:
        raise Conflict("The request conflicted with another; try again.")
    if existing.request_fingerprint != fingerprint:
        raise Conflict("That Idempotency-Key was already used for a different request.")
    return existing


def _fingerprint(tool_id: str, raw: Mapping[str, Any]) -> str:
    body = json.dumps({"tool": tool_id, "inputs": raw}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _not_enough(free: int, held: int, estimate: int) -> InsufficientFunds:
    busy = f" ({display_usd(held)} more is held for your runs in progress)" if held else ""
    return InsufficientFunds(
        f"Your balance is {display_usd(free)}{busy} and this run is estimated at {display_usd(estimate)}. "
        "Add funds (ask an operator, or use your account page) and try again"
        + (", or wait for a run to finish." if held else "."),
        details={
            "currentBalance": format_usd(free),
            "estimatedCost": format_usd(estimate),
            "heldUsd": format_usd(held),
        },
    )


def _submit_reason(exc: Exception) -> str:
    if isinstance(exc, BackendProtocolError):
        return "The GPU backend answered something Noema could not understand; nothing was charged."
    if isinstance(exc, InvalidInput):
        return exc.message
    return f"The GPU backend could not start the run ({getattr(exc, 'message', str(exc))[:200]})."
