"""Running a preset: its variant for the features asked for, its defaults, and the order to try tools in.

Presets come from the operator's file (read-only here) and from the internal API (stored, so every
replica sees them); a stored preset may not take a file preset's name.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from noema.domain.errors import Conflict, InvalidInput, ToolNotFound
from noema.domain.presets import Preset, Selection, order, preset_from_json
from noema.domain.tools import ACCOUNT, ToolCaller
from noema.ports import Clock, UnitOfWork, UnitOfWorkFactory
from noema.services.catalog import Catalog
from noema.services.generations import GenerationRequest

STORED_KEY = "presets.defined"


class PresetBook:
    """The operator's presets over the catalog; round robin turns are kept per process."""

    def __init__(
        self, presets: Mapping[str, Preset], *, catalog: Catalog, uow_factory: UnitOfWorkFactory, clock: Clock
    ) -> None:
        self.from_file, self.catalog, self.uow_factory, self.clock = dict(presets), catalog, uow_factory, clock
        self._turns: defaultdict[str, Iterator[int]] = defaultdict(itertools.count)

    async def all(self) -> dict[str, Preset]:
        """Every preset: the file's and the stored ones."""
        stored = await self._stored()
        return {**{name: preset_from_json(name, body) for name, body in stored.items()}, **self.from_file}

    async def find(self, command: str) -> Preset | None:
        """The preset called ``command`` (with or without a slash), or None."""
        return (await self.all()).get(command.strip().lstrip("/").lower())

    async def get(self, command: str) -> Preset:
        """The preset called ``command``; ToolNotFound otherwise."""
        preset = await self.find(command)
        if preset is None:
            raise ToolNotFound(f"There is no preset called {command[:40]!r}.")
        return preset

    async def define(self, command: str, body: Any) -> Preset:
        """Store a preset from the internal API (checked like the file's; a file preset's name is taken)."""
        if command in self.from_file:
            raise Conflict(f"The preset {command!r} comes from NOEMA_PRESETS_FILE; change it there.")
        try:
            preset = preset_from_json(command, body)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        async with self.uow_factory() as uow:
            stored = await self._locked(uow)
            stored[command] = body
            await uow.kv.put(STORED_KEY, stored, now=self.clock.now())
            await uow.commit()
        return preset

    async def remove(self, command: str) -> None:
        """Delete a stored preset."""
        async with self.uow_factory() as uow:
            stored = await self._locked(uow)
            if stored.pop(command, None) is None:
                raise ToolNotFound(f"There is no stored preset called {command[:40]!r}.")
            await uow.kv.put(STORED_KEY, stored, now=self.clock.now())
            await uow.commit()

    async def _locked(self, uow: UnitOfWork) -> dict[str, Any]:
        """The stored presets, their row locked: two definitions at once both land, one after the other."""
        stored = await uow.kv.get_for_update(STORED_KEY, default={}, now=self.clock.now())
        return dict(stored) if isinstance(stored, dict) else {}

    async def _stored(self) -> dict[str, Any]:
        async with self.uow_factory() as uow:
            stored = await uow.kv.get(STORED_KEY)
        return dict(stored) if isinstance(stored, dict) else {}

    async def request(
        self,
        command: str,
        features: Iterable[str],
        *,
        account_id: str,
        inputs: Mapping[str, Any],
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        machine: str | None = None,
        caller: ToolCaller = ACCOUNT,
        **fields: Any,
    ) -> GenerationRequest:
        """The generation request of a preset run: the first tool to try, the fallbacks, the inputs.

        ``machine`` (a machine id or a GPU name) keeps only the candidates that run there. Candidates
        follow the visibility rule as the caller through a preset: hidden ones run, admin-only ones
        are as unknown as missing ones.
        """
        preset = await self.get(command)
        wanted = [f.strip().lower() for f in features if f.strip()]
        caller = dataclasses.replace(caller, via_preset=True)
        tools = [await self.catalog.find(ref, caller=caller) for ref in preset.route(wanted)]
        if machine:
            tools = [t for t in tools if machine in (t.machine_id, t.gpu) or machine.upper() == (t.gpu or "").upper()]
            if not tools:
                raise InvalidInput(f"No deployment of /{preset.command} runs on {machine[:40]!r}.")
        takes = [spec.name for spec in tools[0].inputs]
        merged = preset.inputs({**inputs, **dict.fromkeys(files or {}, "")}, wanted, takes=takes)
        merged = {k: v for k, v in merged.items() if k not in (files or {})}
        busy: dict[str, int] = {}
        if preset.selection is Selection.LEAST_BUSY:
            async with self.uow_factory() as uow:
                busy = await uow.generations.count_live_by_tool()
        ids = tuple(t.id for t in tools)
        ordered = order(ids, preset.selection, turn=next(self._turns[preset.command]), busy=busy)
        return GenerationRequest(
            account_id=account_id,
            tool_ref=ordered[0],
            fallbacks=tuple(ordered[1:]),
            inputs=merged,
            files=dict(files or {}),
            caller=caller,
            **fields,
        )
