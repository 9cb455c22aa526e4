"""Quality rule compilation: operators, metrics -> SQL, constraint grammar, SQL vetting, registry."""

from importlib.metadata import EntryPoint
from typing import Any

import pyarrow as pa
import pytest

from floe_monitoring_defs.contracts import parse_document
from floe_monitoring_defs.contracts.model import QualityRule
from floe_monitoring_defs.quality import QualityEngineUnavailable, available_engines, load_engine, registry
from floe_monitoring_defs.quality.compile import (
    compile_rule,
    constraint_predicate,
    referenced_columns,
    single_select,
    sql_literal,
    substitute_placeholders,
)
from floe_monitoring_defs.quality.operators import RuleError, format_value, parse_comparison
from floe_monitoring_tests.unit.test_contracts import strict_doc

SCHEMA = pa.schema(
    [("id", pa.int64()), ("email", pa.large_string()), ("amount", pa.float64()), ("Status", pa.string())]
)


def rule(**kw: Any) -> QualityRule:
    return QualityRule(name=kw.pop("name", "r"), type=kw.pop("type", "library"), table="t", **kw)


# -- operators -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ops", "value", "holds", "text"),
    [
        ({"mustBe": 0}, 0.0, True, "= 0"),
        ({"mustNotBe": 3}, 3.0, False, "!= 3"),
        ({"mustBeLessThan": 5}, 12.0, False, "< 5"),
        ({"mustBeLessThan": 5}, 4.99, True, "< 5"),
        ({"mustBeGreaterThan": 0}, 0.0, False, "> 0"),
        ({"mustBeGreaterOrEqualTo": 60}, 60.0, True, ">= 60"),
        ({"mustBeLessOrEqualTo": 999}, 1000.0, False, "<= 999"),
        ({"mustBeBetween": [100, 120]}, 120.0, True, "between 100 and 120"),
        ({"mustBeBetween": [100, 120]}, 99.0, False, "between 100 and 120"),
        ({"mustNotBeBetween": [0, 100]}, 101.0, True, "not between 0 and 100"),
        ({"mustBeGreaterThan": 0, "mustBeLessThan": 100}, 50.0, True, "> 0 and < 100"),
        ({"mustBeGreaterThan": 0, "mustBeLessThan": 100}, 100.0, False, "> 0 and < 100"),
    ],
)
def test_comparison(ops: dict[str, Any], value: float, holds: bool, text: str) -> None:
    c = parse_comparison(ops)
    assert c.holds(value) is holds
    assert c.describe() == text


@pytest.mark.parametrize(
    "ops",
    [
        {"mustBe": "x"},
        {"mustBe": True},
        {"mustBeBetween": [5, 1]},
        {"mustBeBetween": 3},
        {"mustBeAbout": 1},
    ],
)
def test_bad_operators_are_refused(ops: dict[str, Any]) -> None:
    with pytest.raises(RuleError):
        parse_comparison(ops)


def test_format_value() -> None:
    assert format_value(12.0, "percent") == "12.0 %"
    assert format_value(100 / 3, "percent") == "33.333 %"
    assert format_value(0.04, "percent") == "0.04 %"
    assert format_value(0.0, "rows") == "0 rows"
    assert format_value(1.0, "rows") == "1 row"
    assert format_value(2.5, "value") == "2.5"


# -- metrics ---------------------------------------------------------------------------------------------


def test_library_metrics_compile_to_counts() -> None:
    c = compile_rule(
        rule(element="email", metric="nullValues", unit="percent", operators={"mustBeLessThan": 5}), SCHEMA
    )
    assert (c.kind, c.columns, c.unit) == ("aggregate", ("email",), "percent")
    assert c.expression == 'count(*) FILTER (WHERE "email" IS NULL)'
    c = compile_rule(rule(element="email", metric="missingValues"), SCHEMA)
    assert c.expression == """count(*) FILTER (WHERE "email" IS NULL OR "email" IN ('', 'N/A'))"""
    c = compile_rule(rule(element="id", metric="missingValues", arguments={"missingValues": [None, "", -1]}), SCHEMA)
    assert c.expression == 'count(*) FILTER (WHERE "id" IS NULL OR "id" IN (-1))'
    c = compile_rule(rule(element="Status", metric="invalidValues", arguments={"validValues": ["a", "it's"]}), SCHEMA)
    assert c.expression == """count(*) FILTER (WHERE "Status" IS NOT NULL AND (NOT ("Status" IN ('a', 'it''s'))))"""
    c = compile_rule(rule(element="id", metric="invalidValues", arguments={"pattern": "^[0-9]+$"}), SCHEMA)
    assert "regexp_full_match(CAST(\"id\" AS VARCHAR), '^[0-9]+$')" in (c.expression or "")
    c = compile_rule(rule(metric="duplicateValues", arguments={"properties": ["id", "email"]}), SCHEMA)
    assert c.expression == '(count(*) - count(DISTINCT ("id", "email")))' and c.columns == ("id", "email")
    c = compile_rule(rule(metric="rowCount", operators={"mustBeBetween": [1, 2]}), SCHEMA)
    assert (c.kind, c.columns) == ("row_count", ())
    c = compile_rule(rule(type="text"), SCHEMA)
    assert c.kind == "skip"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"metric": "nullValues"}, "needs a column"),
        ({"metric": "nullValues", "element": "nope"}, "not in the table"),
        ({"metric": "freshness", "element": "id"}, "not supported"),
        ({"metric": "invalidValues", "element": "id"}, "validValues"),
        ({"metric": "duplicateValues"}, "arguments.properties"),
        ({"metric": "nullValues", "element": "id", "unit": "bytes"}, "unit"),
        ({"metric": "rowCount", "unit": "percent"}, "percent"),
        ({"type": "constraint", "element": "amount", "rule": "> 0 OR 1=1"}, "operator followed by literals"),
        ({"type": "format", "element": "email"}, "regular expression"),
    ],
)
def test_bad_rules_are_refused(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(RuleError, match=match):
        compile_rule(rule(**kw), SCHEMA)


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        (">= 0", '"c" >= 0'),
        ("< 100", '"c" < 100'),
        ("== 1.5", '"c" = 1.5'),
        ("!= ''", """"c" <> ''"""),
        ("BETWEEN 1 AND 5", '"c" BETWEEN 1 AND 5'),
        ("not between -1 and 1e3", '"c" NOT BETWEEN -1 AND 1E+3'),
        ("IN ('a','b')", """"c" IN ('a', 'b')"""),
        ("NOT IN ('it''s', 3)", """"c" NOT IN ('it''s', 3)"""),
        ("LIKE '%@%'", """CAST("c" AS VARCHAR) LIKE '%@%'"""),
    ],
)
def test_constraint_grammar(text: str, sql: str) -> None:
    assert constraint_predicate('"c"', text) == sql


@pytest.mark.parametrize(
    "text",
    [
        "> 0 OR 1=1",
        "= 1; DROP TABLE object",
        "IN (SELECT id FROM object)",
        ">= 0 --",
        "> amount",
        "= 'a' OR 'x'='x'",
        "BETWEEN 1 AND 5 OR TRUE",
        "",
        "IS NULL",
        "> (SELECT 1)",
        "= '\x00'",
    ],
)
def test_constraint_injection_is_refused(text: str) -> None:
    with pytest.raises(RuleError):
        constraint_predicate('"c"', text)


def test_sql_literal_escapes() -> None:
    assert sql_literal("a'b") == "'a''b'"
    assert sql_literal(None) == "NULL" and sql_literal(True) == "TRUE" and sql_literal(2) == "2"
    with pytest.raises(RuleError):
        sql_literal(float("nan"))
    with pytest.raises(RuleError):
        sql_literal({"x": 1})


# -- type: sql ---------------------------------------------------------------------------------------------


def test_placeholders() -> None:
    q = "SELECT count(*) FROM ${object} WHERE {property} < 0 AND ${property} > -5 AND {table} IS NOT NULL"
    assert substitute_placeholders(q, "amount") == (
        'SELECT count(*) FROM "object" WHERE "amount" < 0 AND "amount" > -5 AND "object" IS NOT NULL'
    )
    with pytest.raises(RuleError, match="not on a column"):
        substitute_placeholders("SELECT {property} FROM {object}", None)


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM object",
        "SELECT 1; SELECT 2",
        "COPY object TO '/tmp/x.csv'",
        "DROP TABLE object",
        "INSERT INTO object VALUES (1)",
        "PRAGMA version",
        "EXPLAIN SELECT 1",
        "ATTACH 'x.db'",
        "SET enable_external_access = true",
        "CALL duckdb_settings()",
        "SELECT 1; DELETE FROM object",
    ],
)
def test_only_a_single_select_is_accepted(query: str) -> None:
    with pytest.raises(RuleError, match="only a single read-only SELECT is allowed"):
        single_select(query)


def test_select_and_with_are_accepted() -> None:
    assert single_select("SELECT 1;") == "SELECT 1"
    assert single_select("WITH x AS (SELECT 1 AS a) SELECT a FROM x")


def test_referenced_columns() -> None:
    q = """SELECT count(*) FROM "object" o WHERE o.amount < 0 AND status = 'email' -- id
           AND "Status" IS NOT NULL"""
    assert referenced_columns(q, SCHEMA.names) == ("amount", "Status")


def test_sql_rule_refusal_names_rule_and_source_path() -> None:
    with pytest.raises(RuleError, match="only a single read-only SELECT"):
        compile_rule(rule(type="sql", query="DELETE FROM ${object}", operators={"mustBe": 0}), SCHEMA)


def test_loader_keeps_unit_and_operators() -> None:
    doc = strict_doc()
    doc["schema"][0]["properties"][1]["quality"] = [
        {"metric": "nullValues", "mustBeLessThan": 5, "unit": "percent", "severity": "warning"}
    ]
    [r] = parse_document(doc, "x.yaml").tables[0].quality_rules
    assert (r.unit, r.operators, r.severity, r.element) == ("percent", {"mustBeLessThan": 5}, "warning", "email")


# -- registry -------------------------------------------------------------------------------------------------


class BoomEngine:
    name = "boom"

    def __init__(self) -> None:
        raise RuntimeError("cannot connect")


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    real = registry._entry_points()
    monkeypatch.setattr(registry, "_entry_points", lambda: [*real, *eps])


def test_builtin_engine_is_registered() -> None:
    assert "duckdb" in available_engines()
    assert load_engine("duckdb").name == "duckdb"


def test_unknown_engine_is_unavailable() -> None:
    with pytest.raises(QualityEngineUnavailable, match="no entry point 'great_expectations'") as err:
        load_engine("great_expectations")
    assert err.value.name == "great_expectations"


def test_engine_that_cannot_start_or_import_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(
        monkeypatch,
        EntryPoint("boom", f"{__name__}:BoomEngine", registry.ENTRY_POINT_GROUP),
        EntryPoint("missing", "floe_no_such_module_xyz:Engine", registry.ENTRY_POINT_GROUP),
    )
    with pytest.raises(QualityEngineUnavailable, match="cannot start: RuntimeError: cannot connect"):
        load_engine("boom")
    with pytest.raises(QualityEngineUnavailable, match="cannot import floe_no_such_module_xyz"):
        load_engine("missing")
