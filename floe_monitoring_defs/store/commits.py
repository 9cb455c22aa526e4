"""Table commits (`table_commits`): the data-changing snapshots of each monitored table, kept past snapshot expiry.

The `volume` check reads the extent of what is stored for every table of a run in one query (`extent`), reads
the stored commits of a table only when its snapshots no longer reach back far enough (`load`), and writes the
commits it sees for the first time in one transaction per batch (`save`). A commit is a fact about an immutable
snapshot: replicas that write the same one race harmlessly (ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from floe_monitoring_defs.models import DataCommit, ensure_utc
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database

_CHUNK = 500  # keys per IN (...) list
_BATCH = 1000  # rows per executemany


class CommitHistoryRepository:
    """Stored commits by table key (`<catalog>/<identifier>`) and table UUID."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def extent(self, keys: Sequence[str]) -> dict[str, tuple[str, datetime, datetime]]:
        """Per table key with stored commits: the UUID of its newest history, and that history's oldest and newest
        commit time."""
        c = t.table_commits.c
        newest_uuid: dict[str, tuple[datetime, str]] = {}
        spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        with self._db.transaction("reading the stored commit history") as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                query = (
                    sa.select(c.table_key, c.table_uuid, sa.func.min(c.committed_at), sa.func.max(c.committed_at))
                    .where(c.table_key.in_(chunk))
                    .group_by(c.table_key, c.table_uuid)
                )
                for key, uuid, oldest, newest in conn.execute(query):
                    oldest, newest = ensure_utc(oldest), ensure_utc(newest)
                    spans[(key, uuid)] = (oldest, newest)
                    if key not in newest_uuid or newest > newest_uuid[key][0]:
                        newest_uuid[key] = (newest, uuid)
        return {key: (uuid, *spans[(key, uuid)]) for key, (_, uuid) in newest_uuid.items()}

    def load(self, key: str, uuid: str, *, since: datetime, before: datetime | None = None) -> list[DataCommit]:
        """The stored commits of one table (its history under `uuid`) from `since` (inclusive) to `before`
        (exclusive), oldest first."""
        c = t.table_commits.c
        where = [c.table_key == key, c.table_uuid == uuid, c.committed_at >= since]
        if before is not None:
            where.append(c.committed_at < before)
        query = (
            sa.select(c.snapshot_id, c.committed_at, c.operation, c.added_records, c.deleted_records, c.total_records)
            .where(*where)
            .order_by(c.committed_at, c.snapshot_id)
        )
        with self._db.transaction("reading stored commits") as conn:
            return [
                DataCommit(int(sid), ensure_utc(at), op, added, deleted, total)
                for sid, at, op, added, deleted, total in conn.execute(query)
            ]

    def save(self, rows: Sequence[tuple[str, str, DataCommit]], recorded_at: datetime) -> None:
        """Store (table key, table UUID, commit) rows; commits already stored are left as they are."""
        if not rows:
            return
        stmt = self._db.insert_missing(t.table_commits, ("table_key", "snapshot_id"))
        values = [
            {
                "table_key": key,
                "snapshot_id": c.snapshot_id,
                "table_uuid": uuid,
                "committed_at": c.committed_at,
                "operation": c.operation[:20],
                "added_records": c.added_records,
                "deleted_records": c.deleted_records,
                "total_records": c.total_records,
                "recorded_at": recorded_at,
            }
            for key, uuid, c in rows
        ]
        with self._db.transaction("saving table commits", write=True) as conn:
            for start in range(0, len(values), _BATCH):
                conn.execute(stmt, values[start : start + _BATCH])

    def models(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """The fitted volume models of those of `keys` that have one: key -> (table UUID, model JSON)."""
        c = t.volume_models.c
        out: dict[str, tuple[str, str]] = {}
        with self._db.transaction("reading fitted volume models") as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                for key, uuid, model in conn.execute(
                    sa.select(c.table_key, c.table_uuid, c.model).where(c.table_key.in_(chunk))
                ):
                    out[key] = (uuid, model)
        return out

    def save_models(self, rows: Sequence[tuple[str, str, datetime, str]]) -> None:
        """Store (table key, table UUID, fitted at, model JSON) rows, replacing a table's older model (a replica that
        fitted later wins; both fitted the same history)."""
        if not rows:
            return
        stmt = self._db.upsert(t.volume_models, ["table_key"], ["table_uuid", "fitted_at", "model"])
        values = [{"table_key": k, "table_uuid": u, "fitted_at": at, "model": m} for k, u, at, m in rows]
        with self._db.transaction("saving fitted volume models", write=True) as conn:
            for start in range(0, len(values), _BATCH):
                conn.execute(stmt, values[start : start + _BATCH])

    def count(self, key: str | None = None) -> int:
        c = t.table_commits.c
        query = sa.select(sa.func.count()).select_from(t.table_commits)
        if key is not None:
            query = query.where(c.table_key == key)
        with self._db.transaction("counting table commits") as conn:
            return int(conn.execute(query).scalar_one())

    def prune(self, before: datetime) -> int:
        """Delete commits older than `before`; returns how many."""
        c = t.table_commits.c
        with self._db.transaction("pruning table commits", write=True) as conn:
            return int(conn.execute(sa.delete(t.table_commits).where(c.committed_at < before)).rowcount)
