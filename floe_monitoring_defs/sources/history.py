"""A table's history from Iceberg metadata: when data changed, how old the table is, and how far back its
data reaches. Snapshot logs and manifest lower bounds answer all three without opening a data file; a data
file is scanned (one column) only when its manifest entry carries no lower bound for the column.

Used by the SLA kinds that promise something over time: `frequency`, `timeOfAvailability`, `retention`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, LessThanOrEqual
from pyiceberg.manifest import ManifestContent
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, ancestors_of
from pyiceberg.types import DateType, TimestampType, TimestamptzType

from floe_monitoring_defs.sources.base import ColumnNotFoundError

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NANO_TYPES = ("timestamp_ns", "timestamptz_ns")


def _at(timestamp_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=timestamp_ms)


def data_commits(table: Table) -> list[datetime]:
    """Commit times of the snapshots on the current ancestry that changed data, newest first.

    Compactions (`replace`) rewrite files without new data and are left out; the current ancestry, not the
    whole snapshot log, is what readers see (a rolled-back commit does not count).
    """
    current = table.current_snapshot()
    if current is None:
        return []
    out = []
    for snap in ancestors_of(current, table.metadata):
        op = snap.summary.operation if snap.summary is not None else None
        if op != Operation.REPLACE:
            out.append(_at(snap.timestamp_ms))
    return out


def table_born(table: Table) -> datetime | None:
    """The earliest time the metadata still knows of the table: its oldest snapshot or snapshot-log entry
    (expired snapshots make this later than the real creation, so the table is at least this old)."""
    times = [s.timestamp_ms for s in table.metadata.snapshots] + [e.timestamp_ms for e in table.metadata.snapshot_log]
    return _at(min(times)) if times else None


@dataclass(frozen=True)
class OldestReading:
    """The oldest value of a timestamp column, and how it was found."""

    oldest: datetime | None  # None: the table holds no rows
    method: str  # "column_bounds" | "column_scan" | "snapshot"
    files_considered: int = 0
    files_scanned: int = 0


def _as_datetime(field_type: Any, value: Any) -> datetime:
    if isinstance(field_type, DateType):
        return _EPOCH + timedelta(days=int(value))
    if str(field_type) in _NANO_TYPES:
        return _EPOCH + timedelta(microseconds=int(value) // 1000)
    return _EPOCH + timedelta(microseconds=int(value))


def _python_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def oldest_value(table: Table, column: str | None) -> OldestReading:
    """min(column) over the live data files, from the manifests' lower bounds; without a column, the oldest
    snapshot still readable.

    Files whose manifest entry has no lower bound for the column are read (that column only) and their
    minimum taken; the evidence says so (`method: column_scan`, `files_scanned`).
    """
    if column is None:
        snaps = [s.timestamp_ms for s in table.metadata.snapshots]
        return OldestReading(_at(min(snaps)) if snaps else None, "snapshot")
    try:
        field = table.schema().find_field(column)
    except ValueError:
        raise ColumnNotFoundError(
            f"column {column!r} named by the retention SLA is not in table {table.name()}"
        ) from None
    ftype = field.field_type
    if not (isinstance(ftype, DateType | TimestampType | TimestamptzType) or str(ftype) in _NANO_TYPES):
        raise ColumnNotFoundError(f"retention column {column!r} has type {ftype}, not a timestamp or date")
    snap = table.current_snapshot()
    if snap is None:
        return OldestReading(None, "column_bounds")
    best: Any = None
    considered = 0
    unbounded = 0
    for manifest in snap.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            data_file = entry.data_file
            if not data_file.record_count:
                continue
            considered += 1
            raw = (data_file.lower_bounds or {}).get(field.field_id)
            if raw is None:
                unbounded += 1
                continue
            value = from_bytes(ftype, raw)  # type: ignore[arg-type]
            best = value if best is None or value < best else best
    oldest = None if best is None else _as_datetime(ftype, best)
    if not unbounded:
        return OldestReading(oldest, "column_bounds", files_considered=considered)
    # Scan that one column, filtered to rows at or below the best bound already known: files whose bounds prove
    # them newer are pruned, so in practice only the files without a bound are read.
    at_most: Any = LessThanOrEqual  # pyiceberg's predicate classes confuse type checkers: call untyped
    row_filter: BooleanExpression = AlwaysTrue() if best is None else at_most(column, best)
    arrow = table.scan(row_filter=row_filter, selected_fields=(column,), snapshot_id=snap.snapshot_id).to_arrow()
    import pyarrow.compute as pc

    col = arrow.column(column)
    scanned = _python_datetime(pc.min(col).as_py()) if len(col) else None
    log.info(
        "retention of %s: %d of %d data files had no lower bound for %s; scanned them",
        table.name(),
        unbounded,
        considered,
        column,
    )
    candidates = [x for x in (oldest, scanned) if x is not None]
    return OldestReading(min(candidates) if candidates else None, "column_scan", considered, unbounded)
