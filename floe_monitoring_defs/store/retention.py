"""Retention: raw monitoring rows past `retention_days` are deleted in batches; aggregates are kept."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from floe_monitoring_defs.models import ensure_utc
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000


@dataclass(frozen=True)
class CleanupResult:
    """Rows the retention cleanup deleted (all older than `cutoff`)."""

    cutoff: datetime
    results_deleted: int
    violations_deleted: int
    pings_deleted: int
    alerts_deleted: int
    manifest_bounds_deleted: int = 0  # cached manifest summaries no run read within the window
    commits_deleted: int = 0  # table commits (the volume check's history) older than the window


class RetentionRepository:
    """Deletes what is older than the retention window, `batch_size` rows per transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def cleanup(self, now: datetime, retention_days: int, batch_size: int = DEFAULT_BATCH_SIZE) -> CleanupResult:
        """Delete raw rows older than `retention_days` before `now`, `batch_size` rows per transaction.

        Violations go first (then no deleted check result leaves a violation to update), then check
        results, availability pings, and alert outbox entries that are settled (routed with every delivery
        done, suppressed, or without a route); their deliveries and attempts go with them. Cached manifest
        bounds no run has read within the window go too, and table commits older than it. Daily
        aggregates, the aggregated-days ledger and incidents are kept.
        """
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        cutoff = ensure_utc(now) - timedelta(days=retention_days)
        v, r, p, o = t.contract_violations, t.contract_check_results, t.contract_availability_pings, t.alert_outbox
        d = t.alert_deliveries
        settled = sa.or_(
            o.c.state.in_(("suppressed", "no_route")),
            sa.and_(o.c.state == "routed", ~sa.exists().where(d.c.outbox_id == o.c.id, d.c.state != "delivered")),
        )
        violations = self._delete_batches("violations", v, v.c.id, [v.c.detected_at < cutoff], batch_size)
        results = self._delete_batches("check results", r, r.c.id, [r.c.checked_at < cutoff], batch_size)
        pings = self._delete_batches("availability pings", p, p.c.id, [p.c.checked_at < cutoff], batch_size)
        alerts = self._delete_batches("alert outbox entries", o, o.c.id, [o.c.created_at < cutoff, settled], batch_size)
        # A manifest a monitored table still refers to is read (and its row marked used) at least daily, so one
        # unread for the whole window belongs to an expired snapshot or an unmonitored table.
        m = t.manifest_bounds
        manifests = self._delete_batches("manifest bounds", m, m.c.manifest_path, [m.c.used_at < cutoff], batch_size)
        tc = t.table_commits
        with self._db.transaction("deleting old table commits", write=True) as conn:
            commits = int(conn.execute(sa.delete(tc).where(tc.c.committed_at < cutoff)).rowcount)
        log.info(
            "retention (%d days, before %s): deleted %d check results, %d violations, %d pings, %d alert entries, "
            "%d manifest bounds, %d table commits",
            retention_days,
            cutoff.isoformat(),
            results,
            violations,
            pings,
            alerts,
            manifests,
            commits,
        )
        return CleanupResult(
            cutoff=cutoff,
            results_deleted=results,
            violations_deleted=violations,
            pings_deleted=pings,
            alerts_deleted=alerts,
            manifest_bounds_deleted=manifests,
            commits_deleted=commits,
        )

    def _delete_batches(
        self, what: str, table: sa.Table, id_col: sa.Column[Any], where: list[sa.ColumnElement[bool]], batch_size: int
    ) -> int:
        deleted = 0
        while True:
            ids = sa.select(id_col).where(*where).limit(batch_size).scalar_subquery()
            with self._db.transaction(f"deleting old {what}", write=True) as conn:
                n = conn.execute(sa.delete(table).where(id_col.in_(ids))).rowcount
            deleted += n
            if n < batch_size:
                return deleted
