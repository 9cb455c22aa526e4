"""A table's history from Iceberg metadata: when data changed, how old the table is, and how far back its
data reaches. Snapshot logs and manifest lower bounds answer all three without opening a data file; a data
file is scanned (one column) only when its manifest entry carries no lower bound for the column.

Used by the SLA kinds that promise something over time: `frequency`, `timeOfAvailability`, `retention`, and by
the `volume` check, which learns from the record counts of every data-changing snapshot (`commit_history`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot

from floe_monitoring_defs.models import DataCommit
from floe_monitoring_defs.sources.iceberg import data_snapshots, snapshot_time, time_column_extreme

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def data_commits(table: Table) -> list[datetime]:
    """Commit times of the snapshots on the current ancestry that changed data, newest first.

    Compactions (`replace`) rewrite files without new data and are left out; the current ancestry, not the
    whole snapshot log, is what readers see (a rolled-back commit does not count).
    """
    return [snapshot_time(snap.timestamp_ms) for snap in data_snapshots(table)]


def _count(props: dict[str, str], key: str) -> int | None:
    """A record count of a snapshot summary; None when the writer did not write it (or wrote something else)."""
    value = props.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def commit_history(table: Table, since: datetime | None = None, *, include_before: int = 0) -> list[DataCommit]:
    """The data-changing commits on the table's current ancestry, oldest first, from the table metadata alone (no
    manifest list, manifest or data file is opened): snapshot id, commit time, operation and the summary's
    `added-records`, `deleted-records` and `total-records`. Compactions (`replace`) are left out, as a rolled-back
    commit is (it is not on the ancestry). With `since`, the walk stops before it, keeping `include_before` commits
    older than it (the change a commit made to the total rows needs the commit before).

    The walk looks parents up in a dict: pyiceberg's `ancestors_of` scans the snapshot list per step, quadratic in
    the snapshots a table keeps (1,440 for 60 days of hourly appends).
    """
    current = table.current_snapshot()
    if current is None:
        return []
    by_id = {s.snapshot_id: s for s in table.metadata.snapshots}
    since_ms = None if since is None else since.timestamp() * 1000.0
    out: list[DataCommit] = []
    snap: Snapshot | None = current
    seen: set[int] = set()
    while snap is not None and snap.snapshot_id not in seen:
        seen.add(snap.snapshot_id)
        summary = snap.summary
        before = since_ms is not None and snap.timestamp_ms < since_ms
        if before and include_before <= 0:
            break
        op = summary.operation if summary is not None else None
        props = summary.additional_properties if summary is not None else {}
        if op != Operation.REPLACE:  # a snapshot without a summary (format v1) counts as a change of unknown size
            out.append(
                DataCommit(
                    snapshot_id=snap.snapshot_id,
                    committed_at=_EPOCH + timedelta(milliseconds=snap.timestamp_ms),
                    operation=op.value if op is not None else "unknown",
                    added_records=_count(props, "added-records"),
                    deleted_records=_count(props, "deleted-records"),
                    total_records=_count(props, "total-records"),
                )
            )
            include_before -= 1 if before else 0
        parent = snap.parent_snapshot_id
        snap = by_id.get(parent) if parent is not None else None
    out.reverse()
    return out


def table_born(table: Table) -> datetime | None:
    """The earliest time the metadata still knows of the table: its oldest snapshot or snapshot-log entry
    (expired snapshots make this later than the real creation, so the table is at least this old)."""
    times = [s.timestamp_ms for s in table.metadata.snapshots] + [e.timestamp_ms for e in table.metadata.snapshot_log]
    return snapshot_time(min(times)) if times else None


@dataclass(frozen=True)
class OldestReading:
    """The oldest value of a timestamp column, and how it was found."""

    oldest: datetime | None  # None: the table holds no rows
    method: str  # "column_bounds" | "column_scan" | "snapshot"
    files_considered: int = 0
    files_scanned: int = 0


def oldest_value(table: Table, column: str | None) -> OldestReading:
    """min(column) over the live data files, from the manifests' lower bounds; without a column, the oldest
    snapshot still readable.

    Files whose manifest entry has no lower bound for the column are read (that column only) and their
    minimum taken; the evidence says so (`method: column_scan`, `files_scanned`).
    """
    if column is None:
        snaps = [s.timestamp_ms for s in table.metadata.snapshots]
        return OldestReading(snapshot_time(min(snaps)) if snaps else None, "snapshot")
    oldest = time_column_extreme(table, column, newest=False, sla="retention", logger=log)
    return OldestReading(oldest.value, oldest.method, oldest.files_considered, oldest.files_scanned)
