"""the backend's own run times, and runs stopped when their cost reached the hold.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import noema.adapters.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("run_started_at", noema.adapters.db.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("run_ended_at", noema.adapters.db.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("stopped_at_hold", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("stopped_at_hold")
        batch.drop_column("run_ended_at")
        batch.drop_column("run_started_at")
