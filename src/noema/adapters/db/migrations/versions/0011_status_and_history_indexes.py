"""indexes for reads that must stay fast at a million generations: live runs, history pages, global lists.

A partial index holds only live runs, so an account's status reads a few rows however long its history;
history pages walk (account, requested_at, id) in order; admin lists of all generations and accounts
walk (time, id) instead of sorting the table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-15 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Spelled exactly as the queries spell them (sorted), so SQLite matches the partial index too.
_LIVE = "status IN ('pending', 'queued', 'running', 'started', 'submitted', 'uploading')"


def upgrade() -> None:
    op.create_index(
        "ix_generations_account_requested_id", "generations", ["account_id", "requested_at", "id"], unique=False
    )
    op.drop_index("ix_generations_account_requested", table_name="generations")
    op.create_index(
        "ix_generations_live_account",
        "generations",
        ["account_id", "requested_at", "id"],
        unique=False,
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )
    op.create_index("ix_generations_requested_id", "generations", ["requested_at", "id"], unique=False)
    op.create_index("ix_accounts_created_id", "accounts", ["created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_accounts_created_id", table_name="accounts")
    op.drop_index("ix_generations_requested_id", table_name="generations")
    op.drop_index("ix_generations_live_account", table_name="generations")
    op.create_index("ix_generations_account_requested", "generations", ["account_id", "requested_at"], unique=False)
    op.drop_index("ix_generations_account_requested_id", table_name="generations")
