"""Table commits: the data-changing snapshots of each monitored Iceberg table, kept past snapshot expiry.

The `volume` check (learned volume and cadence thresholds) reads a table's history from its snapshot summaries
and writes each commit here the first time it sees it, so the history it learns from outlives
`expire_snapshots`; `volume_models` keeps each table's fitted model between refits. Commit rows are facts about
immutable snapshots: a write that loses a race to another replica is ignored (ON CONFLICT DO NOTHING).
Hand-written and self-contained, like 0001.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "table_commits",
        sa.Column("table_key", sa.String(512), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=False),
        sa.Column("table_uuid", sa.String(64), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("added_records", sa.BigInteger(), nullable=True),
        sa.Column("deleted_records", sa.BigInteger(), nullable=True),
        sa.Column("total_records", sa.BigInteger(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("table_key", "snapshot_id", name="pk_table_commits"),
    )
    op.create_index("idx_table_commits_key_time", "table_commits", ["table_key", "committed_at"])
    op.create_index("idx_table_commits_time", "table_commits", ["committed_at"])
    op.create_table(
        "volume_models",
        sa.Column("table_key", sa.String(512), nullable=False),
        sa.Column("table_uuid", sa.String(64), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("table_key", name="pk_volume_models"),
    )


def downgrade() -> None:
    op.drop_table("volume_models")
    op.drop_index("idx_table_commits_time", table_name="table_commits")
    op.drop_index("idx_table_commits_key_time", table_name="table_commits")
    op.drop_table("table_commits")
