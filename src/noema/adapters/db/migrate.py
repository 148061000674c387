"""Running Alembic migrations from inside Noema (on start, ``noema migrate``, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
#: Replicas starting together on PostgreSQL take turns: one upgrades, the others find it done.
_ADVISORY_LOCK = 0x6E6F656D61


def alembic_config(url: str = "") -> Config:
    """An Alembic Config pointing at Noema's migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    """The newest migration shipped with this version of Noema."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database schema to the newest migration."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


@dataclass(frozen=True)
class SchemaCheck:
    """Whether the database answers and its schema is at the newest migration (``/readyz``)."""

    engine: AsyncEngine

    async def problem(self) -> tuple[str | None, str | None]:
        """(why the database is not ready, or None; the migration it is at)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current = await current_revision(self.engine)
        except Exception as exc:  # any database failure means "not ready", never a 500 with a traceback
            return f"database unreachable ({type(exc).__name__})", None
        head = head_revision()
        if current != head:
            return f"migrations at {current}, need {head}", current
        return None, current
