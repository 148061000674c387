"""The self-hosted ComfyUI backend's runs, kept in the database so Noema's waiting line survives a restart.

One ``kv_store`` row per run not yet ended (key ``comfyui_run:<run id>``): its workflow, inputs,
generation, place in the line (``position``: nanoseconds when it was queued) and, once sent, the
server and prompt id. Sending claims the row under its lock, so a run is sent once even when two
processes restored the same line.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from noema.adapters.db.tables import kv_store

PREFIX = "comfyui_run:"
KV = kv_store.c


class SqlRunLine:
    """The ComfyUI runs not yet ended, in ``kv_store``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, run_id: str, record: dict[str, Any]) -> None:
        """Remember a new run at the end of the line."""
        value = {**record, "position": time.time_ns(), "server": None, "prompt_id": None}
        async with self.engine.begin() as conn:
            await conn.execute(kv_store.insert().values(key=PREFIX + run_id, value=value, updated_at=_now()))

    async def claim(self, run_id: str, *, server: str, prompt_id: str) -> bool:
        """Mark the run sent to ``server`` as ``prompt_id``; False when it has ended or another prompt has it."""
        async with self.engine.begin() as conn:
            found = await conn.execute(select(KV.value).where(KV.key == PREFIX + run_id).with_for_update())
            value = found.scalar_one_or_none()
            if not isinstance(value, dict) or value.get("prompt_id") not in (None, prompt_id):
                return False
            value = {**value, "server": server, "prompt_id": prompt_id}
            await conn.execute(
                kv_store.update().where(KV.key == PREFIX + run_id).values(value=value, updated_at=_now())
            )
        return True

    async def release(self, run_id: str, *, resubmitted: bool) -> None:
        """The run is back in the line (its server lost it or could not take it)."""
        async with self.engine.begin() as conn:
            found = await conn.execute(select(KV.value).where(KV.key == PREFIX + run_id).with_for_update())
            value = found.scalar_one_or_none()
            if isinstance(value, dict):
                value = {**value, "server": None, "prompt_id": None, "resubmitted": resubmitted}
                await conn.execute(
                    kv_store.update().where(KV.key == PREFIX + run_id).values(value=value, updated_at=_now())
                )

    async def remove(self, run_id: str) -> None:
        """The run ended: forget it."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(kv_store).where(KV.key == PREFIX + run_id))

    async def load(self) -> list[tuple[str, dict[str, Any]]]:
        """Every run not yet ended, first come first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(KV.key, KV.value).where(KV.key.startswith(PREFIX)))).all()
        found = [(key.removeprefix(PREFIX), value) for key, value in rows if isinstance(value, dict)]
        return sorted(found, key=lambda item: int(item[1].get("position") or 0))


def _now() -> datetime:
    return datetime.now(UTC)
