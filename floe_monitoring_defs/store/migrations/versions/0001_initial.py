"""Initial monitoring store schema: the spec's six tables (section 8.1) plus schema baselines.

Hand-written; self-contained (does not import `tables.py`), so later edits to the metadata cannot
change what this revision creates. A test checks that the result matches the metadata.

Revision ID: 0001
Revises:
Create Date: 2026-05-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _uuid() -> sa.types.TypeEngine[str]:
    return sa.Uuid(as_uuid=False)


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contract_check_results",
        sa.Column("id", _uuid(), nullable=False),
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("check_type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("checked_at", _ts(), nullable=False, server_default=sa.func.now()),
        sa.Column("details", _json(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("violation", _json(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False, server_default=sa.func.now()),
        sa.Column("table_name", sa.String(512), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_contract_check_results"),
    )
    op.create_index("idx_check_results_contract", "contract_check_results", ["contract_name", "checked_at"])
    op.create_index("idx_check_results_type", "contract_check_results", ["check_type", "checked_at"])

    op.create_table(
        "contract_violations",
        sa.Column("id", _uuid(), nullable=False),
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("contract_version", sa.String(50), nullable=False),
        sa.Column("violation_type", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("element", sa.String(255), nullable=True),
        sa.Column("expected_value", sa.Text(), nullable=True),
        sa.Column("actual_value", sa.Text(), nullable=True),
        sa.Column("affected_consumers", _json(), nullable=False, server_default=sa.text("'[]'")),
        sa.Column("detected_at", _ts(), nullable=False, server_default=sa.func.now()),
        sa.Column("check_result_id", _uuid(), nullable=True),
        sa.Column("check_duration_seconds", sa.Float(), nullable=False),
        sa.Column("metadata", _json(), nullable=False, server_default=sa.text("'{}'")),
        sa.PrimaryKeyConstraint("id", name="pk_contract_violations"),
        sa.ForeignKeyConstraint(
            ["check_result_id"],
            ["contract_check_results.id"],
            name="fk_violations_check_result",
            ondelete="SET NULL",
        ),
    )
    op.create_index("idx_violations_contract", "contract_violations", ["contract_name", "detected_at"])
    op.create_index("idx_violations_severity", "contract_violations", ["severity", "detected_at"])
    op.create_index("idx_violations_type", "contract_violations", ["contract_name", "violation_type", "detected_at"])

    op.create_table(
        "contract_sla_status",
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("check_type", sa.String(50), nullable=False),
        sa.Column("current_value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("compliance_pct", sa.Float(), nullable=False),
        sa.Column("last_check_time", _ts(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("violation_count_24h", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("contract_name", "check_type", name="pk_contract_sla_status"),
    )

    op.create_table(
        "contract_daily_aggregates",
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("check_type", sa.String(50), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("total_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("passed_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("failed_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("error_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("skipped_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("avg_duration_seconds", sa.Float(), nullable=True),
        sa.Column("min_quality_score", sa.Float(), nullable=True),
        sa.Column("max_quality_score", sa.Float(), nullable=True),
        sa.Column("avg_quality_score", sa.Float(), nullable=True),
        sa.Column("uptime_pct", sa.Float(), nullable=True),
        sa.Column("violation_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("contract_name", "check_type", "date", name="pk_contract_daily_aggregates"),
    )

    op.create_table(
        "registered_contracts",
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("contract_version", sa.String(50), nullable=False),
        sa.Column("contract_data", _json(), nullable=False),
        sa.Column("connection_config", _json(), nullable=False),
        sa.Column("monitoring_overrides", _json(), nullable=True),
        sa.Column("registered_at", _ts(), nullable=False, server_default=sa.func.now()),
        sa.Column("last_check_times", _json(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.PrimaryKeyConstraint("contract_name", name="pk_registered_contracts"),
    )

    op.create_table(
        "alert_dedup_state",
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("violation_type", sa.String(50), nullable=False),
        sa.Column("last_alerted_at", _ts(), nullable=False),
        sa.Column("alert_count_window", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("window_start", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("contract_name", "violation_type", name="pk_alert_dedup_state"),
    )

    op.create_table(
        "contract_schema_baselines",
        sa.Column("contract_name", sa.String(255), nullable=False),
        sa.Column("table_name", sa.String(512), nullable=False),
        sa.Column("column_name", sa.String(255), nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("contract_name", "table_name", "column_name", name="pk_contract_schema_baselines"),
    )


def downgrade() -> None:
    op.drop_table("contract_schema_baselines")
    op.drop_table("alert_dedup_state")
    op.drop_table("registered_contracts")
    op.drop_table("contract_daily_aggregates")
    op.drop_table("contract_sla_status")
    op.drop_index("idx_violations_type", table_name="contract_violations")
    op.drop_index("idx_violations_severity", table_name="contract_violations")
    op.drop_index("idx_violations_contract", table_name="contract_violations")
    op.drop_table("contract_violations")
    op.drop_index("idx_check_results_type", table_name="contract_check_results")
    op.drop_index("idx_check_results_contract", table_name="contract_check_results")
    op.drop_table("contract_check_results")
