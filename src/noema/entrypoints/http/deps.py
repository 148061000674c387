"""FastAPI dependencies: what a route may ask for, each a narrow view of the composition root.

Bootstrap builds the object graph once (``Container``); the routes never see it whole. A route names
what it uses: a unit of work for this request (``UowDep``), the clock, one service (``GenerationsDep``
…), the signed-in account (``CurrentAccount``) or internal client (``ClientDep``). This module and
``app`` are the only HTTP modules that know bootstrap (an import-linter contract keeps it so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Query, Request

from noema.adapters.db.migrate import SchemaCheck
from noema.adapters.media_store import MediaStore
from noema.adapters.metrics import PrometheusMetrics
from noema.adapters.payments.stripe_gateway import StripeGateway
from noema.adapters.platforms.discord import DiscordPlatform
from noema.adapters.platforms.result_fetch import ResultFetcher
from noema.adapters.platforms.telegram import TelegramPlatform
from noema.adapters.platforms.telegram.stars_gateway import TelegramStarsGateway
from noema.bootstrap import Container
from noema.config import Settings
from noema.domain.errors import Forbidden, Unauthenticated
from noema.ports import Clock, Secrets, UnitOfWork, UnitOfWorkFactory
from noema.services import api_keys
from noema.services.card_payments import CardPayments
from noema.services.catalog import Catalog
from noema.services.chat import ChatServices
from noema.services.generations import GenerationService
from noema.services.live_updates import LiveUpdates
from noema.services.loras import LoraLibrary
from noema.services.presets import PresetBook

_T = TypeVar("_T")


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _part(pick: Callable[[Container], _T]) -> Callable[[Request], Awaitable[_T]]:
    """A dependency giving one part of the container (async: FastAPI runs it inline, not in a thread)."""

    async def dependency(request: Request) -> _T:
        return pick(_container(request))

    return dependency


#: a new unit of work for this request (each ``async with`` on it is one transaction)
UowDep = Annotated[UnitOfWork, Depends(_part(lambda c: c.uow()))]
#: makes units of work, for a use case that runs several transactions
UowFactoryDep = Annotated[UnitOfWorkFactory, Depends(_part(lambda c: c.uow))]
ClockDep = Annotated[Clock, Depends(_part(lambda c: c.clock))]
#: tokens and codes from the OS's randomness
SecretsDep = Annotated[Secrets, Depends(_part(lambda c: c.secrets))]
#: when this process started
StartedAtDep = Annotated[datetime, Depends(_part(lambda c: c.started_at))]
SettingsDep = Annotated[Settings, Depends(_part(lambda c: c.settings))]
CatalogDep = Annotated[Catalog, Depends(_part(lambda c: c.catalog))]
GenerationsDep = Annotated[GenerationService, Depends(_part(lambda c: c.generations))]
PresetsDep = Annotated[PresetBook, Depends(_part(lambda c: c.presets))]
LorasDep = Annotated[LoraLibrary, Depends(_part(lambda c: c.loras))]
LiveDep = Annotated[LiveUpdates, Depends(_part(lambda c: c.live))]
ChatDep = Annotated[ChatServices, Depends(_part(lambda c: c.chat))]
#: card top-ups; None when Stripe is not set up
CardPaymentsDep = Annotated[CardPayments | None, Depends(_part(lambda c: c.card_payments))]
StripeDep = Annotated[StripeGateway | None, Depends(_part(lambda c: c.stripe))]
StarsGatewayDep = Annotated[TelegramStarsGateway | None, Depends(_part(lambda c: c.stars))]
TelegramDep = Annotated[TelegramPlatform | None, Depends(_part(lambda c: c.telegram))]
DiscordDep = Annotated[DiscordPlatform | None, Depends(_part(lambda c: c.discord))]
MetricsDep = Annotated[PrometheusMetrics, Depends(_part(lambda c: c.metrics))]
MediaStoreDep = Annotated[MediaStore | None, Depends(_part(lambda c: c.media_store))]
MediaFetcherDep = Annotated[ResultFetcher | None, Depends(_part(lambda c: c.media_fetcher))]
SchemaCheckDep = Annotated[SchemaCheck, Depends(_part(lambda c: SchemaCheck(c.engine)))]
#: whether this Noema runs the embedded sandbox (its first-run accounts exist only then)
SandboxedDep = Annotated[bool, Depends(_part(lambda c: c.sandbox is not None))]


class MissingAuthHeader(Unauthenticated):
    """The X-Internal-Client-Key header is required."""

    code = "MISSING_AUTH_HEADER"


class InvalidApiKey(Forbidden):
    """That internal client key is not valid."""

    code = "INVALID_API_KEY"


class OutOfScope(Forbidden):
    """This client may not do that."""

    code = "INSUFFICIENT_SCOPE"


#: what a non-admin internal client may not do
ECONOMY_WRITE = "economy:write"
LORAS_ADMIN = "loras:admin"
PRESETS_ADMIN = "presets:admin"
_ADMIN_ONLY = {
    ECONOMY_WRITE: "credit or adjust balances",
    LORAS_ADMIN: "manage the LoRA library",
    PRESETS_ADMIN: "manage presets",
}


@dataclass(frozen=True)
class InternalClient:
    name: str

    @property
    def is_admin(self) -> bool:
        """The operator's own client, which may do everything."""
        return self.name == "admin"

    def require(self, scope: str) -> None:
        """Refuse a call outside this client's scopes (admin may do everything)."""
        if not self.is_admin and scope in _ADMIN_ONLY:
            raise OutOfScope(f"Client {self.name!r} may not {_ADMIN_ONLY[scope]}; use the admin key.")


async def internal_client(
    settings: SettingsDep,
    key: Annotated[str | None, Header(alias="X-Internal-Client-Key", include_in_schema=False)] = None,
) -> InternalClient:
    """The internal client named by X-Internal-Client-Key (compared in constant time)."""
    if not key:
        raise MissingAuthHeader()
    name = settings.client_keys.client_of(key)
    if name is None:
        raise InvalidApiKey()
    return InternalClient(name)


ClientDep = Annotated[InternalClient, Depends(internal_client)]


async def require_economy_write(client: ClientDep) -> InternalClient:
    """Only the admin client may move money."""
    client.require(ECONOMY_WRITE)
    return client


async def require_lora_admin(client: ClientDep) -> InternalClient:
    """Only the admin client may read or change the LoRA library."""
    client.require(LORAS_ADMIN)
    return client


async def require_presets_admin(client: ClientDep) -> InternalClient:
    """Only the admin client may define or remove presets."""
    client.require(PRESETS_ADMIN)
    return client


async def api_account(
    uow: UowDep,
    clock: ClockDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str:
    """The account id of the personal API key in ``Authorization: Bearer nk_...``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send your API key as 'Authorization: Bearer nk_...'.")
    return await api_keys.authenticate(uow, clock, token.strip())


#: the account whose personal API key signs this request
CurrentAccount = Annotated[str, Depends(api_account)]


@dataclass(frozen=True)
class Paging:
    limit: int
    cursor: str | None


async def paging(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="nextCursor of the previous page.")] = None,
) -> Paging:
    """Page size and cursor from the query."""
    return Paging(limit, cursor)


PagingDep = Annotated[Paging, Depends(paging)]
