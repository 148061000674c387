"""What the backend HTTP clients share.

One logical request, which failures may be repeated, and how a transport failure becomes the error tree.

A request that cannot have reached the server (a connect error) may always be repeated; one that
got no answer only when repeating cannot act twice (``Call.idempotent``). A non-idempotent request
with no answer has an unknown outcome: it is never repeated, here or elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from noema.domain.errors import BackendOutcomeUnknown, BackendUnavailable

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The request cannot have reached the server: repeating it cannot queue anything twice.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call:
    """One logical request. As text it names only method and path: it goes into error messages."""

    method: str
    path: str
    idempotent: bool = True
    params: Mapping[str, str | int] | None = field(default=None, repr=False)
    json: Any = field(default=None, repr=False)
    files: Mapping[str, tuple[str, bytes, str]] | None = field(default=None, repr=False)
    data: Mapping[str, str] | None = field(default=None, repr=False)
    #: answers that mean "done" despite their status (ComfyDeploy's cancel quirk)
    tolerate: Callable[[httpx.Response], bool] | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class Transient(Exception):
    """A failure worth another attempt: never sent, no answer to an idempotent call, or "come back later"."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


async def send(
    http: httpx.AsyncClient,
    call: Call,
    *,
    base_url: str,
    label: str,
    timeout: httpx.Timeout,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One attempt of ``call``; a transport failure is sorted into ``Transient`` or an unknown outcome."""
    try:
        return await http.request(
            call.method,
            base_url + call.path,
            params=call.params,
            json=call.json,
            files=call.files,
            data=call.data,
            headers=headers,
            timeout=timeout,
        )
    except NEVER_SENT as exc:
        raise Transient(f"could not connect: {type(exc).__name__}") from exc
    except httpx.UnsupportedProtocol:
        raise  # a misconfigured base URL: repeating will not help
    except httpx.TransportError as exc:
        if call.idempotent:
            raise Transient(f"no answer: {type(exc).__name__}") from exc
        raise outcome_unknown(label, call, type(exc).__name__) from exc


def outcome_unknown(label: str, call: Call, what: str) -> BackendOutcomeUnknown:
    """A non-idempotent request that may have been acted on: never repeated, here or elsewhere."""
    logger.warning("%s: outcome of %s unknown (%s); not repeated", label, call, what)
    return BackendOutcomeUnknown(
        f"{label} did not answer {call} ({what}); whether it acted is unknown, so the request was not repeated."
    )


async def guarded(
    label: str,
    retrying: Callable[[Callable[[Call], Awaitable[_T]], Call], Awaitable[_T]],
    attempt: Callable[[Call], Awaitable[_T]],
    call: Call,
) -> _T:
    """``attempt(call)`` under the client's retry policy; what still fails becomes ``BackendUnavailable``."""
    try:
        return await retrying(attempt, call)
    except Transient as exc:
        raise BackendUnavailable(f"{label} is unavailable ({exc.reason} on {call}).") from exc
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"{label} could not be reached ({type(exc).__name__}).") from exc
