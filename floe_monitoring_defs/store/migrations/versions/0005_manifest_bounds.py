"""Manifest bounds: the column bounds read from each Iceberg manifest, kept across runs by manifest path.

Manifests and manifest lists are immutable, so a freshness (or retention) run reads only those it has not
seen (sources/iceberg.py `ManifestBoundsCache`); `used_at` lets the retention cleanup prune files no table
reads any more. Also indexes check results by (contract, check type, time): the SLA refresh and the "resolved"
lookup select by that key, and SQLite (no statistics) otherwise scanned every result of the type. Hand-written
and self-contained, like 0001.

On a large PostgreSQL store the CREATE INDEX holds a write lock on the check results while it builds; run
`floe db upgrade` in a quiet moment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "manifest_bounds",
        sa.Column("manifest_path", sa.String(2048), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("manifest_path", name="pk_manifest_bounds"),
    )
    op.create_index("idx_manifest_bounds_used_at", "manifest_bounds", ["used_at"])
    op.create_index("idx_check_results_key", "contract_check_results", ["contract_name", "check_type", "checked_at"])


def downgrade() -> None:
    op.drop_index("idx_check_results_key", table_name="contract_check_results")
    op.drop_index("idx_manifest_bounds_used_at", table_name="manifest_bounds")
    op.drop_table("manifest_bounds")
