"""The cross-run tier of the manifest bounds cache: `manifest_bounds`, one row per Iceberg manifest file.

`ManifestBoundsCache` (sources/iceberg.py) keeps an in-process dict in front of this; every Dagster run is
its own process, so without this tier each run would parse every manifest again. Rows are summaries of
immutable files, so a row, once written, is never wrong: a write that loses a race is simply ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from floe_monitoring_defs.models import ensure_utc
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database

TOUCH_AFTER = timedelta(days=1)  # a row read is marked used again at most this often (a write per day, not per run)
_CHUNK = 500  # paths per IN (...) list


class ManifestBoundsRepository:
    """Loads and saves manifest summaries by path; implements `sources.iceberg.ManifestSummaryStore`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._stale: set[str] = set()  # read rows whose `used_at` is older than TOUCH_AFTER: refreshed on save

    def load_manifest_summaries(self, paths: Sequence[str]) -> dict[str, str]:
        """The stored summaries of those of `paths` that have one."""
        out: dict[str, str] = {}
        c = t.manifest_bounds.c
        stale_before = ensure_utc(self._db.clock()) - TOUCH_AFTER
        with self._db.transaction("reading manifest bounds") as conn:
            for start in range(0, len(paths), _CHUNK):
                chunk = list(paths[start : start + _CHUNK])
                query = sa.select(c.manifest_path, c.summary, c.used_at).where(c.manifest_path.in_(chunk))
                for path, summary, used_at in conn.execute(query):
                    out[path] = summary
                    if used_at < stale_before:
                        self._stale.add(path)
        return out

    def save_manifest_summaries(self, summaries: Mapping[str, str]) -> None:
        """Store new summaries (an existing row for a path is replaced: a re-read after a type change) and mark
        the stale rows read since the last save as used."""
        now = self._db.clock()
        c = t.manifest_bounds.c
        stale = sorted(self._stale - set(summaries))
        if not summaries and not stale:
            return
        with self._db.transaction("saving manifest bounds", write=True) as conn:
            if summaries:
                stmt = self._db.upsert(t.manifest_bounds, ["manifest_path"], ["summary", "used_at"])
                rows = [
                    {"manifest_path": p, "summary": s, "created_at": now, "used_at": now} for p, s in summaries.items()
                ]
                conn.execute(stmt, rows)
            for start in range(0, len(stale), _CHUNK):
                chunk = stale[start : start + _CHUNK]
                conn.execute(sa.update(t.manifest_bounds).where(c.manifest_path.in_(chunk)).values(used_at=now))
        self._stale.clear()

    def count(self) -> int:
        with self._db.transaction("counting manifest bounds") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.manifest_bounds)).scalar_one())

    def prune(self, unused_since: datetime) -> int:
        """Delete the rows of files no run has read since `unused_since` (no live snapshot refers to them, or
        their tables are no longer monitored); returns how many."""
        c = t.manifest_bounds.c
        with self._db.transaction("pruning manifest bounds", write=True) as conn:
            return int(conn.execute(sa.delete(t.manifest_bounds).where(c.used_at < unused_since)).rowcount)
