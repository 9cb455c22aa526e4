"""A table's data-changing commits as its Iceberg snapshot summaries record them: what the `volume` check learns from.

One `DataCommit` per snapshot on the table's current ancestry that changed data (compactions left out), read from
the table metadata alone (`sources/history.py`) and kept in the store (`table_commits`), so the history outlives
snapshot expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DataCommit:
    """One data-changing snapshot: when it was committed and the record counts of its summary (None: not written)."""

    snapshot_id: int
    committed_at: datetime  # aware UTC
    operation: str  # "append" | "overwrite" | "delete", or "unknown" (no summary); `replace` is no data change
    added_records: int | None = None  # `added-records`
    deleted_records: int | None = None  # `deleted-records`
    total_records: int | None = None  # `total-records` after the commit
