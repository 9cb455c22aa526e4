"""SLA compliance: the rest of the daily aggregates, the aggregated-days ledger, time indexes for retention.

Adds to `contract_daily_aggregates` the violations by severity, expected checks and coverage, the interval
and SLA target in force, the counts behind the averages, MTTD evidence and `computed_at`; creates
`contract_aggregated_days`; indexes check results, violations and pings by time alone (the day's
aggregation and the retention cleanup select by time over every contract), and violations by check result
(deleting old check results nulls the violations' reference to them). Hand-written, like 0001.

On a large PostgreSQL store the CREATE INDEX statements hold a write lock on their tables while
they build; run `floe db upgrade` in a quiet moment.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = (
    "info_violations",
    "warning_violations",
    "error_violations",
    "critical_violations",
    "quality_scored_checks",
    "ping_checks",
    "ping_ok_checks",
    "detections",
)


def upgrade() -> None:
    with op.batch_alter_table("contract_daily_aggregates") as batch:
        for name in _COUNTS:
            batch.add_column(sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("expected_checks", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("coverage_pct", sa.Float(), nullable=True))
        batch.add_column(sa.Column("interval_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("target_pct", sa.Float(), nullable=True))
        batch.add_column(sa.Column("detection_seconds", sa.Float(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("idx_daily_aggregates_date", "contract_daily_aggregates", ["date"])
    op.create_table(
        "contract_aggregated_days",
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("date", name="pk_contract_aggregated_days"),
    )
    op.create_index("idx_check_results_checked_at", "contract_check_results", ["checked_at"])
    op.create_index("idx_violations_detected_at", "contract_violations", ["detected_at"])
    op.create_index("idx_violations_check_result", "contract_violations", ["check_result_id"])
    op.create_index("idx_availability_pings_checked_at", "contract_availability_pings", ["checked_at"])


def downgrade() -> None:
    op.drop_index("idx_availability_pings_checked_at", table_name="contract_availability_pings")
    op.drop_index("idx_violations_check_result", table_name="contract_violations")
    op.drop_index("idx_violations_detected_at", table_name="contract_violations")
    op.drop_index("idx_check_results_checked_at", table_name="contract_check_results")
    op.drop_table("contract_aggregated_days")
    op.drop_index("idx_daily_aggregates_date", table_name="contract_daily_aggregates")
    with op.batch_alter_table("contract_daily_aggregates") as batch:
        for name in (
            "computed_at",
            "detection_seconds",
            "target_pct",
            "interval_minutes",
            "coverage_pct",
            "expected_checks",
            *reversed(_COUNTS),
        ):
            batch.drop_column(name)
