"""The ODCS SLA kinds on real Iceberg tables, through the core pipeline, with results stored on SQLite.

Snapshot times are the real commit times of each table; the injected clock is set relative to them, so the
verdicts never depend on when the test runs. Retention reads manifest lower bounds (and scans only files
that have none, which a test forces).
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, TimestamptzType

from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import (
    DeadlineSLA,
    ExpectedColumn,
    FrequencySLA,
    LifecycleSLA,
    MonitoredContract,
    MonitoredTable,
    RetentionSLA,
    TableRef,
)
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, append_without_metrics, catalog_env, create
from floe_monitoring_tests.integration.iceberg_helpers import make_catalog as new_catalog

pytestmark = pytest.mark.integration

S = ViolationSeverity
SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "created_at", TimestamptzType(), required=False),
)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return new_catalog(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MonitoringStore]:
    s = MonitoringStore(f"sqlite:///{tmp_path / 'floe.db'}")
    yield s
    s.dispose()


def contract(name: str, **slas: object) -> MonitoredContract:
    table = MonitoredTable(
        schema_name=name,
        ref=TableRef(namespace=("shop",), name=name, catalog=CATALOG),
        columns=(
            ExpectedColumn("id", "id", "integer", "BIGINT"),
            ExpectedColumn("created_at", "created_at", "timestamp", "TIMESTAMPTZ"),
        ),
    )
    base = MonitoredContract(name=name, version="1.0.0", contract_id=name, source=f"{name}.yaml", tables=(table,))
    return replace(base, **slas)  # type: ignore[arg-type]


def commit_time(table: Table) -> datetime:
    snap = table.current_snapshot()
    assert snap is not None
    return datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=UTC)


def run(store: MonitoringStore, kind: str, c: MonitoredContract, now: datetime) -> CheckRun:
    pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), clock=lambda: now)
    [result] = list(pipeline.run(ViolationType(kind), [(c, c.tables[0])]))
    assert result.persisted
    return result


def rows(at: datetime, n: int = 3) -> dict[str, list[object]]:
    return {"id": list(range(n)), "created_at": [at + timedelta(hours=i) for i in range(n)]}


# -- frequency -------------------------------------------------------------------------------------------


def test_frequency_passes_after_a_recent_update_and_fails_after_a_missed_one(
    catalog: SqlCatalog, store: MonitoringStore
) -> None:
    table = create(catalog, "shop.orders", SCHEMA, rows(datetime(2026, 1, 1, tzinfo=UTC)))
    committed = commit_time(table)
    c = contract("orders", frequency=FrequencySLA(timedelta(hours=1), "1h"))
    ok = run(store, "frequency", c, committed + timedelta(minutes=10))
    assert ok.result.status is CheckStatus.PASS and not ok.violations
    late = run(store, "frequency", c, committed + timedelta(hours=2))
    assert late.result.status is CheckStatus.FAIL
    [v] = late.violations
    assert v.severity is S.ERROR and v.violation_type.value == "frequency" and "every 1h" in v.message
    [stored] = store.results.violations(contract_name="orders")
    assert stored.event.violation_type.value == "frequency"


def test_frequency_of_a_table_never_written_is_an_error(catalog: SqlCatalog, store: MonitoringStore) -> None:
    create(catalog, "shop.empty", SCHEMA)
    out = run(
        store,
        "frequency",
        contract("empty", frequency=FrequencySLA(timedelta(hours=1), "1h")),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert out.result.status is CheckStatus.ERROR and "never been updated" in (out.outcome.reason or "")


# -- retention ----------------------------------------------------------------------------------------------


def test_retention_from_lower_bounds_passes_and_fails(catalog: SqlCatalog, store: MonitoringStore) -> None:
    # Each table is "born" at its commit and the clock runs 60 days later; its rows are dated relative to that
    # (the few milliseconds between writing the rows and the commit do not matter against days).
    later = datetime.now(UTC) + timedelta(days=60)
    sla = RetentionSLA(timedelta(days=30), "30d", element="created_at")
    good = create(catalog, "shop.good", SCHEMA, rows(later - timedelta(days=40)))  # kept long enough
    bad = create(catalog, "shop.bad", SCHEMA, rows(later - timedelta(days=15)))  # older rows deleted
    ok = run(store, "retention", contract("good", retention=sla), commit_time(good) + timedelta(days=60))
    assert ok.result.status is CheckStatus.PASS and ok.outcome.details["method"] == "column_bounds"
    assert ok.outcome.details["files_scanned"] == 0
    fail = run(store, "retention", contract("bad", retention=sla), commit_time(bad) + timedelta(days=60))
    assert fail.result.status is CheckStatus.FAIL
    [v] = fail.violations
    assert v.severity is S.ERROR and v.element == "created_at" and "30d of retention" in v.message


def test_retention_scans_only_files_without_lower_bounds(catalog: SqlCatalog, store: MonitoringStore) -> None:
    table = create(catalog, "shop.partly", SCHEMA)
    now_guess = datetime.now(UTC) + timedelta(days=60)
    table.append(_arrow(rows(now_guess - timedelta(days=20))))  # with bounds: 20 days back
    append_without_metrics(table, rows(now_guess - timedelta(days=45)))  # no bounds: 45 days back
    sla = RetentionSLA(timedelta(days=30), "30d", element="created_at")
    born = min(datetime.fromtimestamp(s.timestamp_ms / 1000, tz=UTC) for s in table.metadata.snapshots)
    out = run(store, "retention", contract("partly", retention=sla), max(now_guess, born + timedelta(days=31)))
    # Only the bounds would say 20 days (a shortfall); the scan of the one unbounded file finds 45 days.
    assert out.outcome.details["method"] == "column_scan" and out.outcome.details["files_scanned"] == 1
    assert out.result.status is CheckStatus.PASS


def test_a_young_table_is_not_judged_on_retention(catalog: SqlCatalog, store: MonitoringStore) -> None:
    table = create(catalog, "shop.young", SCHEMA, rows(datetime.now(UTC)))
    sla = RetentionSLA(timedelta(days=30), "30d", element="created_at")
    out = run(store, "retention", contract("young", retention=sla), commit_time(table) + timedelta(days=2))
    assert out.result.status is CheckStatus.PASS and "younger than" in str(out.outcome.details["note"])


# -- time of availability ---------------------------------------------------------------------------------


def two_commits(catalog: SqlCatalog, ident: str) -> tuple[datetime, datetime]:
    table = create(catalog, ident, SCHEMA, rows(datetime(2026, 1, 1, tzinfo=UTC)))
    first = commit_time(table)
    second = first
    while second <= first:  # commits a few milliseconds apart: append until the commit time moves on
        table.append(_arrow(rows(datetime(2026, 1, 2, tzinfo=UTC))))
        second = commit_time(table)
    return first, second


def test_time_of_availability_pass_and_missed_deadline(catalog: SqlCatalog, store: MonitoringStore) -> None:
    first, second = two_commits(catalog, "shop.daily")
    # The deadline falls between the two commits: the table existed before that deadline's window began, and
    # the second commit delivered within the window that ends a day later.
    mid = first + (second - first) / 2
    sla = DeadlineSLA(time_of_day=mid.time().replace(tzinfo=None), timezone="UTC", text=f"{mid:%H:%M:%S.%f} UTC")
    c = contract("daily", time_of_availability=sla)
    on_time = run(store, "time_of_availability", c, mid + timedelta(days=1, minutes=5))
    assert on_time.result.status is CheckStatus.PASS
    assert on_time.outcome.details["delivered_for_last_deadline"] is True
    missed = run(store, "time_of_availability", c, mid + timedelta(days=2, minutes=5))
    assert missed.result.status is CheckStatus.FAIL
    [v] = missed.violations
    assert v.severity is S.ERROR and "No new data between the deadlines" in v.message


# -- lifecycle ----------------------------------------------------------------------------------------------


def test_lifecycle_dates_as_deprecation_violations(catalog: SqlCatalog, store: MonitoringStore) -> None:
    create(catalog, "shop.legacy", SCHEMA, rows(datetime(2026, 1, 1, tzinfo=UTC)))
    c = contract("legacy", lifecycle=LifecycleSLA(end_of_support=date(2026, 6, 1), end_of_life=date(2026, 9, 1)))
    supported = run(store, "deprecation", c, datetime(2026, 3, 1, tzinfo=UTC))
    assert supported.result.status is CheckStatus.PASS and not supported.violations
    unsupported = run(store, "deprecation", c, datetime(2026, 6, 2, tzinfo=UTC))
    assert unsupported.result.status is CheckStatus.FAIL
    [v] = unsupported.violations
    assert v.violation_type is ViolationType.DEPRECATION and v.severity is S.WARNING
    retired = run(store, "deprecation", c, datetime(2026, 9, 1, 0, 0, tzinfo=UTC))
    assert retired.max_severity is S.ERROR


def _arrow(data: dict[str, list[object]]) -> pa.Table:
    return pa.table(data, schema=SCHEMA.as_arrow())


# -- latency: ODCS v3's freshness property, from the YAML a team writes ------------------------------------

LATENCY_ONLY = """\
apiVersion: {version}
kind: DataContract
id: urn:shop:events
name: events
version: 1.0.0
status: active
servers:
  - server: prod
    type: iceberg
    catalog: {catalog}
    catalogUrl: sqlite:///unused.db
    namespace: shop
schema:
  - name: events
    properties:
      - name: id
        logicalType: integer
      - name: created_at
        logicalType: {ts_type}
        physicalType: timestamptz
slaProperties:
  - property: {prop}
    value: {value}
    unit: {unit}
    element: {element}
"""


@pytest.mark.parametrize(
    ("version", "prop", "value", "unit", "element"),
    [
        ("v3.1.0", "latency", 4, "h", "events.created_at"),
        ("v3.0.2", "ly", 240, "minutes", "created_at"),
        ("v3.2.0", "Latency", "PT4H", "''", "events.created_at"),
    ],
)
def test_a_latency_only_sla_is_found_stale_on_a_real_table(
    catalog: SqlCatalog,
    store: MonitoringStore,
    tmp_path: Path,
    version: str,
    prop: str,
    value: object,
    unit: str,
    element: str,
) -> None:
    from floe_monitoring_defs.contracts.loader import load_contract_file

    newest = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    create(catalog, "shop.events", SCHEMA, rows(newest - timedelta(hours=2)))  # newest row: `newest`
    path = tmp_path / "events.yaml"
    ts_type = "date" if version.startswith("v3.0") else "timestamp"  # v3.0 has no logicalType timestamp
    fields = {"version": version, "catalog": CATALOG, "prop": prop, "value": value, "unit": unit}
    text = LATENCY_ONLY.format(**fields, element=element, ts_type=ts_type)
    path.write_text(text.replace("    unit: ''\n", ""), encoding="utf-8")
    c = load_contract_file(path)
    assert c.freshness is not None and c.freshness.threshold == timedelta(hours=4)
    assert c.tables[0].freshness_column == "created_at"
    fresh = run(store, "freshness", c, newest + timedelta(hours=1))
    assert fresh.result.status is CheckStatus.PASS and not fresh.violations
    stale = run(store, "freshness", c, newest + timedelta(hours=5))
    assert stale.result.status is CheckStatus.FAIL
    [v] = stale.violations
    assert v.severity is S.ERROR and v.violation_type is ViolationType.FRESHNESS
