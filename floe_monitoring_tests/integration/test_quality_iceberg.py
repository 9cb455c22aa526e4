"""Quality rules on real Iceberg tables through the built-in DuckDB engine (US4, FR-015..018, FR-025)."""

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    DoubleType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from floe_monitoring_defs.checks.quality import run_quality
from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.contracts import parse_document
from floe_monitoring_defs.contracts.model import MonitoredTable, QualityRule
from floe_monitoring_defs.models import CheckOutcome, CheckStatus, ViolationSeverity
from floe_monitoring_defs.quality import QualityEngineUnavailable, RuleResult
from floe_monitoring_defs.quality.duckdb_engine import DuckDBQualityEngine
from floe_monitoring_defs.quality.source import IcebergQualitySource
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, create, make_catalog

pytestmark = pytest.mark.integration

S = ViolationSeverity
TH = SeverityThresholds()
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    return make_catalog(tmp_path)


SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "email", StringType(), required=False),
    NestedField(3, "amount", DoubleType(), required=False),
    NestedField(4, "status", StringType(), required=False),
    NestedField(5, "country", StringType(), required=False),
    NestedField(6, "payload", StringType(), required=False),
    NestedField(7, "updated_at", TimestamptzType(), required=False),
)

PROPS: list[dict[str, Any]] = [
    {"name": "id", "logicalType": "integer"},
    {"name": "email", "logicalType": "string", "classification": "pii"},
    {"name": "amount", "logicalType": "number"},
    {"name": "status", "logicalType": "string"},
    {"name": "country", "logicalType": "string"},
    {"name": "payload", "logicalType": "string"},
    {"name": "updated_at", "logicalType": "timestamp"},
]


def secret(i: int) -> str:
    return f"secret-person-{i}@example.com"


def data(
    n: int = 100,
    *,
    null_emails: int = 12,
    negatives: int = 0,
    dup_ids: int = 0,
    bad_status: int = 0,
    bad_country: int = 0,
    start: int = 0,
) -> dict[str, list[Any]]:
    """n rows; the first `null_emails` emails are null, the first `negatives` amounts negative, ..."""
    return {
        "id": [start + (i if i >= dup_ids else 0) for i in range(n)],
        "email": [None if i < null_emails else secret(start + i) for i in range(n)],
        "amount": [-1.0 - i if i < negatives else 10.0 + i for i in range(n)],
        "status": ["lost" if i < bad_status else ("open", "closed")[i % 2] for i in range(n)],
        "country": ["France" if i < bad_country else ("FR", "DE", "US")[i % 3] for i in range(n)],
        "payload": ["x" * 50] * n,
        "updated_at": [T0 - timedelta(minutes=i) for i in range(n)],
    }


def table_with(catalog: SqlCatalog, rows: dict[str, list[Any]] | None = None, *batches: dict[str, list[Any]]) -> Table:
    t = create(catalog, "crm.customers", SCHEMA, rows)
    for b in batches:
        t.append(pa.table(b, schema=t.schema().as_arrow()))
    return t


def contract(
    props_quality: dict[str, list[dict[str, Any]]] | None = None, table_quality: list[dict[str, Any]] | None = None
) -> MonitoredTable:
    props = [
        dict(p, **({"quality": props_quality[p["name"]]} if props_quality and p["name"] in props_quality else {}))
        for p in PROPS
    ]
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": "urn:customers",
        "name": "customers",
        "version": "1.0.0",
        "servers": [
            {
                "server": "t",
                "type": "iceberg",
                "catalog": CATALOG,
                "catalogUrl": "sqlite:///unused.db",
                "namespace": "crm",
            }
        ],
        "schema": [{"name": "customers", "properties": props, **({"quality": table_quality} if table_quality else {})}],
    }
    [t] = parse_document(doc, "customers.yaml").tables
    return t


def dialect(*rules: dict[str, Any]) -> MonitoredTable:
    base = contract()
    extra = tuple(
        QualityRule(
            name=r["name"],
            type=r["type"],
            table="customers",
            element=r["element"],
            rule=r.get("rule"),
            severity=r.get("severity"),
            source_path=f"quality[{i}]",
        )
        for i, r in enumerate(rules)
    )
    return MonitoredTable(base.schema_name, base.ref, base.columns, quality_rules=extra)


def run(t: Table, m: MonitoredTable, threshold: float = 0.8, engine: Any = "duckdb") -> CheckOutcome:
    return run_quality(t, m, engine, threshold, TH)


def by_rule(out: CheckOutcome) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in out.details["rules"]}


# -- US4 ------------------------------------------------------------------------------------------------------


def test_us4_1_null_rate_above_limit_is_a_violation_with_expected_actual_and_score(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(100, null_emails=12))
    m = contract(
        {"email": [{"name": "email_null_rate", "metric": "nullValues", "unit": "percent", "mustBeLessThan": 5}]}
    )
    out = run(t, m)
    assert out.status is CheckStatus.FAIL
    rule_f = [f for f in out.findings if f.kind == "rule_failed"]
    assert len(rule_f) == 1
    f = rule_f[0]
    assert (f.severity, f.element, f.expected, f.actual) == (S.ERROR, "email", "< 5 %", "12.0 %")
    assert "email_null_rate" in f.message and "email" in f.message
    assert out.measured_value == 0.0 and out.details["score"] == 0.0 and out.threshold == 0.8
    [score_f] = [f for f in out.findings if f.kind == "score_below_threshold"]
    # score 0 would be CRITICAL by the score bands; capped at the worst failed rule's severity (ERROR)
    assert score_f.severity is S.ERROR and score_f.actual == "0.00" and score_f.expected == ">= 0.80"
    assert out.details["rows_checked"] == 100 and out.details["columns_read"] == ["email"]


def test_us4_2_weighted_score_and_separate_failures(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(100, null_emails=12, negatives=3, bad_status=2))
    m = contract(
        {
            "email": [
                {
                    "name": "email_nulls_pct",
                    "metric": "nullValues",
                    "unit": "percent",
                    "mustBeLessThan": 20,
                    "severity": "critical",
                }
            ],  # pass, w 3.0
            "amount": [
                {
                    "name": "amount_not_null",
                    "metric": "nullValues",
                    "severity": "info",  # pass, w 0.5
                    "mustBe": 0,
                },
                {
                    "name": "no_negative_amounts",
                    "type": "sql",
                    "severity": "warning",  # fail, w 1.0
                    "query": "SELECT count(*) FROM ${object} WHERE {property} < 0",
                    "mustBe": 0,
                },
            ],
            "status": [
                {
                    "name": "status_valid",
                    "metric": "invalidValues",  # fail, w 4.0
                    "arguments": {"validValues": ["open", "closed"]},
                    "mustBe": 0,
                    "customProperties": [{"property": "weight", "value": 4}],
                }
            ],
        },
        [{"name": "enough_rows", "metric": "rowCount", "mustBeGreaterThan": 10}],  # pass, w 2.0
    )
    out = run(t, m)
    # passed 3.0 + 0.5 + 2.0 = 5.5 of 3.0 + 0.5 + 1.0 + 4.0 + 2.0 = 10.5
    assert out.measured_value == pytest.approx(5.5 / 10.5)
    failed = {f.metadata["rule"]: f for f in out.findings if f.kind == "rule_failed"}
    assert set(failed) == {"no_negative_amounts", "status_valid"}
    assert (failed["no_negative_amounts"].severity, failed["no_negative_amounts"].actual) == (S.WARNING, "3")
    assert failed["no_negative_amounts"].element == "amount"
    assert (failed["status_valid"].severity, failed["status_valid"].expected, failed["status_valid"].actual) == (
        S.ERROR,
        "= 0 rows",
        "2 rows",
    )
    [score_f] = [f for f in out.findings if f.kind == "score_below_threshold"]
    assert score_f.severity is S.ERROR  # 0.524 is between 50 % and 90 % of 0.8
    assert out.status is CheckStatus.FAIL
    assert {r["rule"]: r["weight"] for r in out.details["rules"]} == {
        "email_nulls_pct": 3.0,
        "amount_not_null": 0.5,
        "no_negative_amounts": 1.0,
        "status_valid": 4.0,
        "enough_rows": 2.0,
    }


class _StartFails:
    name = "broken"

    def run(self, source: Any, monitored: MonitoredTable, rules: Sequence[QualityRule]) -> list[RuleResult]:
        raise QualityEngineUnavailable("broken", "the engine's server is down")


def test_us4_3_engine_unavailable_is_skipped_without_findings(
    catalog: SqlCatalog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    t = table_with(catalog, data(100, null_emails=50))
    m = contract({"email": [{"metric": "nullValues", "mustBe": 0}]})
    out = run(t, m, engine="soda_core_not_installed")
    assert (out.status, out.findings) == (CheckStatus.SKIPPED, ())
    assert out.reason is not None and "soda_core_not_installed" in out.reason
    assert any(r.levelname == "WARNING" and "skipped" in r.getMessage() for r in caplog.records)

    def boom(self: DuckDBQualityEngine, **_: Any) -> None:
        raise RuntimeError("duckdb failed to initialise")

    monkeypatch.setattr(DuckDBQualityEngine, "__init__", boom)
    out = run(t, m, engine="duckdb")
    assert (out.status, out.findings) == (CheckStatus.SKIPPED, ())
    assert out.reason is not None and "cannot start: RuntimeError" in out.reason
    out = run(t, m, engine=_StartFails())
    assert (out.status, out.findings) == (CheckStatus.SKIPPED, ())


# -- rule kinds ----------------------------------------------------------------------------------------------------


def test_sql_duplicate_rowcount_and_invalid_values(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(60, null_emails=0, negatives=2, dup_ids=3, bad_country=4))
    m = contract(
        {
            "amount": [
                {"name": "neg", "type": "sql", "query": "SELECT COUNT(*) FROM {object} WHERE amount < 0", "mustBe": 0}
            ],
            "id": [
                {"name": "id_dups", "metric": "duplicateValues", "mustBe": 0},
                {"name": "id_dups_pct", "metric": "duplicateValues", "unit": "percent", "mustBeLessThan": 5},
            ],
            "country": [
                {
                    "name": "country_list",
                    "metric": "invalidValues",
                    "arguments": {"validValues": ["FR", "DE", "US"]},
                    "mustBe": 0,
                },
                {
                    "name": "country_pattern",
                    "metric": "invalidValues",
                    "arguments": {"pattern": "^[A-Z]{2}$"},
                    "mustBeLessOrEqualTo": 4,
                },
            ],
            "email": [
                {
                    "name": "email_pattern",
                    "metric": "invalidValues",
                    "arguments": {"pattern": "^[a-z0-9.-]+@example\\.com$"},
                    "mustBe": 0,
                }
            ],
        },
        [
            {"name": "rows_between", "metric": "rowCount", "mustBeBetween": [50, 70]},
            {"name": "rows_not_between", "metric": "rowCount", "mustNotBeBetween": [50, 70]},
            {
                "name": "pair_unique",
                "metric": "duplicateValues",
                "arguments": {"properties": ["id", "status"]},
                "mustBe": 0,
            },
            {
                "name": "sql_ratio",
                "type": "sql",
                "mustBeLessThan": 0.1,
                "query": "SELECT avg(CASE WHEN amount < 0 THEN 1 ELSE 0 END) FROM customers",
            },
        ],
    )
    out = run(t, m)
    r = by_rule(out)
    assert (r["neg"]["status"], r["neg"]["actual"]) == ("fail", "2")
    assert (r["id_dups"]["status"], r["id_dups"]["actual"]) == ("fail", "2 rows")  # ids 0,0,0 -> 2 duplicates
    assert (r["id_dups_pct"]["status"], r["id_dups_pct"]["actual"]) == ("pass", "3.333 %")
    assert (r["country_list"]["status"], r["country_list"]["actual"]) == ("fail", "4 rows")
    assert (r["country_pattern"]["status"], r["country_pattern"]["actual"]) == ("pass", "4 rows")
    assert r["email_pattern"]["status"] == "pass"
    assert (r["rows_between"]["status"], r["rows_between"]["actual"]) == ("pass", "60 rows")
    assert r["rows_not_between"]["status"] == "fail"
    # ids 0,0,0 have statuses open, closed, open -> (0, open) twice -> 1 duplicate
    assert (r["pair_unique"]["status"], r["pair_unique"]["actual"]) == ("fail", "1 row")
    assert (r["sql_ratio"]["status"], r["sql_ratio"]["actual"]) == ("pass", "0.0333333")
    assert "payload" not in out.details["columns_read"] and "updated_at" not in out.details["columns_read"]


def test_floe_dialect_rules(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(40, null_emails=5, negatives=3, bad_status=1))
    m = dialect(
        {"name": "no_null_emails", "type": "null_check", "element": "email", "rule": "NOT NULL"},
        {
            "name": "email_format",
            "type": "format",
            "element": "email",
            "rule": "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$",
        },
        {"name": "amount_non_negative", "type": "constraint", "element": "amount", "rule": ">= 0"},
        {"name": "amount_range", "type": "constraint", "element": "amount", "rule": "BETWEEN -100 AND 1000"},
        {"name": "status_in", "type": "constraint", "element": "status", "rule": "IN ('open', 'closed')"},
        {"name": "status_not_empty", "type": "constraint", "element": "status", "rule": "!= ''"},
        {"name": "injected", "type": "constraint", "element": "amount", "rule": ">= 0 OR 1=1"},
    )
    out = run(t, m)
    r = by_rule(out)
    assert (r["no_null_emails"]["status"], r["no_null_emails"]["actual"]) == ("fail", "5 rows")
    assert r["email_format"]["status"] == "pass"
    assert (r["amount_non_negative"]["status"], r["amount_non_negative"]["actual"]) == ("fail", "3 rows")
    assert r["amount_range"]["status"] == "pass"
    assert (r["status_in"]["status"], r["status_in"]["actual"]) == ("fail", "1 row")
    assert r["status_not_empty"]["status"] == "pass"
    assert r["injected"]["status"] == "error"
    assert r["injected"]["error"].startswith("quality rule injected (quality[6]): constraint is not an operator")


class _Recorder:
    """A DuckDB connection that records every statement it is asked to run."""

    def __init__(self, con: Any, log: list[str]) -> None:
        self._con, self._log = con, log

    def execute(self, query: str, *args: Any) -> Any:
        self._log.append(query)
        return self._con.execute(query, *args)

    def register(self, name: str, obj: Any) -> Any:
        return self._con.register(name, obj)

    def close(self) -> None:
        self._con.close()


def test_non_select_sql_is_refused_and_never_executed(catalog: SqlCatalog, tmp_path: Path) -> None:
    t = table_with(catalog, data(10))
    target = tmp_path / "leak.csv"
    m = contract(
        table_quality=[
            {"name": "deleter", "type": "sql", "query": "DELETE FROM ${object}", "mustBe": 0},
            {"name": "two", "type": "sql", "query": "SELECT 1; DROP TABLE customers", "mustBe": 1},
            {"name": "copier", "type": "sql", "query": f"COPY (SELECT * FROM {{object}}) TO '{target}'", "mustBe": 0},
            {"name": "reader", "type": "sql", "query": "SELECT count(*) FROM read_csv('/etc/passwd')", "mustBe": 0},
            {"name": "ok", "type": "sql", "query": "SELECT count(*) FROM ${object}", "mustBe": 10},
        ]
    )
    engine = DuckDBQualityEngine()
    executed: list[str] = []
    real = engine._connect
    # A recording stand-in for the DuckDB connection, deliberately not a DuckDBPyConnection.
    engine._connect = lambda: _Recorder(real(), executed)  # type: ignore[method-assign,assignment,return-value]
    out = run(t, m, engine=engine)
    r = by_rule(out)
    for k, name in enumerate(("deleter", "two", "copier")):
        assert r[name]["status"] == "error"
        assert r[name]["error"] == (
            f"quality rule {name} (schema[0].quality[{k}]): only a single read-only SELECT is allowed"
        )
    assert r["reader"]["status"] == "error" and "Permission Error" in r["reader"]["error"]
    assert r["ok"]["status"] == "pass" and r["ok"]["rows_checked"] == 10
    assert not any(word in q.upper() for q in executed for word in ("DELETE", "DROP", "COPY"))
    assert not target.exists()
    assert out.status is CheckStatus.PASS  # errored rules neither pass nor fail; "ok" passed


def test_sql_rule_result_shape_is_checked(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(10))
    queries = {
        "two_cols": ("SELECT 1, 2", {"mustBe": 1}),
        "many_rows": ("SELECT id FROM ${object}", {"mustBe": 1}),
        "text": ("SELECT 'x'", {"mustBe": 1}),
        "null": ("SELECT max(id) FROM ${object} WHERE id < 0", {"mustBe": 1}),
        "bool": ("SELECT count(*) = 10 FROM ${object}", {}),
        "no_op": ("SELECT 1", {}),
    }
    base = contract()
    m = MonitoredTable(
        base.schema_name,
        base.ref,
        base.columns,
        quality_rules=tuple(
            QualityRule(name=name, type="sql", table="customers", query=q, operators=ops)
            for name, (q, ops) in queries.items()
        ),
    )
    r = by_rule(run(t, m))
    assert "one row with one column" in r["two_cols"]["error"]
    assert "one row with one column" in r["many_rows"]["error"]
    assert "must return a number" in r["text"]["error"] and "NULL" in r["null"]["error"]
    assert r["bool"]["status"] == "pass"
    assert "no operator" in r["no_op"]["error"]


# -- projection, streaming, errors ------------------------------------------------------------------------------


class SpySource(IcebergQualitySource):
    def __init__(self, table: Table, **kw: Any) -> None:
        kw.setdefault("direct_read", False)  # the spy counts the Arrow-stream scans (direct reads: its own test)
        super().__init__(table, **kw)
        self.scans: list[tuple[str, ...]] = []

    def scan(self, columns: Sequence[str]) -> pa.RecordBatchReader:
        self.scans.append(tuple(columns))
        return super().scan(columns)


@pytest.mark.parametrize("prefetch", [1, 2, 4])
def test_projection_reads_only_touched_columns_across_files(catalog: SqlCatalog, prefetch: int) -> None:
    t = table_with(
        catalog, data(30, null_emails=3), data(30, null_emails=0, start=30), data(30, null_emails=1, start=60)
    )
    m = contract(
        {
            "email": [{"name": "email_nulls", "metric": "nullValues", "mustBeLessThan": 5}],
            "status": [
                {
                    "name": "status_valid",
                    "metric": "invalidValues",
                    "arguments": {"validValues": ["open", "closed"]},
                    "mustBe": 0,
                }
            ],
            "amount": [
                {"name": "neg", "type": "sql", "query": "SELECT count(*) FROM ${object} WHERE amount < 0", "mustBe": 0}
            ],
        }
    )
    src = SpySource(t, prefetch=prefetch)
    out = run_quality(src, m, "duckdb", 0.8, TH)
    assert src.scans == [("email", "status"), ("amount",)]  # one pass for library rules, one for sql
    assert out.details["columns_read"] == ["email", "amount", "status"]
    assert out.details["rows_checked"] == 90
    assert by_rule(out)["email_nulls"]["actual"] == "4 rows"
    assert out.status is CheckStatus.PASS


def test_row_count_only_reads_no_column_and_empty_table(catalog: SqlCatalog) -> None:
    m = contract(table_quality=[{"name": "has_rows", "metric": "rowCount", "mustBeGreaterThan": 0}])
    t = table_with(catalog, data(7))
    out = run(t, m)
    assert (out.status, by_rule(out)["has_rows"]["actual"], out.details["columns_read"]) == (
        CheckStatus.PASS,
        "7 rows",
        [],
    )
    empty = create(catalog, "crm.empty", SCHEMA)
    m2 = contract(
        {"email": [{"name": "pct", "metric": "nullValues", "unit": "percent", "mustBeLessThan": 5}]},
        [{"name": "has_rows", "metric": "rowCount", "mustBeGreaterThan": 0}],
    )
    out = run(empty, m2)
    r = by_rule(out)
    assert (r["pct"]["status"], r["pct"]["actual"]) == ("pass", "0.0 %")
    assert (r["has_rows"]["status"], r["has_rows"]["actual"]) == ("fail", "0 rows")


def test_a_bad_rule_errors_alone(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(20, null_emails=2))
    m = contract(
        {
            "email": [
                {"name": "bad_regex", "metric": "invalidValues", "arguments": {"pattern": "(?=x)"}, "mustBe": 0},
                {"name": "nulls", "metric": "nullValues", "mustBe": 2},
            ],
            "id": [
                {"name": "bad_literal", "metric": "invalidValues", "arguments": {"validValues": ["abc"]}, "mustBe": 0}
            ],
            "amount": [
                {"name": "missing_col", "type": "sql", "query": "SELECT count(nope) FROM ${object}", "mustBe": 0}
            ],
        },
        [{"name": "no_such_column", "metric": "duplicateValues", "arguments": {"properties": ["email"]}, "mustBe": 0}],
    )
    # A rule naming an undeclared column is refused at load; one whose column the table no longer has (a
    # dropped column the contract still lists) errors alone at run time: point the loaded rule at `zzz`.
    m = dataclasses.replace(
        m,
        quality_rules=tuple(
            dataclasses.replace(q, arguments={"properties": ["zzz"]}) if q.name == "no_such_column" else q
            for q in m.quality_rules
        ),
    )
    r = by_rule(run(t, m))
    assert r["bad_regex"]["status"] == "error" and "quality rule bad_regex" in r["bad_regex"]["error"]
    assert r["nulls"]["status"] == "pass"
    assert r["bad_literal"]["status"] == "fail"  # 'abc' is no id: every id is invalid
    assert r["missing_col"]["status"] == "error" and "nope" in r["missing_col"]["error"]
    assert r["no_such_column"]["status"] == "error" and "zzz" in r["no_such_column"]["error"]


def test_unreadable_table_is_error_not_violation(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(20, null_emails=20))
    for task in t.scan().plan_files():
        Path(task.file.file_path.removeprefix("file://")).unlink()
    m = contract(
        {"email": [{"metric": "nullValues", "mustBe": 0}]},
        [{"name": "neg", "type": "sql", "query": "SELECT count(*) FROM ${object}", "mustBe": 0}],
    )
    out = run(t, m)
    assert (out.status, out.findings) == (CheckStatus.ERROR, ())
    assert out.reason is not None and "cannot read" in out.reason


# -- FR-025 ---------------------------------------------------------------------------------------------------------


def test_no_value_of_a_pii_column_leaves_the_check(catalog: SqlCatalog) -> None:
    t = table_with(catalog, data(50, null_emails=5, dup_ids=0))
    t.append(pa.table(data(3, null_emails=0, start=10), schema=t.schema().as_arrow()))  # duplicate emails
    q = [
        {"name": "e_nulls", "metric": "nullValues", "unit": "percent", "mustBeLessThan": 1},
        {
            "name": "e_missing",
            "metric": "missingValues",
            "arguments": {"missingValues": [None, "", secret(20)]},
            "mustBe": 0,
        },
        {"name": "e_valid", "metric": "invalidValues", "arguments": {"validValues": [secret(30)]}, "mustBe": 0},
        {
            "name": "e_pattern",
            "metric": "invalidValues",
            "arguments": {"pattern": "^[a-z]+@example\\.org$"},
            "mustBe": 0,
        },
        {"name": "e_dups", "metric": "duplicateValues", "mustBe": 0},
        {
            "name": "e_sql_count",
            "type": "sql",
            "mustBe": 0,
            "query": "SELECT count(*) FROM ${object} WHERE {property} LIKE 'secret%'",
        },
        {"name": "e_sql_value", "type": "sql", "mustBe": 0, "query": "SELECT max({property}) FROM ${object}"},
        {
            "name": "e_sql_cast",
            "type": "sql",
            "mustBe": 0,
            "query": "SELECT max(CAST({property} AS INTEGER)) FROM ${object}",
        },
        {"name": "e_bad_regex", "metric": "invalidValues", "arguments": {"pattern": "(?<=x)"}, "mustBe": 0},
    ]
    m = contract(
        {"email": q},
        [{"name": "pair", "metric": "duplicateValues", "arguments": {"properties": ["email", "status"]}, "mustBe": 0}],
    )
    m = MonitoredTable(
        m.schema_name,
        m.ref,
        m.columns,
        quality_rules=(
            *m.quality_rules,
            *dialect(
                {"name": "e_null", "type": "null_check", "element": "email"},
                {"name": "e_format", "type": "format", "element": "email", "rule": "^x$"},
                {"name": "e_constraint", "type": "constraint", "element": "email", "rule": "= 'nobody'"},
                {"name": "e_constraint_num", "type": "constraint", "element": "email", "rule": "> 5"},
            ).quality_rules,
        ),
    )
    out = run(t, m)
    emitted = json.dumps(
        {
            "reason": out.reason,
            "details": out.details,
            "findings": [
                {"m": f.message, "e": f.expected, "a": f.actual, "md": f.metadata, "el": f.element}
                for f in out.findings
            ],
        },
        default=str,
    )
    assert out.findings, "the rules above must fail"
    statuses = {r["rule"]: r["status"] for r in out.details["rules"]}
    assert statuses["e_sql_value"] == "error" and statuses["e_sql_cast"] == "error"
    assert "secret" not in emitted and "example.com" not in emitted and "person-" not in emitted


def test_a_runtime_failure_of_the_combined_pass_is_isolated_to_its_rule(catalog: SqlCatalog) -> None:
    from floe_monitoring_defs.quality.compile import CompiledRule
    from floe_monitoring_defs.quality.operators import parse_comparison

    t = table_with(catalog, data(20, null_emails=2))
    zero = parse_comparison({"mustBe": 0})
    good = CompiledRule(
        QualityRule(name="good", type="library", table="customers", element="status"),
        "nullValues",
        "aggregate",
        zero,
        "rows",
        ("status",),
        'count(*) FILTER (WHERE "status" IS NULL)',
    )
    # passes the all-NULL probe, fails on the first real value (which it must not quote)
    bad = CompiledRule(
        QualityRule(name="bad", type="library", table="customers", element="email"),
        "nullValues",
        "aggregate",
        zero,
        "rows",
        ("email",),
        'count(*) FILTER (WHERE CAST("email" AS INTEGER) > 0)',
    )
    src = SpySource(t)
    rows, counts = DuckDBQualityEngine()._aggregate_pass(src, [(0, good), (1, bad)], {"email": "pii"})
    assert rows == 20 and counts[0] == 0
    assert counts[1] == "Conversion Error (details withheld: column 'email' is classified pii)"
    assert src.scans == [("email", "status"), ("status",), ("email",)]  # combined, then one by one
