"""Per-contract alert settings on outbox entries (FR-045).

A contract's `floe.monitoring` `alerts` overrides (its routing rules, dedup, renotify and rate-limit windows)
are resolved when its check records a violation and written with the outbox entry, in the same transaction,
as `alert_settings` (JSON). Every routing pass (eager dispatch, the sensor, `floe alerts dispatch --loop`
replicas that load no contracts) then decides the entry with the settings it carries. NULL: the entry
follows the global `alerts` config of the pass, as every entry did before. Hand-written, like 0001.

Adding a nullable column is a metadata-only change on PostgreSQL and SQLite: no table rewrite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.add_column("alert_outbox", sa.Column("alert_settings", _json(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place (Alembic copies the table).
    with op.batch_alter_table("alert_outbox") as batch:
        batch.drop_column("alert_settings")
