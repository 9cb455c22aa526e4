"""Direct Parquet reads of the DuckDB quality engine (issue 15): same results as the Arrow scan, and a fallback
to the scan whenever the files alone would not give the table's rows (delete files, renamed or added columns).

Real Iceberg tables (pyiceberg SqlCatalog, local warehouse), each written in several appends (data files).
"""

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
    UUIDType,
)

from floe_monitoring_defs.checks.quality import QualityKind, run_quality
from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.contracts import parse_document
from floe_monitoring_defs.contracts.model import MonitoredTable, QualityRule
from floe_monitoring_defs.models import CheckOutcome
from floe_monitoring_defs.quality.duckdb_engine import DuckDBQualityEngine
from floe_monitoring_defs.quality.source import IcebergQualitySource, local_path, plan_blocker
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, make_catalog

TH = SeverityThresholds()
T0 = datetime(2026, 1, 1, tzinfo=UTC)

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "email", StringType(), required=False),
    NestedField(3, "status", StringType(), required=False),
    NestedField(4, "amount", DoubleType(), required=False),
    NestedField(5, "price", DecimalType(12, 2), required=False),
    NestedField(6, "created_at", TimestamptzType(), required=False),
    NestedField(7, "note", StringType(), required=False),
)


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    cat = make_catalog(tmp_path)
    cat.create_namespace("crm")
    return cat


def rows(start: int, n: int) -> dict[str, list[Any]]:
    """n rows with a few nulls, invalid statuses, duplicate ids and negative amounts, depending on `start`."""
    ids = [start + i if i % 17 else start for i in range(n)]  # every 17th row repeats the file's first id
    return {
        "id": ids,
        "email": [None if i % 7 == 0 else f"user{start + i}@example.com" for i in range(n)],
        "status": ["lost" if i % 11 == 0 else ("open", "closed", "pending")[i % 3] for i in range(n)],
        "amount": [-1.5 if i % 13 == 0 else 10.25 * i for i in range(n)],
        "price": [None if i % 19 == 0 else Decimal(f"{(start + i) % 1000}.{i % 100:02d}") for i in range(n)],
        "created_at": [T0 + timedelta(hours=start + i) for i in range(n)],
        "note": [f"n{i}" for i in range(n)],
    }


def table_of(cat: SqlCatalog, name: str, files: int = 3, per: int = 40, schema: Schema = SCHEMA) -> Table:
    table = cat.create_table(f"crm.{name}", schema=schema)
    for k in range(files):
        table.append(pa.table(rows(k * per, per), schema=table.schema().as_arrow()))
    return table


def contract(columns: Sequence[str], props_quality: dict[str, list[dict[str, Any]]], name: str) -> MonitoredTable:
    props = [{"name": c, **({"quality": props_quality[c]} if c in props_quality else {})} for c in columns]
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "crm"}
        ],
        "schema": [{"name": name, "properties": props, "quality": TABLE_RULES}],
    }
    [t] = parse_document(doc, f"{name}.yaml").tables
    return t


TABLE_RULES: list[dict[str, Any]] = [
    {"name": "row_count", "metric": "rowCount", "mustBeBetween": [1, 100000]},
    {"name": "negatives", "type": "sql", "query": "SELECT count(*) FROM ${object} WHERE amount < 0", "mustBe": 0},
    {"name": "price_sum", "type": "sql", "query": "SELECT sum(price) FROM ${object}", "mustBeGreaterThan": 0},
    {
        "name": "late_rows",
        "type": "sql",
        "query": "SELECT count(*) FROM ${object} WHERE created_at >= TIMESTAMPTZ '2026-01-03 00:00:00+00'",
        "mustBe": 0,
    },
    {
        # the SQL types the rules see: identical on both paths (tz-aware timestamps, exact decimals)
        "name": "types",
        "type": "sql",
        "query": "SELECT count(*) FROM ${object} WHERE typeof(created_at) = 'TIMESTAMP WITH TIME ZONE' "
        "AND typeof(price) = 'DECIMAL(12,2)' AND typeof(amount) = 'DOUBLE'",
        "mustBe": 120,
    },
]

COLUMN_RULES: dict[str, list[dict[str, Any]]] = {
    "email": [{"name": "email_null_pct", "metric": "nullValues", "unit": "percent", "mustBeLessThan": 5}],
    "status": [
        {
            "name": "status_valid",
            "metric": "invalidValues",
            "arguments": {"pattern": "^(open|closed|pending)$"},
            "mustBe": 0,
        }
    ],
    "id": [{"name": "id_duplicates", "metric": "duplicateValues", "mustBeLessThan": 3}],
}


def with_dialect(m: MonitoredTable) -> MonitoredTable:
    """Range rules on a decimal and a timestamp, evaluated by the engine's aggregate pass."""
    extra = (
        QualityRule(name="price_range", type="constraint", table=m.schema_name, element="price", rule=">= 10"),
        QualityRule(
            name="recent",
            type="constraint",
            table=m.schema_name,
            element="created_at",
            rule="<= '2026-01-05 00:00:00+00'",
        ),
    )
    return dataclasses.replace(m, quality_rules=m.quality_rules + extra)


def run(table: Table, m: MonitoredTable, direct: bool) -> CheckOutcome:
    return run_quality(IcebergQualitySource(table, direct_read=direct), m, "duckdb", 0.8, TH)


def comparable(out: CheckOutcome) -> dict[str, Any]:
    return {k: v for k, v in out.details.items() if k != "read"}


def test_direct_read_gives_the_arrow_scans_results(catalog: SqlCatalog) -> None:
    t = table_of(catalog, "customers")
    m = with_dialect(contract([f.name for f in SCHEMA.fields], COLUMN_RULES, "customers"))
    direct, stream = run(t, m, True), run(t, m, False)
    assert direct.details["read"] == "parquet-direct (3 files)"
    assert stream.details["read"] == "arrow-scan (direct read disabled)"
    assert comparable(direct) == comparable(stream)
    assert (direct.status, direct.measured_value, direct.findings) == (
        stream.status,
        stream.measured_value,
        stream.findings,
    )
    by = {r["rule"]: r for r in direct.details["rules"]}
    # the values themselves (so that both paths being wrong alike fails too)
    assert by["row_count"]["actual"] == "120 rows"
    assert by["email_null_pct"]["value"] == pytest.approx(100.0 * 18 / 120)  # 6 of 40 per file
    assert by["status_valid"]["value"] == 12.0  # i % 11 == 0: 4 per file
    assert by["id_duplicates"]["value"] == 6.0  # rows 17 and 34 of each file repeat its first id
    assert by["negatives"]["value"] == 12.0
    assert by["types"]["status"] == "pass" and by["types"]["value"] == 120.0
    assert by["late_rows"]["value"] == 120.0 - 48
    assert by["price_range"]["value"] == float(
        sum(1 for k in range(3) for i in range(40) if i % 19 and (k * 40 + i) % 1000 + (i % 100) / 100 < 10)
    )
    assert by["recent"]["value"] == 120.0 - 97
    assert by["price_sum"]["value"] == float(
        sum(p for k in range(3) for p in rows(k * 40, 40)["price"] if p is not None)
    )
    assert {r["method"] for r in direct.details["rules"]} == {"scan"}
    assert direct.details["columns_read"] == stream.details["columns_read"]
    evidence = QualityKind.evidence(direct, [])
    assert evidence["quality_read"] == "parquet-direct (3 files)"


def test_direct_read_may_read_only_the_planned_files(catalog: SqlCatalog, tmp_path: Path) -> None:
    t = table_of(catalog, "customers", files=2)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), other)
    m = contract(
        ["id", "amount"],
        {},
        "customers",
    )
    rules = [
        QualityRule(
            name="planned", type="sql", table="customers", query="SELECT count(*) FROM object", operators={"mustBe": 80}
        ),
        QualityRule(
            name="elsewhere",
            type="sql",
            table="customers",
            query=f"SELECT count(*) FROM read_parquet('{other}')",
            operators={"mustBe": 2},
        ),
    ]
    out = run_quality(IcebergQualitySource(t), m, "duckdb", 0.8, TH, rules=rules)
    assert out.details["read"] == "parquet-direct (2 files)"
    by = {r["rule"]: r for r in out.details["rules"]}
    assert by["elsewhere"]["status"] == "error" and "Permission Error" in by["elsewhere"]["error"]


def _position_delete(t: Table, tmp_path: Path, positions: Sequence[int]) -> tuple[list[FileScanTask], DataFile]:
    """A real position-delete file removing `positions` of the first data file (pyiceberg cannot write one)."""
    tasks = list(t.scan().plan_files())
    target = tasks[0].file.file_path
    path = tmp_path / "pos-deletes.parquet"
    pq.write_table(pa.table({"file_path": [target] * len(positions), "pos": pa.array(positions, pa.int64())}), path)
    deletes = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES,
        file_path=f"file://{path}",
        file_format=FileFormat.PARQUET,
        partition={},
        record_count=len(positions),
        file_size_in_bytes=path.stat().st_size,
    )
    return tasks, deletes


class _DeletingSource(IcebergQualitySource):
    """The table as planned, with a position-delete file on its first data file (as another writer would add)."""

    def __init__(self, table: Table, tasks: list[FileScanTask], deletes: DataFile, **kw: Any) -> None:
        super().__init__(table, **kw)
        self._tasks = [FileScanTask(tasks[0].file, delete_files={deletes}), *tasks[1:]]


def test_delete_files_take_the_arrow_scan(catalog: SqlCatalog, tmp_path: Path) -> None:
    t = table_of(catalog, "customers", files=2)
    tasks, deletes = _position_delete(t, tmp_path, [0, 7, 14])  # three rows with null emails
    assert plan_blocker([FileScanTask(tasks[0].file, delete_files={deletes})], SCHEMA.fields) == "delete files present"
    m = contract(["id", "email", "amount"], {"email": COLUMN_RULES["email"]}, "customers")
    rules = [
        *m.quality_rules,
        QualityRule(name="nulls", type="library", table="customers", element="email", metric="nullValues"),
        QualityRule(
            name="n", type="sql", table="customers", query="SELECT count(*) FROM object", operators={"mustBe": 77}
        ),
    ]
    out = run_quality(_DeletingSource(t, tasks, deletes), m, "duckdb", 0.8, TH, rules=rules)
    by = {r["rule"]: r for r in out.details["rules"]}
    assert out.details["read"] == "arrow-scan (delete files present)"
    assert by["nulls"]["value"] == 12.0 - 3 and by["nulls"]["rows_checked"] == 77
    assert by["n"]["status"] == "pass"


def test_plan_blocker_reasons(catalog: SqlCatalog) -> None:
    t = table_of(catalog, "customers", files=1)
    [task] = t.scan().plan_files()
    assert plan_blocker([task], SCHEMA.fields) is None
    s3 = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path="s3://bucket/data/x.parquet",
        file_format=FileFormat.PARQUET,
        partition={},
        record_count=1,
        file_size_in_bytes=1,
    )
    assert plan_blocker([FileScanTask(s3)], SCHEMA.fields) == "data files not on a local path"
    assert plan_blocker([], SCHEMA.fields) == "no data files"
    assert plan_blocker([task], [NestedField(9, "u", UUIDType())]) == "column type uuid read through Arrow"
    assert local_path("file:///tmp/a%20b.parquet") == "/tmp/a b.parquet"
    assert local_path("/tmp/x.parquet") == "/tmp/x.parquet"
    assert local_path("gs://b/x.parquet") is None


def test_renamed_column_falls_back(catalog: SqlCatalog) -> None:
    t = table_of(catalog, "customers", files=2)
    with t.update_schema() as update:
        update.rename_column("status", "state")
    t.append(
        pa.table({**rows(80, 40)})
        .rename_columns(["id", "email", "state", "amount", "price", "created_at", "note"])
        .cast(t.schema().as_arrow())
    )
    cols = [f.name for f in t.schema().fields]
    rules = {"state": [dict(COLUMN_RULES["status"][0], name="state_valid")]}
    m = contract(cols, rules, "customers")
    out = run(t, m, True)
    assert out.details["read"].startswith("arrow-scan (column 'state' has another name in a data file")
    by = {r["rule"]: r for r in out.details["rules"]}
    assert by["state_valid"]["value"] == 12.0 and by["row_count"]["actual"] == "120 rows"
    assert comparable(out) == comparable(run(t, m, False))
    # rules that do not touch the renamed column still read directly
    m2 = contract(cols, {"email": COLUMN_RULES["email"]}, "customers")
    m2 = dataclasses.replace(m2, quality_rules=tuple(r for r in m2.quality_rules if r.type != "sql"))
    assert run(t, m2, True).details["read"] == "parquet-direct (3 files)"


def test_added_column_missing_from_old_files_falls_back(catalog: SqlCatalog) -> None:
    t = table_of(catalog, "customers", files=2)
    with t.update_schema() as update:
        update.add_column("score", LongType())
    t.append(pa.table({**rows(80, 40), "score": list(range(40))}).cast(t.schema().as_arrow()))
    cols = [f.name for f in t.schema().fields]
    m = contract(cols, {"score": [{"name": "score_nulls", "metric": "nullValues", "mustBe": 0}]}, "customers")
    out = run(t, m, True)
    assert out.details["read"].startswith("arrow-scan (a data file lacks column 'score'")
    by = {r["rule"]: r for r in out.details["rules"]}
    assert by["score_nulls"]["value"] == 80.0  # the two old files have no score: null there
    assert comparable(out) == comparable(run(t, m, False))


def test_a_failing_direct_read_is_retried_on_the_stream(catalog: SqlCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    t = table_of(catalog, "customers", files=2)
    m = contract([f.name for f in SCHEMA.fields], COLUMN_RULES, "customers")

    def broken(*_: Any) -> None:
        raise duckdb.IOException("IO Error: cannot open file")

    monkeypatch.setattr(DuckDBQualityEngine, "_direct_view", broken)
    out = run(t, m, True)
    assert out.details["read"] == "arrow-scan (direct read failed: IOException)"
    assert comparable(out) == comparable(run(t, m, False))
    assert out.details["rules_errored"] == 0


def test_a_custom_file_io_reads_the_files_itself(catalog: SqlCatalog) -> None:
    t = table_of(catalog, "customers", files=2)

    class Wrapped(PyArrowFileIO):
        """A FileIO subclass stands for one that decrypts or counts reads: the engine must not bypass it."""

    t.io = Wrapped(t.io.properties)
    m = contract([f.name for f in SCHEMA.fields], COLUMN_RULES, "customers")
    out = run(t, m, True)
    assert out.details["read"] == "arrow-scan (custom FileIO Wrapped)"
    assert by_value(out) == by_value(run(t, m, False))


def by_value(out: CheckOutcome) -> dict[str, Any]:
    return {r["rule"]: r["value"] for r in out.details["rules"]}
