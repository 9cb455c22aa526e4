"""Column constraints verified on real Iceberg tables, from the manifests first (issue 10, items 5 and 7).

Every table is a pyiceberg SqlCatalog table under tmp_path. Data files are counted as they are opened: the
table's FileIO is wrapped, so "no data file opened" is measured, and a positive control (a file written without
metrics) shows the same counter sees a scan. Contracts are built as model objects (the loader's reading of
the ODCS fields is tested with the loader).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io import FileIO, InputFile, OutputFile
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from floe_monitoring_defs.checks.availability import ping_table
from floe_monitoring_defs.checks.quality import QualityKind
from floe_monitoring_defs.checks.runner import CheckRun, CheckRunner
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import (
    ExpectedColumn,
    MonitoredContract,
    MonitoredTable,
    QualityRule,
    TableRef,
)
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.sources.base import TableNotFoundError
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_tests.integration.iceberg_helpers import (
    CATALOG,
    append_without_metrics,
    catalog_env,
    create,
    make_catalog,
)

pytestmark = pytest.mark.integration

S = ViolationSeverity
Q, D = ViolationType.QUALITY, ViolationType.SCHEMA_DRIFT
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


# -- counting data file opens ----------------------------------------------------------------------------------


class CountingIO(FileIO):
    """The table's FileIO, recording every data file (Parquet) opened through it."""

    def __init__(self, inner: FileIO, opened: list[str]) -> None:
        super().__init__(inner.properties)
        self._inner, self._opened = inner, opened

    def new_input(self, location: str) -> InputFile:
        if location.endswith(".parquet"):
            self._opened.append(location)
        return self._inner.new_input(location)

    def new_output(self, location: str) -> OutputFile:
        return self._inner.new_output(location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        self._inner.delete(location)


class CountingSource(IcebergSource):
    """An IcebergSource whose tables count their data file opens in `opened`."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    def load_table(self, ref: TableRef) -> Table:
        table = super().load_table(ref)
        table.io = CountingIO(table.io, self.opened)
        return table


def col(name: str, logical: str, **kw: Any) -> ExpectedColumn:
    return ExpectedColumn(name, name, logical, **kw)


def contract(
    table: str, cols: Sequence[ExpectedColumn], rules: Sequence[QualityRule] = (), ref: TableRef | None = None
) -> MonitoredContract:
    t = MonitoredTable(
        table, ref or TableRef(("shop",), table, catalog=CATALOG), tuple(cols), quality_rules=tuple(rules)
    )
    return MonitoredContract(
        name=table, version="1.0.0", contract_id=f"urn:{table}", source=f"{table}.yaml", tables=(t,)
    )


def run(
    source: IcebergSource, kind: ViolationType, c: MonitoredContract, config: MonitoringConfig | None = None
) -> CheckRun:
    runner = CheckRunner(source, None, config or MonitoringConfig(), clock=lambda: NOW)
    [result] = list(runner.run(kind, [(c, t) for t in c.tables]))
    return result


def rules(r: CheckRun) -> dict[str, dict[str, Any]]:
    return {x["rule"]: x for x in r.outcome.details["rules"]}


def emitted(r: CheckRun) -> str:
    """Everything a check run lets out: details, findings and violation events."""
    return json.dumps(
        {
            "reason": r.outcome.reason,
            "details": r.outcome.details,
            "findings": [[f.message, f.expected, f.actual, f.metadata, f.element] for f in r.outcome.findings],
            "violations": [v.model_dump(mode="json") for v in r.violations],
        },
        default=str,
    )


def secret(i: int) -> str:
    return f"person-{i}@secret.example"


# -- a Spark-style table: every field optional ---------------------------------------------------------------------

SPARK = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "email", StringType(), required=False),
    NestedField(3, "created_at", TimestamptzType(), required=False),
    NestedField(4, "qty", IntegerType(), required=False),
)


def spark_rows(n: int, start: int = 0, null_emails: int = 0) -> dict[str, list[Any]]:
    return {
        "id": [start + i for i in range(n)],
        "email": [None if i < null_emails else secret(start + i) for i in range(n)],
        "created_at": [NOW - timedelta(hours=start + i) for i in range(n)],
        "qty": [1 + (start + i) % 50 for i in range(n)],
    }


SPARK_CONTRACT = contract(
    "events",
    [
        col("id", "integer", required=True),
        col("email", "string", required=True, classification="pii"),
        col("created_at", "timestamp", required=True),
        col("qty", "integer"),
    ],
)


def spark_table(catalog: SqlCatalog, *batches: dict[str, list[Any]]) -> Table:
    table = create(catalog, "shop.events", SPARK, batches[0])
    for b in batches[1:]:
        table.append(pa.table(b, schema=table.schema().as_arrow()))
    return table


def test_spark_style_table_without_nulls_raises_nothing_above_info_and_opens_no_data_file(
    catalog: SqlCatalog,
) -> None:
    spark_table(catalog, spark_rows(30), spark_rows(20, start=30))
    source = CountingSource()
    quality = run(source, Q, SPARK_CONTRACT)
    assert quality.result.status is CheckStatus.PASS and quality.violations == ()
    r = rules(quality)
    assert [(k, v["status"], v["method"]) for k, v in r.items()] == [
        ("id: required", "pass", "metadata"),
        ("email: required", "pass", "metadata"),
        ("created_at: required", "pass", "metadata"),
    ]
    assert r["email: required"]["actual"] == "0 rows" and r["email: required"]["rows_checked"] == 50
    assert source.opened == []  # answered from the manifests' null counts alone
    assert quality.outcome.details["columns_read"] == []

    drift = run(source, D, SPARK_CONTRACT)
    assert drift.result.status is CheckStatus.PASS
    assert sorted((v.metadata["drift"], v.element, v.severity) for v in drift.violations) == [
        ("required_not_enforced", "created_at", S.INFO),
        ("required_not_enforced", "email", S.INFO),
        ("required_not_enforced", "id", S.INFO),
    ]
    assert drift.max_severity is S.INFO


def test_nulls_in_a_required_column_are_an_error_with_the_count_and_no_data_file_opened(catalog: SqlCatalog) -> None:
    spark_table(catalog, spark_rows(30, null_emails=3), spark_rows(20, start=30, null_emails=2))
    source = CountingSource()
    r = run(source, Q, SPARK_CONTRACT)
    assert r.result.status is CheckStatus.FAIL
    rule = rules(r)["email: required"]
    assert (rule["status"], rule["actual"], rule["method"], rule["value"]) == ("fail", "5 rows", "metadata", 5.0)
    [failed] = [f for f in r.outcome.findings if f.kind == "rule_failed"]
    assert (failed.severity, failed.element, failed.expected, failed.actual) == (S.ERROR, "email", "= 0 rows", "5 rows")
    [score] = [f for f in r.outcome.findings if f.kind == "score_below_threshold"]
    assert score.severity is S.ERROR  # 4 of 6 weight passed (0.67): capped at the failed rule's ERROR
    assert source.opened == []
    assert "secret.example" not in emitted(r)


def test_files_without_null_counts_are_scanned_alone_for_that_column(catalog: SqlCatalog) -> None:
    table = spark_table(catalog, spark_rows(30, null_emails=3))
    append_without_metrics(table, spark_rows(10, start=30, null_emails=4))
    [no_metrics] = [t.file.file_path for t in table.scan().plan_files() if not t.file.null_value_counts]
    source = CountingSource()
    r = run(source, Q, contract("events", [col("email", "string", required=True, classification="pii")]))
    rule = rules(r)["email: required"]
    assert (rule["status"], rule["actual"], rule["method"]) == ("fail", "7 rows", "scan")
    assert rule["note"] == (
        "1 of 2 data files had no null count and were scanned for this column; "
        "the others were answered from the manifests"
    )
    assert source.opened == [no_metrics]  # the file with counts was not opened
    assert r.outcome.details["columns_read"] == ["email"]


def test_iceberg_required_field_is_proven_by_the_schema(catalog: SqlCatalog) -> None:
    schema = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "v", StringType(), required=False))
    table = create(catalog, "shop.strict", schema, {"id": [1, 2], "v": ["a", "b"]})
    append_without_metrics(table, {"id": [3], "v": ["c"]})  # no counts, yet nothing to read
    source = CountingSource()
    r = run(source, Q, contract("strict", [col("id", "integer", required=True)]))
    rule = rules(r)["id: required"]
    assert (rule["status"], rule["method"]) == ("pass", "metadata")
    assert rule["note"] == "the Iceberg schema makes id required: no data file can hold a null"
    assert source.opened == []


# -- unique and primary keys -------------------------------------------------------------------------------------

LINES = Schema(
    NestedField(1, "order_id", StringType(), required=False),
    NestedField(2, "line_no", IntegerType(), required=False),
    NestedField(3, "sku", StringType(), required=False),
)


def lines_contract() -> MonitoredContract:
    # declared line_no first: the key is ordered by primaryKeyPosition, not by declaration
    return contract(
        "lines",
        [
            col("line_no", "integer", required=True, primary_key=True, primary_key_position=2),
            col("order_id", "string", required=True, primary_key=True, primary_key_position=1),
            col("sku", "string", unique=True),
        ],
    )


def test_single_and_composite_duplicate_keys_are_counted(catalog: SqlCatalog) -> None:
    rows: dict[str, list[Any]] = {
        "order_id": ["o1", "o1", "o1", "o2", "o2", "o3", "o3"],
        "line_no": [1, 2, 1, 1, 1, 1, 2],  # (o1, 1) twice, (o2, 1) twice: 2 duplicate keys
        "sku": ["a", "b", "c", "a", "a", None, None],  # a three times: 2 duplicates (nulls ignored)
    }
    create(catalog, "shop.lines", LINES, rows)
    r = run(CountingSource(), Q, lines_contract())
    got = rules(r)
    assert next(iter(got)) == "primary key (order_id, line_no)"
    assert (got["primary key (order_id, line_no)"]["actual"], got["primary key (order_id, line_no)"]["method"]) == (
        "2 rows",
        "scan",
    )
    assert (got["sku: unique"]["status"], got["sku: unique"]["actual"]) == ("fail", "2 rows")
    assert got["order_id: required"]["status"] == "pass" and got["line_no: required"]["status"] == "pass"
    assert r.result.status is CheckStatus.FAIL
    assert sorted(f.metadata["rule"] for f in r.outcome.findings if f.kind == "rule_failed") == [
        "primary key (order_id, line_no)",
        "sku: unique",
    ]


def test_unique_keys_pass(catalog: SqlCatalog) -> None:
    rows: dict[str, list[Any]] = {"order_id": ["o1", "o1", "o2"], "line_no": [1, 2, 1], "sku": ["a", "b", None]}
    create(catalog, "shop.lines", LINES, rows)
    r = run(CountingSource(), Q, lines_contract())
    assert r.result.status is CheckStatus.PASS and r.violations == ()
    assert {k: v["actual"] for k, v in rules(r).items() if "required" not in k} == {
        "primary key (order_id, line_no)": "0 rows",
        "sku: unique": "0 rows",
    }


def test_single_column_key_counts_duplicates_once(catalog: SqlCatalog) -> None:
    create(catalog, "shop.lines", LINES, {"order_id": ["o1", "o1", "o2"], "line_no": [1, 2, 3], "sku": ["a"] * 3})
    c = contract("lines", [col("order_id", "string", required=True, primary_key=True, unique=True)])
    got = rules(run(CountingSource(), Q, c))
    assert list(got) == ["primary key (order_id)", "order_id: required"]  # no second "unique" rule for the key
    assert got["primary key (order_id)"]["actual"] == "1 row"


# -- ranges: proven from bounds, else counted -----------------------------------------------------------------------

MEASURES = Schema(
    NestedField(1, "qty", IntegerType(), required=False),
    NestedField(2, "amount", DecimalType(10, 2), required=False),
    NestedField(3, "created_at", TimestamptzType(), required=False),
    NestedField(4, "day", DateType(), required=False),
    NestedField(5, "ratio", DoubleType(), required=False),
)


def measures(n: int, *, qty_over: int = 0, negative: int = 0, future: int = 0) -> dict[str, list[Any]]:
    return {
        "qty": [200 + i if i < qty_over else 1 + i % 50 for i in range(n)],
        "amount": [Decimal("-1.00") if i < negative else Decimal("10.50") + i for i in range(n)],
        "created_at": [NOW + timedelta(days=1) if i < future else NOW - timedelta(hours=i) for i in range(n)],
        "day": [date(2026, 1, 1) + timedelta(days=i) for i in range(n)],
        "ratio": [0.5] * n,
    }


def range_contract(**opts: dict[str, Any]) -> MonitoredContract:
    return contract(
        "measures",
        [
            col("qty", "integer", logical_type_options=opts.get("qty", {})),
            col("amount", "number", logical_type_options=opts.get("amount", {})),
            col("created_at", "timestamp", logical_type_options=opts.get("created_at", {})),
            col("day", "date", logical_type_options=opts.get("day", {})),
            col("ratio", "number", logical_type_options=opts.get("ratio", {})),
        ],
    )


def test_ranges_inside_the_bounds_are_proven_without_a_scan(catalog: SqlCatalog) -> None:
    t = create(catalog, "shop.measures", MEASURES, measures(40))
    t.append(pa.table(measures(10), schema=t.schema().as_arrow()))
    c = range_contract(
        qty={"minimum": 1, "maximum": 50, "format": "i8"},
        amount={"minimum": 0, "exclusiveMaximum": 1000},
        created_at={"minimum": "2026-01-01T00:00:00Z", "maximum": "2026-11-28T12:00:00+00:00"},
        day={"minimum": "2026-01-01", "exclusiveMaximum": "2027-01-01"},
    )
    source = CountingSource()
    r = run(source, Q, c)
    assert r.result.status is CheckStatus.PASS
    got = rules(r)
    assert {k: (v["status"], v["method"]) for k, v in got.items()} == {
        "qty: minimum": ("pass", "metadata"),
        "qty: maximum": ("pass", "metadata"),
        "qty: format": ("pass", "metadata"),
        "amount: minimum": ("pass", "metadata"),
        "amount: exclusiveMaximum": ("pass", "metadata"),
        "created_at: minimum": ("pass", "metadata"),
        "created_at: maximum": ("pass", "metadata"),
        "day: minimum": ("pass", "metadata"),
        "day: exclusiveMaximum": ("pass", "metadata"),
    }
    assert got["qty: minimum"]["note"] == "lower / upper bounds of 2 data files lie in the range"
    assert source.opened == []


def test_violated_ranges_are_counted_on_the_files_their_bounds_do_not_prove(catalog: SqlCatalog) -> None:
    t = create(catalog, "shop.measures", MEASURES, measures(40))  # inside every range
    t.append(pa.table(measures(10, qty_over=3, negative=2, future=4), schema=t.schema().as_arrow()))
    c = range_contract(
        qty={"maximum": 100, "format": "i8"},  # 200, 201, 202: 3 above 100; i8 ends at 127
        amount={"minimum": 0},
        created_at={"maximum": "2026-11-28T12:00:00Z"},
        ratio={"minimum": 0, "maximum": 1},
    )
    source = CountingSource()
    r = run(source, Q, c)
    got = rules(r)
    assert {k: (v["status"], v["actual"], v["method"]) for k, v in got.items()} == {
        "qty: maximum": ("fail", "3 rows", "scan"),
        "qty: format": ("fail", "3 rows", "scan"),
        "amount: minimum": ("fail", "2 rows", "scan"),
        "created_at: maximum": ("fail", "4 rows", "scan"),
        # pyiceberg records no NaN counts, and NaN is in no bound: a double range is always counted
        "ratio: minimum": ("pass", "0 rows", "scan"),
        "ratio: maximum": ("pass", "0 rows", "scan"),
    }
    assert got["amount: minimum"]["note"] == (
        "1 of 2 data files had bounds that do not prove the range and were scanned for this column; "
        "the others were answered from the manifests"
    )
    assert got["ratio: minimum"]["note"] is None  # every file needed it: one pass with the other rules
    assert r.result.status is CheckStatus.FAIL
    files = {task.file.record_count: task.file.file_path for task in t.scan().plan_files()}
    first, second = files[40], files[10]
    # the ratio rules read both files in one pass; the other rules, pruned, read the second file once more
    assert Counter(source.opened) == {first: 1, second: 2}


def test_exclusive_bounds_in_v3_0_flag_form_and_v3_1_value_form(catalog: SqlCatalog) -> None:
    create(catalog, "shop.measures", MEASURES, measures(50))  # qty 1..50
    c = range_contract(
        qty={"minimum": 1, "exclusiveMinimum": True, "exclusiveMaximum": 50},  # v3.0 flag on minimum; v3.1 value
    )
    got = rules(run(CountingSource(), Q, c))
    assert {k: (v["actual"], v["method"]) for k, v in got.items()} == {
        "qty: minimum": ("1 row", "scan"),  # qty = 1 is not > 1
        "qty: exclusiveMaximum": ("1 row", "scan"),  # qty = 50 is not < 50
    }


def test_a_bad_bound_is_an_error_of_its_rule_alone(catalog: SqlCatalog) -> None:
    create(catalog, "shop.measures", MEASURES, measures(5))
    got = rules(run(CountingSource(), Q, range_contract(day={"minimum": "soon"}, qty={"minimum": 1})))
    assert got["day: minimum"]["status"] == "error"
    assert got["day: minimum"]["error"] == (
        "quality rule day: minimum (properties.day.logicalTypeOptions.minimum): bound 'soon' is not an ISO date "
        "(YYYY-MM-DD)"
    )
    assert got["qty: minimum"]["status"] == "pass"


# -- strings: length, pattern, format ------------------------------------------------------------------------------

CODES = Schema(
    NestedField(1, "code", StringType(), required=False),
    NestedField(2, "email", StringType(), required=False),
    NestedField(3, "ref", StringType(), required=False),
)


def test_pattern_length_and_format_found_with_counts(catalog: SqlCatalog) -> None:
    rows = {
        "code": ["ABC-1", "ABD-22", "abc-3", "XY-4", "ABCDEFG-55", None],  # 3 off pattern, 1 short, 1 long
        "email": [secret(1), "not-an-email", secret(3), "a@b", secret(5), None],  # 2 invalid
        "ref": ["123e4567-e89b-12d3-a456-426614174000", "nope", None, None, None, None],
    }
    create(catalog, "shop.codes", CODES, rows)
    c = contract(
        "codes",
        [
            col(
                "code", "string", logical_type_options={"pattern": "^[A-Z]{3}-[0-9]+$", "minLength": 5, "maxLength": 8}
            ),
            col("email", "string", classification="pii", logical_type_options={"format": "email"}),
            col("ref", "string", logical_type_options={"format": "uuid"}),
        ],
    )
    r = run(CountingSource(), Q, c)
    got = rules(r)
    assert {k: (v["status"], v["actual"]) for k, v in got.items()} == {
        "code: pattern": ("fail", "3 rows"),  # abc-3, XY-4, ABCDEFG-55
        "code: minLength": ("fail", "1 row"),  # XY-4
        "code: maxLength": ("fail", "1 row"),  # ABCDEFG-55
        "email: format": ("fail", "2 rows"),
        "ref: format": ("fail", "1 row"),
    }
    assert r.result.status is CheckStatus.FAIL
    out = emitted(r)
    assert "secret.example" not in out and "not-an-email" not in out


def test_pattern_is_unanchored_as_in_json_schema(catalog: SqlCatalog) -> None:
    create(catalog, "shop.codes", CODES, {"code": ["xx-ABC-yy", "none"], "email": [None] * 2, "ref": [None] * 2})
    got = rules(
        run(CountingSource(), Q, contract("codes", [col("code", "string", logical_type_options={"pattern": "ABC"})]))
    )
    assert got["code: pattern"]["actual"] == "1 row"  # "xx-ABC-yy" contains a match


def test_constraints_floe_cannot_check_are_listed_with_the_reason(catalog: SqlCatalog) -> None:
    create(catalog, "shop.codes", CODES, {"code": ["ABC"], "email": [secret(1)], "ref": [None]})
    c = contract(
        "codes",
        [
            col("code", "string", logical_type_options={"format": "iban-ish", "maxLength": 3}),
            col("email", "string", logical_type_options={"format": "password"}),
        ],
    )
    r = run(CountingSource(), Q, c)
    got = rules(r)
    assert got["code: format"]["status"] == "skipped"
    assert got["code: format"]["note"].startswith("not checked: format 'iban-ish' is not one floe can check (checked:")
    assert got["email: format"]["note"] == (
        "not checked: format 'password' is a display hint (mask the value), not a rule on its content"
    )
    assert (got["code: maxLength"]["status"], r.result.status, r.outcome.measured_value) == (
        "pass",
        CheckStatus.PASS,
        1.0,
    )


def test_only_unverifiable_constraints_skip_the_check(catalog: SqlCatalog) -> None:
    create(catalog, "shop.codes", CODES, {"code": ["ABC"], "email": [None], "ref": [None]})
    text = QualityRule(name="described", type="text", table="codes", source_path="schema[0].quality[0]")
    c = contract("codes", [col("code", "string", logical_type_options={"format": "password"})], [text])
    r = run(CountingSource(), Q, c)
    assert (r.result.status, r.violations) == (CheckStatus.SKIPPED, ())
    assert r.outcome.reason == (
        "no quality rule could run: described: `type: text` rules are prose for people: nothing to execute "
        "(and 1 more not executable)"
    )


# -- applicability and configuration -------------------------------------------------------------------------------


def test_quality_applies_to_contracts_with_constraints_only_and_config_switches_them(catalog: SqlCatalog) -> None:
    spark_table(catalog, spark_rows(10, null_emails=1))
    assert QualityKind.applies(SPARK_CONTRACT)
    assert not QualityKind.applies(contract("events", [col("id", "integer")]))
    off = MonitoringConfig().merged({"column_constraints": {"enabled": False}})
    assert QualityKind.applies_under(SPARK_CONTRACT, MonitoringConfig())
    assert not QualityKind.applies_under(SPARK_CONTRACT, off)  # switched off: no quality check is planned
    r = run(CountingSource(), Q, SPARK_CONTRACT, off)
    assert (r.result.status, r.outcome.reason) == (
        CheckStatus.SKIPPED,
        "the table has no quality rules or column constraints",
    )
    warn = MonitoringConfig().merged({"column_constraints": {"severity": "warning"}})
    r = run(CountingSource(), Q, SPARK_CONTRACT, warn)
    [failed] = [f for f in r.outcome.findings if f.kind == "rule_failed"]
    assert (failed.severity, rules(r)["email: required"]["weight"]) == (S.WARNING, 1.0)


def test_explicit_rules_and_constraints_share_one_scan(catalog: SqlCatalog) -> None:
    create(catalog, "shop.lines", LINES, {"order_id": ["o1", "o1", "o2"], "line_no": [1, 2, 3], "sku": ["a", "a", "b"]})
    dup = QualityRule(name="sku_dups", type="library", table="lines", element="sku", metric="duplicateValues")
    source = CountingSource()
    r = run(source, Q, contract("lines", [col("sku", "string", unique=True)], [dup]))
    got = rules(r)
    assert (got["sku_dups"]["actual"], got["sku: unique"]["actual"]) == ("1 row", "1 row")
    assert len(source.opened) == 1  # one data file, read once for both rules


# -- tables given by their metadata file (servers of type s3 / local) ------------------------------------------------


def test_a_table_given_by_its_metadata_location_needs_no_catalog(catalog: SqlCatalog) -> None:
    table = spark_table(catalog, spark_rows(30, null_emails=2))
    static = TableRef(("shop",), "events", metadata_location=table.metadata_location)
    source = IcebergSource(default_catalog="no_such_catalog")  # never consulted
    schema = source.table_schema(static)
    assert [c.name for c in schema.columns] == ["id", "email", "created_at", "qty"]
    reading = source.last_update(static, "created_at")
    assert (reading.last_update, reading.method) == (NOW, "column_bounds")
    ping = ping_table(source, static, 5.0, lambda: NOW)
    assert (ping.ok, ping.reason) == (True, None)
    c = contract("events", [col("email", "string", required=True, classification="pii")], ref=static)
    counting = CountingSource()
    r = run(counting, Q, c)
    assert (rules(r)["email: required"]["actual"], rules(r)["email: required"]["method"]) == ("2 rows", "metadata")
    assert counting.opened == []
    # a metadata file that does not exist: the table is missing (ERROR, not a violation)
    gone = TableRef(
        ("shop",),
        "events",
        metadata_location=str(Path(table.metadata_location.removeprefix("file://")).parent / "v99.metadata.json"),
    )
    with pytest.raises(TableNotFoundError, match="no table metadata at"):
        source.load_table(gone)
    failed = ping_table(source, gone, 5.0, lambda: NOW)
    assert failed.ok is False
    assert run(counting, Q, contract("events", [col("email", "string", required=True)], ref=gone)).result.status is (
        CheckStatus.ERROR
    )


# -- through the loader: a strict ODCS file as the field writes it ---------------------------------------------------

CONTRACT_YAML = f"""
apiVersion: v3.1.0
kind: DataContract
id: urn:events
name: events
version: 1.0.0
status: active
servers:
  - server: lake
    type: iceberg
    catalog: {CATALOG}
    catalogUrl: sqlite:///unused.db  # the catalog's pyiceberg configuration (the fixture's env) wins
    namespace: shop
schema:
  - name: events
    properties:
      - name: id
        logicalType: integer
        primaryKey: true
        primaryKeyPosition: 1
      - name: email
        logicalType: string
        required: true
        classification: pii
        logicalTypeOptions:
          format: email
      - name: created_at
        logicalType: timestamp
        required: true
        logicalTypeOptions:
          minimum: 2026-01-01T00:00:00Z
      - name: qty
        logicalType: integer
        logicalTypeOptions:
          minimum: 1
          exclusiveMaximum: 51
"""


def test_constraints_of_a_loaded_odcs_contract_on_a_spark_style_table(catalog: SqlCatalog, tmp_path: Path) -> None:
    from floe_monitoring_defs.contracts import load_contract_file

    spark_table(catalog, spark_rows(30, null_emails=2), spark_rows(20, start=30))
    path = tmp_path / "events.yaml"
    path.write_text(CONTRACT_YAML, encoding="utf-8")
    source = CountingSource()
    r = run(source, Q, load_contract_file(path))
    got = {k: (v["status"], v["actual"], v["method"]) for k, v in rules(r).items()}
    assert got == {
        "primary key (id)": ("pass", "0 rows", "scan"),
        "id: required": ("pass", "0 rows", "metadata"),
        "email: required": ("fail", "2 rows", "metadata"),
        "email: format": ("pass", "0 rows", "scan"),
        "created_at: required": ("pass", "0 rows", "metadata"),
        "created_at: minimum": ("pass", "0 rows", "metadata"),
        "qty: minimum": ("pass", "0 rows", "metadata"),
        "qty: exclusiveMaximum": ("pass", "0 rows", "metadata"),
    }
    assert r.max_severity is S.ERROR and "secret.example" not in emitted(r)
