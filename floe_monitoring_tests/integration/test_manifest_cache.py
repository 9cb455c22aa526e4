"""Manifest bounds cached by manifest path (issue 15): in-process and across runs in the store (migration 0005).

Real Iceberg tables (pyiceberg SqlCatalog in a tmp dir) and real stores (SQLite, PostgreSQL). Manifests read are
counted by wrapping pyiceberg's `ManifestFile.fetch_manifest_entry`; a "new run" is a new `ManifestBoundsCache`
(a new process has an empty in-process tier) over the same store.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic import command
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.conversions import from_bytes
from pyiceberg.manifest import ManifestContent, ManifestFile
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.sources.iceberg import (
    ColumnExtreme,
    ManifestBoundsCache,
    ManifestSummary,
    last_update,
    time_column_extreme,
)
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.migrations import alembic_config
from floe_monitoring_tests.integration.iceberg_helpers import append_without_metrics, create, make_catalog

pytestmark = pytest.mark.integration

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "name", StringType(), required=False),
    NestedField(3, "updated_at", TimestamptzType(), required=True),
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rows(start: int, newest: datetime, n: int = 3) -> dict[str, list[Any]]:
    return {
        "id": list(range(start, start + n)),
        "name": [f"r{i}" if i % 2 else None for i in range(start, start + n)],
        "updated_at": [newest - timedelta(minutes=i) for i in range(n)],
    }


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    return make_catalog(tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    yield s
    s.dispose()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every manifest pyiceberg parses from now on."""
    seen: list[str] = []
    original = ManifestFile.fetch_manifest_entry

    def counting(self: ManifestFile, *args: Any, **kwargs: Any) -> Any:
        seen.append(self.manifest_path)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ManifestFile, "fetch_manifest_entry", counting)
    return seen


def reference_extreme(table: Table, field_id: int, *, newest: bool) -> tuple[Any, int, int]:
    """The uncached fold (what `time_column_extreme` did before the cache): every live entry of every data
    manifest, one by one -> (extreme raw value, files considered, files without the bound)."""
    ftype = table.schema().find_field(field_id).field_type
    beats = operator.gt if newest else operator.lt
    best: Any = None
    considered = missing = 0
    snap = table.current_snapshot()
    assert snap is not None
    for manifest in snap.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            f = entry.data_file
            if not f.record_count:
                continue
            considered += 1
            raw = ((f.upper_bounds if newest else f.lower_bounds) or {}).get(field_id)
            if raw is None:
                missing += 1
                continue
            value = from_bytes(ftype, raw)  # type: ignore[arg-type]
            best = value if best is None or beats(value, best) else best
    return best, considered, missing


def extreme(table: Table, cache: ManifestBoundsCache, *, newest: bool = True) -> ColumnExtreme:
    return time_column_extreme(table, "updated_at", newest=newest, sla="freshness", cache=cache)


def test_a_second_run_reads_no_manifest_of_an_unchanged_table_and_after_an_append_only_the_new_one(
    catalog: SqlCatalog, store: MonitoringStore, reads: list[str]
) -> None:
    table = create(catalog, "shop.orders", SCHEMA, rows(0, NOW - timedelta(hours=2)))
    table.append(pa.table(rows(10, NOW - timedelta(hours=1)), schema=table.schema().as_arrow()))
    table = catalog.load_table("shop.orders")
    first_run = ManifestBoundsCache(store.manifests)
    first = extreme(table, first_run)
    assert len(reads) == 2 and first_run.manifests_read == 2  # two appends: two data manifests
    first_run.flush()
    assert store.manifests.count() == 4  # both manifests, the manifest list and the snapshot's fold

    reads.clear()
    asked: list[list[str]] = []
    load = store.manifests.load_manifest_summaries

    def recording(paths: Any) -> dict[str, str]:
        asked.append(list(paths))
        return load(paths)

    second_run = ManifestBoundsCache(store.manifests)  # a new process: nothing in memory
    store.manifests.load_manifest_summaries = recording  # type: ignore[method-assign]
    second = extreme(table, second_run)
    # one entry read, the snapshot's fold: the same one read whatever the number of manifests (flat in files)
    assert asked == [[f"fold:{table.current_snapshot().manifest_list}:3"]]  # type: ignore[union-attr]
    store.manifests.load_manifest_summaries = load  # type: ignore[method-assign]
    assert reads == [] and (second_run.manifests_read, second_run.lists_read) == (0, 0)
    assert second == first and second.method == "column_bounds"  # still evidence from metadata
    again = extreme(table, second_run)  # the in-process tier, the store not asked
    assert reads == [] and again == first

    table.append(pa.table(rows(20, NOW - timedelta(minutes=5)), schema=table.schema().as_arrow()))
    table = catalog.load_table("shop.orders")
    second_run.flush()
    reads.clear()
    third_run = ManifestBoundsCache(store.manifests)
    third = extreme(table, third_run)
    snap = table.current_snapshot()
    assert snap is not None
    newest_manifest = [m.manifest_path for m in snap.manifests(table.io) if m.added_snapshot_id == snap.snapshot_id]
    assert reads == newest_manifest and third_run.manifests_read == 1
    assert third.value == NOW - timedelta(minutes=5) and third.files_considered == 3


def test_cached_and_uncached_readings_are_identical(catalog: SqlCatalog, store: MonitoringStore) -> None:
    """Bounds, files considered and files without a bound (scanned) as the entry-by-entry fold gives them, for
    max and min, from a cold cache, from the store and from memory; a file without metrics still gets scanned."""
    table = create(catalog, "shop.events", SCHEMA, rows(0, NOW - timedelta(hours=3)))
    table.append(pa.table(rows(5, NOW - timedelta(hours=2)), schema=table.schema().as_arrow()))
    append_without_metrics(table, rows(9, NOW - timedelta(minutes=30)))
    table = catalog.load_table("shop.events")
    cold = ManifestBoundsCache(store.manifests)
    for newest in (True, False):
        raw, considered, missing = reference_extreme(table, 3, newest=newest)
        readings = [extreme(table, cold, newest=newest), extreme(table, ManifestBoundsCache(), newest=newest)]
        cold.flush()
        readings.append(extreme(table, ManifestBoundsCache(store.manifests), newest=newest))
        readings.append(extreme(table, cold, newest=newest))
        assert all(r == readings[0] for r in readings)
        assert (readings[0].files_considered, readings[0].files_scanned) == (considered, missing) == (3, 1)
        assert readings[0].method == "column_scan"
        bound = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=raw)
        # min: the bounded files hold the oldest rows; max: the unbounded file's newer rows win over the bound.
        assert bound == (NOW - timedelta(hours=2) if newest else NOW - timedelta(hours=3, minutes=2))
        assert readings[0].value == (NOW - timedelta(minutes=30) if newest else bound)
    # max(updated_at) is in the file without bounds: found by the scan, as without the cache.
    assert extreme(table, cold).value == NOW - timedelta(minutes=30)
    reading = last_update(table, "updated_at", cache=cold)
    assert reading.last_update == NOW - timedelta(minutes=30) and reading.files_scanned == 1


def test_a_summary_keeps_per_field_bounds_null_and_record_counts(catalog: SqlCatalog) -> None:
    table = create(catalog, "shop.people", SCHEMA, rows(0, NOW, n=4))
    snap = table.current_snapshot()
    assert snap is not None
    [manifest] = snap.manifests(table.io)
    cache = ManifestBoundsCache()
    [summary] = cache.summaries(table, snap, 3)
    assert (summary.files, summary.rows) == (1, 4)
    ids = summary.fields[1]
    decoded: tuple[Any, Any] = (from_bytes(LongType(), ids.lower or b""), from_bytes(LongType(), ids.upper or b""))
    assert decoded == (0, 3)
    assert summary.fields[2].nulls == 2 and summary.fields[3].type == "timestamptz"
    assert ManifestSummary.from_json(summary.to_json()) == summary
    assert ManifestSummary.from_json('{"v": 99}') is None  # another format: the manifest is read again
    assert manifest.manifest_path in {p for p in cache.data_manifest_paths(table, snap)[0]}


def test_a_cached_summary_of_another_type_is_read_again(catalog: SqlCatalog, store: MonitoringStore) -> None:
    """After a schema change the stored type no longer matches: the manifest is read again, the row replaced."""
    table = create(catalog, "shop.typed", SCHEMA, rows(0, NOW))
    snap = table.current_snapshot()
    assert snap is not None
    cache = ManifestBoundsCache(store.manifests)
    [summary] = cache.summaries(table, snap, 3)
    cache.flush()
    path = cache.data_manifest_paths(table, snap)[0][0]
    tampered = ManifestSummary(
        summary.files, summary.rows, {**summary.fields, 3: summary.fields[3].__class__("date", None, None, 0, 0, 0)}
    )
    store.manifests.save_manifest_summaries({path: tampered.to_json()})
    fresh = ManifestBoundsCache(store.manifests)
    assert fresh.summaries(table, snap, 3) == [summary] and fresh.manifests_read == 1
    fresh.flush()
    assert ManifestSummary.from_json(store.manifests.load_manifest_summaries([path])[path]) == summary


def test_a_store_that_fails_leaves_the_readings_exact(catalog: SqlCatalog, tmp_path: Path) -> None:
    table = create(catalog, "shop.down", SCHEMA, rows(0, NOW))
    dead = MonitoringStore(f"sqlite:///{tmp_path / 'missing-dir' / 'floe.db'}")
    cache = ManifestBoundsCache(dead.manifests)
    reading = extreme(table, cache)
    cache.flush()  # logged, never raised
    assert reading.value == NOW and reading.method == "column_bounds"


def test_retention_prunes_manifest_bounds_no_run_read_within_the_window(store_url: str) -> None:
    clock = {"now": NOW - timedelta(days=100)}
    store = MonitoringStore(store_url, clock=lambda: clock["now"])
    try:
        store.manifests.save_manifest_summaries({"s3://w/old.avro": "{}", "s3://w/kept.avro": "{}"})
        clock["now"] = NOW - timedelta(days=10)
        store.manifests.load_manifest_summaries(["s3://w/kept.avro"])  # read again: marked used (stale > 1 day)
        store.manifests.save_manifest_summaries({})
        clock["now"] = NOW
        result = store.retention.cleanup(NOW, retention_days=90)
        assert result.manifest_bounds_deleted == 1
        assert list(store.manifests.load_manifest_summaries(["s3://w/old.avro", "s3://w/kept.avro"])) == [
            "s3://w/kept.avro"
        ]
    finally:
        store.dispose()


def test_migration_0005_upgrades_a_store_at_0004_and_keeps_its_rows(store_url: str) -> None:
    store = MonitoringStore(store_url, auto_migrate=False)
    try:
        with store.db.engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0004")
        assert store.db.current_revision() == "0004"
        with store.db.engine.begin() as conn:
            assert "manifest_bounds" not in sa.inspect(conn).get_table_names()
            conn.execute(
                t.contract_sla_status.insert(),
                {
                    "contract_name": "c",
                    "check_type": "freshness",
                    "current_value": 1.0,
                    "threshold": 2.0,
                    "compliance_pct": 100.0,
                    "window_start": NOW,
                    "updated_at": NOW,
                },
            )
        with store.db.engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0005")
        assert store.db.current_revision() == "0005"
        store.manifests.save_manifest_summaries({"file:///m.avro": "{}"})
        assert store.manifests.count() == 1
        assert store.results.sla_status("c", "freshness") is not None  # type: ignore[arg-type]
        with store.db.engine.begin() as conn:  # and back down
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0004")
            assert "manifest_bounds" not in sa.inspect(conn).get_table_names()
    finally:
        store.dispose()
