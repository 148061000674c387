"""who asked for each link code, and the wrong link codes entered (throttling that every replica sees).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import noema.adapters.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("link_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issued_by", sa.String(length=32), nullable=True))
    op.create_table(
        "link_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("failed_at", noema.adapters.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_failures")),
    )
    with op.batch_alter_table("link_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_failures_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_link_failures_failed_at"), ["failed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("link_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_failures_failed_at"))
        batch_op.drop_index(batch_op.f("ix_link_failures_account_id"))
    op.drop_table("link_failures")
    with op.batch_alter_table("link_codes", schema=None) as batch_op:
        batch_op.drop_column("issued_by")
