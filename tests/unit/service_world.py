"""The generation use case wired over the in-memory unit of work, a scripted backend and a fake clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from noema.adapters.randomness import SystemSecrets
from noema.domain.accounts import Platform
from noema.domain.pricing import parse_rates
from noema.services import accounts, economy
from noema.services.catalog import Catalog
from noema.services.generations import GenerationRequest, GenerationService, Limits
from tests.fakes.clock import FakeClock
from tests.fakes.memory_uow import MemoryUnitOfWorkFactory
from tests.fakes.scripted_backend import CountingMetrics, ScriptedBackend, text_deployment

USD = 1_000_000_000


@dataclass
class World:
    """Everything a service test touches."""

    uows: MemoryUnitOfWorkFactory
    clock: FakeClock
    backend: ScriptedBackend
    catalog: Catalog
    metrics: CountingMetrics
    service: GenerationService

    async def account(self, usd: float = 1, platform_id: str = "1") -> str:
        """A new API account with ``usd`` of credit; its id."""
        found = await accounts.find_or_create(self.uows, self.clock, platform=Platform.API, platform_id=platform_id)
        if usd:
            transfer = economy.Transfer(account_id=found.account.id, amount_nanos=int(usd * USD))
            await economy.credit(self.uows(), self.clock, transfer)
        return found.account.id

    def ask(self, account_id: str, prompt: str = "a red fox", **fields: Any) -> GenerationRequest:
        """A txt2img request with this prompt; ``fields`` set the rest (idempotency key, fallbacks ...)."""
        return GenerationRequest(account_id=account_id, tool_ref="txt2img", inputs={"input_text": prompt}, **fields)


def world(limits: Limits | None = None) -> World:
    """txt2img on an A10G and big on an H100, behind a scripted backend."""
    clock, metrics = FakeClock(), CountingMetrics()
    uows = MemoryUnitOfWorkFactory(clock)
    backend = ScriptedBackend([text_deployment("txt2img"), text_deployment("big", machine_id="m-h100")])
    catalog = Catalog(backend=backend, uow_factory=uows, clock=clock, rates=parse_rates({}), overrides={})
    service = GenerationService(
        uow_factory=uows,
        clock=clock,
        secrets=SystemSecrets(),
        backend=backend,
        catalog=catalog,
        limits=limits or Limits(),
        webhook_base="http://noema.test",
        metrics=metrics,
        rng=random.Random(7),
    )
    return World(uows, clock, backend, catalog, metrics, service)
