"""Schema drift (pure): one finding per drift, renames by field id, safe promotions (US2)."""

from typing import Literal

import pytest

from floe_monitoring_defs.checks.schema_drift import evaluate_schema_drift, expected_type, type_compatible
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import ExpectedColumn, MonitoredTable, TableRef
from floe_monitoring_defs.models import CheckOutcome, CheckStatus, ViolationSeverity
from floe_monitoring_defs.sources.base import ColumnInfo, TableSchemaInfo

S = ViolationSeverity


def table(*cols: ExpectedColumn) -> MonitoredTable:
    return MonitoredTable("t", TableRef(("ns",), "t"), cols)


def col(
    name: str,
    logical: str,
    physical: str | None = None,
    required: bool = False,
    pk: bool = False,
    field_id: int | None = None,
) -> ExpectedColumn:
    return ExpectedColumn(name, name, logical, physical, required or pk, pk, field_id=field_id)


CONTRACT = table(col("id", "integer", "INT", pk=True), col("name", "string"), col("amount", "number", "DECIMAL(10,2)"))


def actual(*cols: tuple[str, int, str, bool], ids: tuple[str, ...] = ("id",)) -> TableSchemaInfo:
    return TableSchemaInfo(tuple(ColumnInfo(n, i, t, r) for n, i, t, r in cols), identifier_fields=ids)


BASE = (("id", 1, "int", True), ("name", 2, "string", False), ("amount", 3, "decimal(10, 2)", False))


def kinds(
    schema: TableSchemaInfo | None, contract: MonitoredTable = CONTRACT, baseline: dict[str, int] | None = None
) -> tuple[CheckOutcome, list[tuple[str, str | None, ViolationSeverity]]]:
    out, _ = evaluate_schema_drift(contract, schema, baseline)
    return out, [(f.kind, f.element, f.severity) for f in out.findings]


def test_exact_match_passes() -> None:
    out, found = kinds(actual(*BASE))
    assert out.status is CheckStatus.PASS and found == []


def test_us2_1_column_added_is_a_warning() -> None:
    _, found = kinds(actual(*BASE, ("status", 4, "string", False)))
    assert found == [("column_added", "status", S.WARNING)]


def test_us2_2_decimal_vs_float_is_a_type_change() -> None:
    out, found = kinds(actual(BASE[0], BASE[1], ("amount", 3, "float", False)))
    assert found == [("type_changed", "amount", S.ERROR)]
    assert (out.findings[0].expected, out.findings[0].actual) == ("DECIMAL(10,2)", "float")


def test_us2_3_column_removed_is_critical() -> None:
    _, found = kinds(actual(BASE[0], BASE[1]))
    assert found == [("column_removed", "amount", S.CRITICAL)]


def test_one_finding_per_drift() -> None:
    _, found = kinds(actual(("id", 1, "int", True), ("name", 2, "int", True), ("x", 9, "string", False)))
    assert sorted(found) == sorted(
        [
            ("column_removed", "amount", S.CRITICAL),
            ("column_added", "x", S.WARNING),
            ("type_changed", "name", S.ERROR),
            ("nullability_changed", "name", S.WARNING),
        ]
    )


def test_nullability_directions() -> None:
    """Contract optional / table required: WARNING. Contract required / table optional (Spark and dbt write every
    field optional): the table does not enforce the promise, an INFO note; the quality check verifies the data."""
    contract = table(col("id", "integer", pk=True), col("a", "string", required=True), col("b", "string"))
    out, found = kinds(actual(("id", 1, "long", True), ("a", 2, "string", False), ("b", 3, "string", True)), contract)
    assert sorted(found) == [("nullability_changed", "b", S.WARNING), ("required_not_enforced", "a", S.INFO)]
    assert out.status is CheckStatus.FAIL  # the WARNING fails it
    note = next(f for f in out.findings if f.kind == "required_not_enforced")
    assert (note.expected, note.actual) == ("required", "optional")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("info", [("required_not_enforced", "a", S.INFO)]),
        ("warning", [("required_not_enforced", "a", S.WARNING)]),
        ("off", []),
    ],
)
def test_unenforced_required_is_configurable_and_info_alone_passes(
    setting: Literal["info", "warning", "off"], expected: list[tuple[str, str, ViolationSeverity]]
) -> None:
    contract = table(col("id", "integer", pk=True), col("a", "string", required=True))
    spark_style = actual(("id", 1, "long", True), ("a", 2, "string", False))
    out, _ = evaluate_schema_drift(contract, spark_style, unenforced_required=setting)
    assert [(f.kind, f.element, f.severity) for f in out.findings] == expected
    assert out.status is (CheckStatus.FAIL if setting == "warning" else CheckStatus.PASS)


def test_unenforced_required_config_key() -> None:
    assert MonitoringConfig().schema_drift.unenforced_required == "info"
    assert (
        MonitoringConfig().merged({"schema_drift": {"unenforced_required": "off"}}).schema_drift.unenforced_required
        == "off"
    )
    with pytest.raises(ValueError, match=r"schema_drift\.unenforced_required"):
        MonitoringConfig().merged({"schema_drift": {"unenforced_required": "error"}})


def test_rename_detected_by_field_id_from_baseline() -> None:
    renamed = actual(BASE[0], BASE[1], ("total", 3, "decimal(10, 2)", False))
    _, without = kinds(renamed)
    assert sorted(k for k, _, _ in without) == ["column_added", "column_removed"]
    out, found = kinds(renamed, baseline={"id": 1, "name": 2, "amount": 3})
    assert found == [("column_renamed", "amount", S.ERROR)]
    assert out.findings[0].actual == "total"


def test_rename_detected_by_explicit_field_id() -> None:
    contract = table(col("id", "integer", "INT", pk=True), col("amount", "number", field_id=3))
    _, found = kinds(actual(BASE[0], ("total", 3, "double", False)), contract)
    assert found == [("column_renamed", "amount", S.ERROR)]


def test_baseline_records_first_seen_field_ids() -> None:
    _, new = evaluate_schema_drift(CONTRACT, actual(*BASE), {"id": 1})
    assert new == {"name": 2, "amount": 3}


def test_int_to_long_and_float_to_double_are_compatible() -> None:
    contract = table(col("id", "integer", "INT", pk=True), col("f", "number", "FLOAT"))
    _, found = kinds(actual(("id", 1, "long", True), ("f", 2, "double", False)), contract)
    assert found == []


def test_primary_key_change() -> None:
    _, found = kinds(actual(*BASE, ids=("name",)))
    assert found == [("primary_key_changed", "id", S.ERROR)]
    out, found = kinds(actual(*BASE, ids=()))
    assert found == [] and "identifier" in str(out.details["primary_key"])


def test_missing_table_is_an_error() -> None:
    out, found = kinds(None)
    assert out.status is CheckStatus.FAIL and found == [("table_missing", None, S.ERROR)]


@pytest.mark.parametrize(
    ("logical", "physical", "iceberg", "ok"),
    [
        ("number", "DECIMAL(10,2)", "decimal(12, 2)", True),  # widening precision: safe
        ("number", "DECIMAL(10,2)", "decimal(8, 2)", False),
        ("number", "DECIMAL(10,2)", "decimal(10, 3)", False),
        ("number", None, "double", True),
        ("integer", "BIGINT", "int", False),
        ("integer", None, "long", True),
        ("timestamp", None, "timestamptz", True),
        ("timestamp", "TIMESTAMPTZ", "timestamp", False),
        ("string", "VARCHAR(36)", "string", True),
        ("boolean", None, "string", False),
        ("array", None, "list<string>", True),
        ("date", None, "timestamp", False),
    ],
)
def test_type_compatibility(logical: str, physical: str | None, iceberg: str, ok: bool) -> None:
    exp = expected_type(col("c", logical, physical))
    assert exp is not None and type_compatible(exp, iceberg) is ok


@pytest.mark.parametrize(
    ("options", "iceberg", "ok"),
    [
        ({"precision": 12, "scale": 2}, "decimal(12, 2)", True),
        ({"precision": 12, "scale": 2}, "decimal(14, 2)", True),  # wider precision: a safe promotion
        ({"precision": 12, "scale": 2}, "decimal(12, 3)", False),
        ({"precision": 12, "scale": 2}, "double", False),
        ({}, "double", True),
    ],
)
def test_decimal_precision_and_scale_from_logical_type_options(options: dict[str, int], iceberg: str, ok: bool) -> None:
    c = ExpectedColumn("amount", "amount", "number", logical_type_options=options)
    _, found = kinds(actual(("amount", 1, iceberg, False), ids=()), table(c))
    assert found == ([] if ok else [("type_changed", "amount", S.ERROR)])


@pytest.mark.parametrize(
    ("timezone", "iceberg", "ok"),
    [
        (True, "timestamptz", True),
        (True, "timestamp", False),
        (False, "timestamp", True),
        (False, "timestamptz", False),
    ],
)
def test_timestamp_timezone_option(timezone: bool, iceberg: str, ok: bool) -> None:
    c = ExpectedColumn("ts", "ts", "timestamp", logical_type_options={"timezone": timezone})
    _, found = kinds(actual(("ts", 1, iceberg, False), ids=()), table(c))
    assert found == ([] if ok else [("type_changed", "ts", S.ERROR)])
