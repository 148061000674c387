"""payments: one row per provider payment, the events applied, and what an account owes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import noema.adapters.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_events",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("received_at", noema.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "event_id", name=op.f("pk_payment_events")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column(
            "provider",
            sa.Enum("stripe", "telegram_stars", name="paymentprovider", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "created",
                "paid",
                "refunded",
                "partially_refunded",
                "disputed",
                "expired",
                "failed",
                name="paymentstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("credit_nanos", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("charge_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.String(length=2000), nullable=True),
        sa.Column("paid_at", noema.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refunded_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("disputed_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("dispute_fee_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("taken_back_nanos", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", noema.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", noema.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "amount_minor > 0 AND credit_nanos >= 0 AND refunded_minor >= 0 AND disputed_minor >= 0"
            " AND dispute_fee_minor >= 0 AND taken_back_nanos >= 0 AND taken_back_nanos <= credit_nanos",
            name=op.f("ck_payments_amounts_in_range"),
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_payments_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("provider", "charge_id", name=op.f("uq_payments_provider_charge_id")),
        sa.UniqueConstraint("provider", "external_id", name=op.f("uq_payments_provider_external_id")),
        sa.UniqueConstraint("provider", "payment_intent_id", name=op.f("uq_payments_provider_payment_intent_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_account_created", ["account_id", "created_at"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owed_nanos", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_check_constraint(op.f("ck_accounts_owed_not_negative"), "owed_nanos >= 0")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_owed_not_negative"), type_="check")
        batch_op.drop_column("owed_nanos")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_account_created")

    op.drop_table("payments")
    op.drop_table("payment_events")
