"""SQLAlchemy Core tables of the monitoring store (spec section 8.1), portable to SQLite and PostgreSQL.

The Alembic migrations in `store/migrations/versions` create exactly these tables; a test compares
the migrated database with this metadata. Datetimes are stored and returned as timezone-aware UTC,
ids are string UUIDs, JSON columns are JSONB on PostgreSQL and JSON (text) on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from floe_monitoring_defs.models import ensure_utc

NAME_LENGTH = 255
TYPE_LENGTH = 50
STATUS_LENGTH = 20
VERSION_LENGTH = 50
TABLE_NAME_LENGTH = 512


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that stores UTC and always returns timezone-aware UTC datetimes.

    A naive datetime given as input is taken to be UTC. SQLite has no time zone support: values are
    stored there as naive UTC and get UTC attached when read back.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        value = ensure_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is stored as SQL NULL (not JSON `null`)."""
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def uuid_type() -> sa.types.TypeEngine[str]:
    """Native UUID on PostgreSQL, CHAR(32) on SQLite; string UUIDs in Python."""
    return sa.Uuid(as_uuid=False)


# Primary keys get the same names as in the migration (pk_<table>).
metadata = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s"})

contract_check_results = sa.Table(
    "contract_check_results",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("contract_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("check_type", sa.String(TYPE_LENGTH), nullable=False),
    sa.Column("status", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("duration_seconds", sa.Float(), nullable=False),
    sa.Column("checked_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Column("details", json_type(), nullable=False, server_default=sa.text("'{}'")),
    sa.Column("violation", json_type(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    # Not in the spec DDL: a contract can describe several tables.
    sa.Column("table_name", sa.String(TABLE_NAME_LENGTH), nullable=True),
    sa.Index("idx_check_results_contract", "contract_name", "checked_at"),
    sa.Index("idx_check_results_type", "check_type", "checked_at"),
    # Migration 0004: the day's aggregation and the retention cleanup select by time alone.
    sa.Index("idx_check_results_checked_at", "checked_at"),
    # Migration 0005: the SLA refresh and the "resolved" lookup select by (contract, type) over time. Without it
    # SQLite (no statistics) picked the type index and scanned every result of that type, for every check.
    sa.Index("idx_check_results_key", "contract_name", "check_type", "checked_at"),
)

contract_violations = sa.Table(
    "contract_violations",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("contract_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("contract_version", sa.String(VERSION_LENGTH), nullable=False),
    sa.Column("violation_type", sa.String(TYPE_LENGTH), nullable=False),
    sa.Column("severity", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("element", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("expected_value", sa.Text(), nullable=True),
    sa.Column("actual_value", sa.Text(), nullable=True),
    sa.Column("affected_consumers", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("detected_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Column(
        "check_result_id",
        uuid_type(),
        sa.ForeignKey(
            "contract_check_results.id",
            name="fk_violations_check_result",
            ondelete="SET NULL",
        ),
        nullable=True,
    ),
    # Not in the spec DDL: the rest of ContractViolationEvent, so a stored row is a whole event.
    sa.Column("check_duration_seconds", sa.Float(), nullable=False),
    sa.Column("metadata", json_type(), nullable=False, server_default=sa.text("'{}'")),
    sa.Index("idx_violations_contract", "contract_name", "detected_at"),
    sa.Index("idx_violations_severity", "severity", "detected_at"),
    sa.Index("idx_violations_type", "contract_name", "violation_type", "detected_at"),
    # Migration 0004: retention selects by time alone, and deleting a check result nulls the violations that
    # point at it (ON DELETE SET NULL), which without this index is a scan of the violations per result.
    sa.Index("idx_violations_detected_at", "detected_at"),
    sa.Index("idx_violations_check_result", "check_result_id"),
)

contract_sla_status = sa.Table(
    "contract_sla_status",
    metadata,
    sa.Column("contract_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("check_type", sa.String(TYPE_LENGTH), primary_key=True),
    sa.Column("current_value", sa.Float(), nullable=False),
    sa.Column("threshold", sa.Float(), nullable=False),
    sa.Column("compliance_pct", sa.Float(), nullable=False),
    sa.Column("last_check_time", UTCDateTime(), nullable=True),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("violation_count_24h", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("window_start", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
)

contract_daily_aggregates = sa.Table(
    "contract_daily_aggregates",
    metadata,
    sa.Column("contract_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("check_type", sa.String(TYPE_LENGTH), primary_key=True),
    sa.Column("date", sa.Date(), primary_key=True),
    sa.Column("total_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("passed_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("failed_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("error_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    # Not in the spec DDL: SKIPPED is a CheckStatus too.
    sa.Column("skipped_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("avg_duration_seconds", sa.Float(), nullable=True),
    sa.Column("min_quality_score", sa.Float(), nullable=True),
    sa.Column("max_quality_score", sa.Float(), nullable=True),
    sa.Column("avg_quality_score", sa.Float(), nullable=True),
    sa.Column("uptime_pct", sa.Float(), nullable=True),
    sa.Column("violation_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
    # Not in the spec DDL (migration 0004, written by the `contract_sla_daily` asset). Violations by
    # severity; what the cadence expected that day (NULL: unknown, e.g. a contract no longer loaded) and
    # the coverage min(100, executed / expected); the interval and SLA target in force; the counts behind
    # the averages (so days add up exactly over any window); MTTD evidence: detections = FAIL results
    # right after a PASS of the same contract, type and table, and the sum of their PASS -> FAIL delays.
    sa.Column("info_violations", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("warning_violations", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("error_violations", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("critical_violations", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("expected_checks", sa.Integer(), nullable=True),
    sa.Column("coverage_pct", sa.Float(), nullable=True),
    sa.Column("interval_minutes", sa.Integer(), nullable=True),
    sa.Column("target_pct", sa.Float(), nullable=True),
    sa.Column("quality_scored_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("ping_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("ping_ok_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("detections", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("detection_seconds", sa.Float(), nullable=False, server_default=sa.text("0")),
    sa.Column("computed_at", UTCDateTime(), nullable=True),
    sa.Index("idx_daily_aggregates_date", "date"),
)

# Not in the spec: the days `contract_daily_aggregates` holds (a day may have no rows at all), so a report
# knows which days to read from the aggregates and which (today, or a day not yet aggregated) from raw rows.
contract_aggregated_days = sa.Table(
    "contract_aggregated_days",
    metadata,
    sa.Column("date", sa.Date(), primary_key=True),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.Column("row_count", sa.Integer(), nullable=False),
)

registered_contracts = sa.Table(
    "registered_contracts",
    metadata,
    sa.Column("contract_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("contract_version", sa.String(VERSION_LENGTH), nullable=False),
    sa.Column("contract_data", json_type(), nullable=False),
    sa.Column("connection_config", json_type(), nullable=False),
    sa.Column("monitoring_overrides", json_type(), nullable=True),
    sa.Column("registered_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Column("last_check_times", json_type(), nullable=False, server_default=sa.text("'{}'")),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
)

alert_dedup_state = sa.Table(
    "alert_dedup_state",
    metadata,
    sa.Column("contract_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("violation_type", sa.String(TYPE_LENGTH), primary_key=True),
    sa.Column("last_alerted_at", UTCDateTime(), nullable=False),
    sa.Column("alert_count_window", sa.Integer(), nullable=False, server_default=sa.text("1")),
    sa.Column("window_start", UTCDateTime(), nullable=False),
    # Not in the spec DDL: the severity last alerted (an escalation bypasses dedup) and when the
    # violation was last seen (a repeat within the window of the previous one is the same episode).
    sa.Column("last_severity", sa.String(STATUS_LENGTH), nullable=True),
    sa.Column("last_seen_at", UTCDateTime(), nullable=True),
)

# Not in the spec: the Iceberg field id each contract column had when first seen, so that a later
# rename is recognised by field id instead of being reported as a drop plus an add.
contract_schema_baselines = sa.Table(
    "contract_schema_baselines",
    metadata,
    sa.Column("contract_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("table_name", sa.String(TABLE_NAME_LENGTH), primary_key=True),
    sa.Column("column_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("field_id", sa.Integer(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
)

REASON_LENGTH = 64

# Not in the spec DDL: one row per availability ping, the history the rolling uptime is computed from.
contract_availability_pings = sa.Table(
    "contract_availability_pings",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("contract_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("table_name", sa.String(TABLE_NAME_LENGTH), nullable=False),
    sa.Column("checked_at", UTCDateTime(), nullable=False),
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("reason", sa.String(REASON_LENGTH), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Index("idx_availability_pings_table", "contract_name", "table_name", "checked_at"),
    sa.Index("idx_availability_pings_checked_at", "checked_at"),  # migration 0004: retention
)

# The alert outbox: a violation enters it in the same transaction as its check result, so no alert is
# lost between detection and delivery. `state`: pending (not yet routed), routed, suppressed, no_route.
alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),  # the violation id for violations: the idempotency key
    sa.Column("kind", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("contract_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("violation_type", sa.String(TYPE_LENGTH), nullable=False),
    sa.Column("severity", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("event", json_type(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("state", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("reason", sa.String(REASON_LENGTH), nullable=True),
    sa.Column("routed_at", UTCDateTime(), nullable=True),
    # Migration 0006: the contract's own alert settings (routing rules, dedup / renotify / rate-limit windows)
    # resolved when the entry was written; NULL: the global `alerts` config decides it.
    sa.Column("alert_settings", json_type(), nullable=True),
    sa.Index("idx_alert_outbox_state", "state", "created_at"),
    sa.Index("idx_alert_outbox_contract", "contract_name", "routed_at"),
)

# One row per (alert, channel): retried with backoff until delivered.
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("outbox_id", uuid_type(), sa.ForeignKey("alert_outbox.id", ondelete="CASCADE"), nullable=False),
    sa.Column("channel", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("contract_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("state", sa.String(STATUS_LENGTH), nullable=False),  # pending | delivered
    sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("outbox_id", "channel", name="uq_alert_deliveries_outbox_channel"),
    sa.Index("idx_alert_deliveries_due", "state", "next_attempt_at"),
)

# Every delivery attempt: channel, status, error, latency (history for operators).
alert_delivery_attempts = sa.Table(
    "alert_delivery_attempts",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("delivery_id", uuid_type(), sa.ForeignKey("alert_deliveries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("channel", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("attempted_at", UTCDateTime(), nullable=False),
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("status", sa.String(REASON_LENGTH), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Index("idx_alert_delivery_attempts_delivery", "delivery_id", "attempted_at"),
)

# One open incident per contract + violation type (FR-042/043); repeats update it, recovery resolves it.
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("contract_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("violation_type", sa.String(TYPE_LENGTH), nullable=False),
    sa.Column("status", sa.String(STATUS_LENGTH), nullable=False),  # open | resolved
    sa.Column("priority", sa.String(8), nullable=False),  # P1..P4
    sa.Column("severity", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("violation_count", sa.Integer(), nullable=False, server_default=sa.text("1")),
    sa.Column("last_violation_id", uuid_type(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.Index(
        "uq_incidents_open",
        "contract_name",
        "violation_type",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)

# Column bounds of Iceberg manifests (and the manifest paths of manifest lists), by file path (migration 0005):
# those files are immutable, so what was read from one once holds for every later run (sources/iceberg.py
# `ManifestBoundsCache`). `summary` is compact JSON; `used_at` (refreshed at most daily) lets retention prune
# files no table reads any more.
MANIFEST_PATH_LENGTH = 2048
manifest_bounds = sa.Table(
    "manifest_bounds",
    metadata,
    sa.Column("manifest_path", sa.String(MANIFEST_PATH_LENGTH), primary_key=True),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=False),
    sa.Index("idx_manifest_bounds_used_at", "used_at"),
)

# The data-changing commits of each monitored Iceberg table, from its snapshot summaries (migration 0007): the
# history the `volume` check learns from, kept past snapshot expiry. `table_key` is `<catalog>/<table identifier>`;
# `table_uuid` tells a dropped and re-created table (a new history) from the old one.
table_commits = sa.Table(
    "table_commits",
    metadata,
    sa.Column("table_key", sa.String(TABLE_NAME_LENGTH), primary_key=True),
    sa.Column("snapshot_id", sa.BigInteger(), primary_key=True),
    sa.Column("table_uuid", sa.String(64), nullable=False),
    sa.Column("committed_at", UTCDateTime(), nullable=False),
    sa.Column("operation", sa.String(STATUS_LENGTH), nullable=False),
    sa.Column("added_records", sa.BigInteger(), nullable=True),
    sa.Column("deleted_records", sa.BigInteger(), nullable=True),
    sa.Column("total_records", sa.BigInteger(), nullable=True),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Index("idx_table_commits_key_time", "table_key", "committed_at"),
    sa.Index("idx_table_commits_time", "committed_at"),
)

# The fitted model of each table's `volume` check (JSON), refitted every `anomaly.refit_hours` (migration 0007).
volume_models = sa.Table(
    "volume_models",
    metadata,
    sa.Column("table_key", sa.String(TABLE_NAME_LENGTH), primary_key=True),
    sa.Column("table_uuid", sa.String(64), nullable=False),
    sa.Column("fitted_at", UTCDateTime(), nullable=False),
    sa.Column("model", sa.Text(), nullable=False),
)
