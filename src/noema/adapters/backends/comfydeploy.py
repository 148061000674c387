"""The ComfyDeploy V2 adapter: the ``Backend`` port over an injected ``httpx.AsyncClient``.

Retries (stamina: exponential backoff with jitter) only where repeating cannot hurt, a client-side
rate limit, and one typed error for every failure. Queueing a run is the one request that repeating
can hurt (a second POST is a second billed run): it is repeated only when it cannot have reached
ComfyDeploy's handler (a connect error) or was turned away before it (429); see ``_SERVER_FAILED``.
The API key goes into the Authorization header and nowhere else: not into messages, logs or retry
records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import stamina
from aiolimiter import AsyncLimiter

from noema.adapters.backends.comfydeploy_parse import (
    parse_deployment,
    parse_machine,
    parse_run,
    parse_workflow,
    parse_workflow_version,
    readable_reason,
)
from noema.adapters.backends.http_calls import Call, Transient, guarded, outcome_unknown, send
from noema.domain.errors import BackendProtocolError, BackendRejected
from noema.domain.runs import (
    DeploymentInfo,
    MachineInfo,
    RunUpdate,
    UploadedFile,
    WorkflowInfo,
    WorkflowVersionInfo,
)

__all__ = [
    "ComfyDeployBackend",
    "parse_deployment",
    "parse_machine",
    "parse_run",
    "parse_workflow",
    "parse_workflow_version",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

PAGE_SIZE = 100  #: the server's default page for machines, workflows and versions
_MAX_PAGES = 50  # a bound in case a server ignores ``offset`` and keeps sending full pages
# 5xx answers to a queue that mean "no run will execute", so another deployment may be tried (never
# this one again: that is the caller's failover, not a retry). ComfyDeploy's ``_create_run`` inserts
# the run row and then, on any exception while spawning it, marks that row ``failed`` before
# re-raising, so an error its own handler returns (500; 503 from an upstream it proxies) leaves no
# run to execute. A 502 or 504 (or any other 5xx) comes from a gateway in front of it that stopped
# waiting while the handler may still have been creating and spawning the run: its outcome is unknown.
_SERVER_FAILED = frozenset({500, 501, 503})


class ComfyDeployBackend:
    """The ComfyDeploy V2 HTTP API as a ``Backend``."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        label: str = "ComfyDeploy",
        max_requests_per_second: float = 10.0,
        timeout_seconds: float = 30.0,
        retry_attempts: int = 4,
        retry_max_wait_seconds: float = 30.0,
    ) -> None:
        if max_requests_per_second <= 0 or timeout_seconds <= 0 or retry_attempts < 1:
            raise ValueError("rate, timeout and attempts must be positive")
        self.label = label
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._timeout = httpx.Timeout(timeout_seconds)
        self._max_wait = retry_max_wait_seconds
        # aiolimiter needs max_rate >= 1 per acquisition: express slow rates as 1 per longer period.
        if max_requests_per_second >= 1:
            self._limiter = AsyncLimiter(max_requests_per_second, 1.0)
        else:
            self._limiter = AsyncLimiter(1, 1.0 / max_requests_per_second)
        self._retrying = stamina.AsyncRetryingCaller(
            attempts=retry_attempts,
            timeout=None,
            wait_initial=0.5,
            wait_max=retry_max_wait_seconds,
            wait_jitter=1.0,
        ).on(self._backoff)

    # --- runs -----------------------------------------------------------------------------

    async def queue_run(self, *, deployment_id: str, inputs: Mapping[str, Any], webhook_url: str | None) -> str:
        """Queue a run of a deployment and return ComfyDeploy's run id."""
        body: dict[str, Any] = {"deployment_id": deployment_id, "inputs": dict(inputs)}
        if webhook_url is not None:
            body["webhook"] = webhook_url
            body["webhook_intermediate_status"] = True
        # Not idempotent: a second POST would queue (and bill) a second run.
        call = Call("POST", "/run/deployment/queue", idempotent=False, json=body)
        data = await self._json(call)
        run_id = data.get("run_id") if isinstance(data, Mapping) else None
        if not isinstance(run_id, str) or not run_id.strip():
            raise BackendProtocolError(f"{self.label} accepted the run but returned no run_id.")
        return run_id

    async def get_run(self, run_id: str) -> RunUpdate:
        """The run's current status, progress and outputs."""
        return parse_run(await self._json(Call("GET", f"/run/{_segment(run_id)}")), confirmed=True)

    async def cancel_run(self, run_id: str) -> None:
        """Ask ComfyDeploy to stop a run; a run it no longer knows counts as stopped."""
        # Cancelling twice is harmless, so this may be retried.
        await self._request(Call("POST", f"/run/{_segment(run_id)}/cancel", tolerate=_run_is_gone))

    # --- catalog --------------------------------------------------------------------------

    async def list_deployments(self) -> list[DeploymentInfo]:
        """Every deployment the key can run, of every environment."""
        items = await self._json_list(Call("GET", "/deployments"))
        return _parse_each(items, parse_deployment, "deployment")

    async def list_machines(self) -> list[MachineInfo]:
        """Every machine, with its upper-cased GPU."""
        return _parse_each(await self._all_pages("/machines"), parse_machine, "machine")

    async def list_workflows(self) -> list[WorkflowInfo]:
        """Every workflow."""
        return _parse_each(await self._all_pages("/workflows"), parse_workflow, "workflow")

    async def list_workflow_versions(self, workflow_id: str) -> list[WorkflowVersionInfo]:
        """The versions of one workflow, newest first (the server's order)."""
        items = await self._all_pages(f"/workflow/{_segment(workflow_id)}/versions")
        return _parse_each(items, lambda obj: parse_workflow_version(obj, workflow_id=workflow_id), "version")

    async def upload_file(self, *, filename: str, content: bytes, content_type: str) -> UploadedFile:
        """Store a file at ComfyDeploy and return its id and URL (usable as an input value)."""
        # Retrying an upload at worst stores a second copy: acceptable, so it counts as idempotent.
        call = Call("POST", "/file/upload", files={"file": (filename, content, content_type)})
        data = await self._json(call)
        file_id = data.get("file_id") if isinstance(data, Mapping) else None
        url = data.get("file_url") if isinstance(data, Mapping) else None
        if not isinstance(file_id, str) or not isinstance(url, str) or not file_id or not url:
            raise BackendProtocolError(f"{self.label} stored the file but returned no file_id or file_url.")
        return UploadedFile(file_id=file_id, url=url)

    # --- transport ------------------------------------------------------------------------

    async def _all_pages(self, path: str) -> list[Any]:
        items: list[Any] = []
        previous: list[Any] | None = None
        for page in range(_MAX_PAGES):
            params = {"limit": PAGE_SIZE, "offset": page * PAGE_SIZE}
            batch = await self._json_list(Call("GET", path, params=params))
            if batch == previous:  # the server ignores offset: we already have everything
                break
            items.extend(batch)
            if len(batch) < PAGE_SIZE:
                break
            previous = batch
        return items

    async def _json_list(self, call: Call) -> list[Any]:
        data = await self._json(call)
        if not isinstance(data, list):
            raise BackendProtocolError(f"{self.label} answered {call} with something other than a list.")
        return data

    async def _json(self, call: Call) -> Any:
        response = await self._request(call)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendProtocolError(f"{self.label} answered {call} with something that is not JSON.") from exc

    async def _request(self, call: Call) -> httpx.Response:
        """Send with retries; translate every failure into the error tree."""
        response = await guarded(self.label, self._retrying, self._send_once, call)
        if response.is_success or (call.tolerate is not None and call.tolerate(response)):
            return response
        raise self._rejection(call, response)

    async def _send_once(self, call: Call) -> httpx.Response:
        """One attempt: rate-limited, authenticated, with the per-request timeout."""
        async with self._limiter:
            response = await send(
                self._client,
                call,
                base_url=self._base_url,
                label=self.label,
                timeout=self._timeout,
                headers=self._headers,
            )
        status = response.status_code
        if call.tolerate is not None and call.tolerate(response):
            return response
        if status == 429:  # turned away before any work: safe to repeat, even a queue
            raise Transient(f"HTTP {status}", retry_after=_retry_after_seconds(response))
        if status >= 500 and call.idempotent:
            raise Transient(f"HTTP {status}")
        if status >= 500 and status not in _SERVER_FAILED:
            raise outcome_unknown(self.label, call, f"HTTP {status}")
        return response  # a queue's 500/503 becomes a BackendRejected in ``_request``: not repeated

    def _backoff(self, exc: Exception) -> bool | float:
        """The hook for stamina: retry only transient failures; a Retry-After sets the wait."""
        if not isinstance(exc, Transient):
            return False
        if exc.retry_after is None:
            return True
        wait = min(exc.retry_after, self._max_wait)
        logger.warning(
            "%s answered 429 with Retry-After %.1f s; a retry waits %.1f s",
            self.label,
            exc.retry_after,
            wait,
            extra={"retry_after_seconds": exc.retry_after, "wait_seconds": wait},
        )
        return wait

    def _rejection(self, call: Call, response: httpx.Response) -> BackendRejected:
        status = response.status_code
        detail = self._redact(_detail_of(response) or "")
        if status == 401:
            message = f"{self.label} rejected the API key: it is invalid, expired or revoked (HTTP 401)."
        else:
            message = f"{self.label} refused the request (HTTP {status})."
        if detail:
            message = f"{message[:-1]}: {detail}"
        logger.warning("%s refused %s with HTTP %s", self.label, call, status)
        return BackendRejected(message, status=status, body=self._redact(response.text))

    def _redact(self, text: str) -> str:
        # A server that echoes the request must not carry the key into our errors.
        return text.replace(self._api_key, "***") if self._api_key else text


def _parse_each(items: list[Any], parse: Callable[[Any], _T], what: str) -> list[_T]:
    """Parse every item; one malformed entry is logged and skipped, not fatal to the catalog."""
    parsed: list[_T] = []
    for item in items:
        try:
            parsed.append(parse(item))
        except BackendProtocolError as exc:
            logger.warning("skipping a malformed %s from the backend: %s", what, exc.message)
    return parsed


def _segment(value: str) -> str:
    """One path segment: an id can never reach another endpoint."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _detail_of(response: httpx.Response) -> str | None:
    """The server's reason: FastAPI's ``detail``, V1's ``error``/``message``, or a plain-text body."""
    try:
        data = response.json()
    except ValueError:
        return readable_reason(response.text[:500])
    if isinstance(data, Mapping):
        for key in ("detail", "error", "message"):
            if (reason := readable_reason(data.get(key))) is not None:
                return reason
    return None


def _run_is_gone(response: httpx.Response) -> bool:
    """Cancel of an unknown or finished run: a 404, or the server's 500 that wraps its own 404."""
    if response.status_code == 404:
        return True
    return response.status_code == 500 and "404" in (_detail_of(response) or "")


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds, from either a number or an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
