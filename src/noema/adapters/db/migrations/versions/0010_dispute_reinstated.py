"""payments.dispute_reinstated_minor: what a dispute won gave back, so its credit is given back once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispute_reinstated_minor", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_check_constraint(op.f("ck_payments_reinstated_not_negative"), "dispute_reinstated_minor >= 0")


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_payments_reinstated_not_negative"), type_="check")
        batch_op.drop_column("dispute_reinstated_minor")
