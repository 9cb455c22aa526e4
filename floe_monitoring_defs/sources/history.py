"""A table's history from Iceberg metadata: when data changed, how old the table is, and how far back its
data reaches. Snapshot logs and manifest lower bounds answer all three without opening a data file; a data
file is scanned (one column) only when its manifest entry carries no lower bound for the column.

Used by the SLA kinds that promise something over time: `frequency`, `timeOfAvailability`, `retention`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pyiceberg.table import Table

from floe_monitoring_defs.sources.iceberg import data_snapshots, snapshot_time, time_column_extreme

log = logging.getLogger(__name__)


def data_commits(table: Table) -> list[datetime]:
    """Commit times of the snapshots on the current ancestry that changed data, newest first.

    Compactions (`replace`) rewrite files without new data and are left out; the current ancestry, not the
    whole snapshot log, is what readers see (a rolled-back commit does not count).
    """
    return [snapshot_time(snap.timestamp_ms) for snap in data_snapshots(table)]


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
