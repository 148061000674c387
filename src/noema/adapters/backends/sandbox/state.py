"""What the sandbox's routes share, reached through FastAPI dependencies (``app.state.sandbox``)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from noema.adapters.backends.sandbox.catalog import Catalog
from noema.adapters.backends.sandbox.config import Dice, SandboxConfig
from noema.adapters.backends.sandbox.engine import RunEngine
from noema.adapters.backends.sandbox.files import FileStore
from noema.adapters.backends.sandbox.runs import RunStore


@dataclass(frozen=True)
class SandboxState:
    """The parts of one sandbox server its routes use."""

    config: SandboxConfig
    catalog: Catalog
    store: RunStore
    engine: RunEngine
    files: FileStore
    dice: Dice


def get_state(request: Request) -> SandboxState:
    """The state of the sandbox app serving this request (also when mounted inside another app)."""
    return cast(SandboxState, request.app.state.sandbox)


State = Annotated[SandboxState, Depends(get_state)]

_BEARER = HTTPBearer(auto_error=False, description="The sandbox's API key (NOEMA_SANDBOX_API_KEY, or its random one).")


async def require_bearer(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
) -> None:
    """Demand ``Authorization: Bearer <the sandbox's API key>``; any other token is refused."""
    token = credentials.credentials.strip() if credentials else ""
    if not token or not hmac.compare_digest(token.encode(), state.config.api_key.encode()):
        raise HTTPException(401, "Invalid or missing token", headers={"WWW-Authenticate": "Bearer"})
