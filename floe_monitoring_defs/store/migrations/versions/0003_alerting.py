"""Alerting: the outbox, per-channel deliveries and their attempts, incidents, dedup severity.

Hand-written and self-contained, like 0001.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid(as_uuid=False)


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("alert_dedup_state") as batch:
        batch.add_column(sa.Column("last_severity", sa.String(20), nullable=True))
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "alert_outbox",
        sa.Column("id", UUID, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("violation_type", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("event", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=False),
        _ts("created_at"),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        _ts("routed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_outbox"),
    )
    op.create_index("idx_alert_outbox_state", "alert_outbox", ["state", "created_at"])
    op.create_index("idx_alert_outbox_contract", "alert_outbox", ["contract_name", "routed_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", UUID, nullable=False),
        sa.Column("outbox_id", UUID, nullable=False),
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("delivered_at", nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["alert_outbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.UniqueConstraint("outbox_id", "channel", name="uq_alert_deliveries_outbox_channel"),
    )
    op.create_index("idx_alert_deliveries_due", "alert_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "alert_delivery_attempts",
        sa.Column("id", UUID, nullable=False),
        sa.Column("delivery_id", UUID, nullable=False),
        sa.Column("channel", sa.String(255), nullable=False),
        _ts("attempted_at"),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["alert_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_delivery_attempts"),
    )
    op.create_index("idx_alert_delivery_attempts_delivery", "alert_delivery_attempts", ["delivery_id", "attempted_at"])
    op.create_table(
        "incidents",
        sa.Column("id", UUID, nullable=False),
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("violation_type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("violation_count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("last_violation_id", UUID, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index(
        "uq_incidents_open",
        "incidents",
        ["contract_name", "violation_type"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("uq_incidents_open", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("idx_alert_delivery_attempts_delivery", table_name="alert_delivery_attempts")
    op.drop_table("alert_delivery_attempts")
    op.drop_index("idx_alert_deliveries_due", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("idx_alert_outbox_contract", table_name="alert_outbox")
    op.drop_index("idx_alert_outbox_state", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    with op.batch_alter_table("alert_dedup_state") as batch:
        batch.drop_column("last_seen_at")
        batch.drop_column("last_severity")
