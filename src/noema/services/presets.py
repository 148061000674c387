"""Running a preset: its variant for the features asked for, its defaults, and the order to try tools in."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from noema.domain.errors import InvalidInput, ToolNotFound
from noema.domain.presets import Preset, Selection, order
from noema.ports import UnitOfWorkFactory
from noema.services.catalog import Catalog
from noema.services.generations import GenerationRequest


class PresetBook:
    """The operator's presets over the catalog; round robin turns are kept per process."""

    def __init__(self, presets: Mapping[str, Preset], *, catalog: Catalog, uow: UnitOfWorkFactory) -> None:
        self.presets, self.catalog, self.uow = dict(presets), catalog, uow
        self._turns = {name: itertools.count() for name in self.presets}

    def get(self, command: str) -> Preset:
        """The preset called ``command`` (with or without a slash)."""
        preset = self.presets.get(command.strip().lstrip("/").lower())
        if preset is None:
            raise ToolNotFound(f"There is no preset called {command[:40]!r}.")
        return preset

    async def request(
        self,
        command: str,
        features: Iterable[str],
        *,
        account_id: str,
        inputs: Mapping[str, Any],
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        machine: str | None = None,
        **fields: Any,
    ) -> GenerationRequest:
        """The generation request of a preset run: the first tool to try, the fallbacks, the inputs.

        ``machine`` (a machine id or a GPU name) keeps only the candidates that run there.
        """
        preset = self.get(command)
        wanted = [f.strip().lower() for f in features if f.strip()]
        tools = [await self.catalog.find(ref) for ref in preset.route(wanted)]
        if machine:
            tools = [t for t in tools if machine in (t.machine_id, t.gpu) or machine.upper() == (t.gpu or "").upper()]
            if not tools:
                raise InvalidInput(f"No deployment of /{preset.command} runs on {machine[:40]!r}.")
        takes = [spec.name for spec in tools[0].inputs]
        merged = preset.inputs({**inputs, **dict.fromkeys(files or {}, "")}, wanted, takes=takes)
        merged = {k: v for k, v in merged.items() if k not in (files or {})}
        ids = [t.id for t in tools]
        busy: dict[str, int] = {}
        if preset.selection is Selection.LEAST_BUSY:
            async with self.uow() as uow:
                busy = await uow.generations.count_live_by_tool()
        ordered = order(tuple(ids), preset.selection, turn=next(self._turns[preset.command]), busy=busy)
        return GenerationRequest(
            account_id=account_id,
            tool_ref=ordered[0],
            fallbacks=tuple(ordered[1:]),
            inputs=merged,
            files=dict(files or {}),
            **fields,
        )
