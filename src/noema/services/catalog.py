"""The tool catalog: built from the backend, cached with a TTL, persisted for when the backend is down."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from noema.domain.catalog import build_catalog
from noema.domain.errors import BackendUnavailable, ExternalServiceError, ToolNotFound
from noema.domain.loras import family_or_none
from noema.domain.runs import OutputKind, WorkflowVersionInfo
from noema.domain.tools import (
    ACCOUNT,
    InputType,
    PrimaryInput,
    Tool,
    ToolCaller,
    ToolInput,
    ToolOverride,
    Visibility,
    may_list,
    may_run,
)
from noema.ports import Backend, Clock, UnitOfWorkFactory

log = structlog.get_logger(__name__)
SNAPSHOT_KEY = "catalog.tools"


class Catalog:
    """The current tools; ``tools()`` never calls the backend more often than the TTL allows."""

    def __init__(
        self,
        *,
        backend: Backend,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        rates: Mapping[str, int],
        overrides: Mapping[str, ToolOverride],
        ttl_seconds: float = 300.0,
        backend_label: str = "",
    ) -> None:
        self.backend, self.uow_factory, self.clock = backend, uow_factory, clock
        self.rates, self.overrides, self.ttl, self.label = dict(rates), dict(overrides), ttl_seconds, backend_label
        self._tools: list[Tool] = []
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self.version = 0  #: bumps whenever the set of tools changes
        self._listeners: list[Callable[[list[Tool]], Any]] = []

    def on_change(self, listener: Callable[[list[Tool]], Any]) -> None:
        """Call ``listener(tools)`` after every change (platforms re-register their commands)."""
        self._listeners.append(listener)

    async def tools(self) -> list[Tool]:
        """Every tool (disabled ones included, with their reason)."""
        if self._loaded_at is None:
            async with self._lock:
                if self._loaded_at is None:
                    await self._first_load()
        return list(self._tools)

    async def find(self, ref: str, *, caller: ToolCaller = ACCOUNT) -> Tool:
        """A tool the caller may run, by id or command name; one it may not run is as unknown as a missing one."""
        ref = ref.strip().lstrip("/").lower()
        for tool in await self.tools():
            if ref in (tool.id.lower(), tool.command) and may_run(tool, caller):
                return tool
        raise ToolNotFound(f"There is no tool called {ref[:40]!r}; /tools lists them.", details={"toolId": ref[:40]})

    async def with_stand_ins(self, tools: list[Tool]) -> list[Tool]:
        """The tools in order, each followed by its stand-ins on another backend (each tool once)."""
        by_id = {t.id: t for t in await self.tools()}
        result: dict[str, Tool] = {}
        for tool in tools:
            result.setdefault(tool.id, tool)
            for stand_in in tool.stand_ins:
                if stand_in in by_id:
                    result.setdefault(stand_in, by_id[stand_in])
        return list(result.values())

    async def listed(self, caller: ToolCaller = ACCOUNT) -> list[Tool]:
        """The tools the caller's lists show (disabled ones included, with their reason)."""
        return [t for t in await self.tools() if may_list(t, caller)]

    def is_stale(self) -> bool:
        """Older than the TTL (a background task refreshes it)."""
        return self._loaded_at is None or asyncio.get_running_loop().time() - self._loaded_at >= self.ttl

    async def _first_load(self) -> None:
        try:
            await self._refresh_unlocked()
        except ExternalServiceError as exc:
            snapshot = await self._load_snapshot()
            if snapshot is None:
                raise BackendUnavailable("The GPU backend is unreachable and no tool list was saved yet.") from exc
            log.warning("catalog_from_snapshot", tools=len(snapshot), error=str(exc)[:200])
            self._swap(snapshot)

    async def refresh(self) -> list[Tool]:
        """Rebuild from the backend now; on failure keep (and return) what we had."""
        async with self._lock:
            try:
                await self._refresh_unlocked()
            except ExternalServiceError as exc:
                log.warning("catalog_refresh_failed", error=str(exc)[:200])
                if self._loaded_at is None:
                    snapshot = await self._load_snapshot()
                    if snapshot is None:
                        raise
                    self._swap(snapshot)
        return list(self._tools)

    async def _refresh_unlocked(self) -> None:
        deployments = await self.backend.list_deployments()
        machines = await self.backend.list_machines()
        versions: dict[str, WorkflowVersionInfo] = {}
        for workflow_id in sorted({d.workflow_id for d in deployments if d.workflow_id}):
            for version in await self.backend.list_workflow_versions(workflow_id):
                versions[version.id] = version
        tools = build_catalog(
            deployments, machines, versions, rates=self.rates, overrides=self.overrides, backend_label=self.label
        )
        self._swap(tools)
        async with self.uow_factory() as uow:
            await uow.kv.put(SNAPSHOT_KEY, [tool_to_json(t) for t in tools], now=self.clock.now())
            await uow.commit()

    def _swap(self, tools: list[Tool]) -> None:
        changed = [tool_to_json(t) for t in tools] != [tool_to_json(t) for t in self._tools]
        self._tools = tools
        self._loaded_at = asyncio.get_running_loop().time()
        if changed:
            self.version += 1
            log.info("catalog_changed", tools=len(tools), version=self.version)
            for listener in self._listeners:
                listener(list(tools))

    async def _load_snapshot(self) -> list[Tool] | None:
        async with self.uow_factory() as uow:
            raw = await uow.kv.get(SNAPSHOT_KEY)
        if not isinstance(raw, list):
            return None
        tools = []
        for item in raw:
            try:
                tools.append(tool_from_json(item))
            except (KeyError, TypeError, ValueError):
                log.warning("catalog_snapshot_item_skipped")
        return tools


def tool_to_json(tool: Tool) -> dict[str, Any]:
    """A tool as plain JSON (for the snapshot)."""
    data = dataclasses.asdict(tool)
    data["inputs"] = [{**dataclasses.asdict(i), "options": list(i.options)} for i in tool.inputs]
    plain: dict[str, Any] = _plain(data)
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def tool_from_json(data: Mapping[str, Any]) -> Tool:
    """The inverse of ``tool_to_json``."""
    inputs = tuple(
        ToolInput(**{**i, "type": InputType(i["type"]), "options": tuple(i.get("options") or ())})
        for i in data["inputs"]
    )
    return Tool(
        **{
            **data,
            "inputs": inputs,
            "primary_input": PrimaryInput(data["primary_input"]),
            "output_kind": OutputKind(data["output_kind"]) if data.get("output_kind") else None,
            "visibility": Visibility(data["visibility"]),
            # Snapshots saved before tools had a base model read as "unknown" until the next refresh.
            "base_model": family_or_none(data.get("base_model")),
            "stand_ins": tuple(str(i) for i in data.get("stand_ins") or ()),
        }
    )
