"""FastAPI dependencies: the container, internal clients and their scopes, API-key accounts, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from noema.bootstrap import Container
from noema.domain.errors import Forbidden, Unauthenticated
from noema.services import api_keys


class MissingAuthHeader(Unauthenticated):
    """The X-Internal-Client-Key header is required."""

    code = "MISSING_AUTH_HEADER"


class InvalidApiKey(Forbidden):
    """That internal client key is not valid."""

    code = "INVALID_API_KEY"


class OutOfScope(Forbidden):
    """This client may not do that."""

    code = "INSUFFICIENT_SCOPE"


async def get_container(request: Request) -> Container:
    """The process's container."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]

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
    container: ContainerDep,
    key: Annotated[str | None, Header(alias="X-Internal-Client-Key", include_in_schema=False)] = None,
) -> InternalClient:
    """The internal client named by X-Internal-Client-Key (compared in constant time)."""
    if not key:
        raise MissingAuthHeader()
    name = container.settings.client_keys.client_of(key)
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
    container: ContainerDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str:
    """The account id of the personal API key in ``Authorization: Bearer nk_...``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send your API key as 'Authorization: Bearer nk_...'.")
    return await api_keys.authenticate(container.uow(), container.clock, token.strip())


AccountDep = Annotated[str, Depends(api_account)]


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
