"""Availability pings: one row per ping of a contract table (the rolling-uptime history).

Hand-written and self-contained, like 0001.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contract_availability_pings",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("table_name", sa.String(512), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_contract_availability_pings"),
    )
    op.create_index(
        "idx_availability_pings_table",
        "contract_availability_pings",
        ["contract_name", "table_name", "checked_at"],
    )


def downgrade() -> None:
    op.drop_index("idx_availability_pings_table", table_name="contract_availability_pings")
    op.drop_table("contract_availability_pings")
