"""Nested properties against real Iceberg struct / list / map fields (issue 10, item 6).

The contract's `object` properties and `array` items are compared with the table's nested fields by path
and Iceberg field id; findings name the path (`address.city`, `tags[]`, `items[].code`). Tables are pyiceberg
SqlCatalog tables under tmp_path, evolved with pyiceberg's own schema updates.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
)

from floe_monitoring_defs.checks.runner import CheckRun, CheckRunner
from floe_monitoring_defs.checks.schema_drift import evaluate_schema_drift
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import ExpectedColumn, MonitoredContract, MonitoredTable, TableRef
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.sources.base import TableSchemaInfo
from floe_monitoring_defs.sources.iceberg import IcebergSource, schema_info
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

S = ViolationSeverity
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    yield s
    s.dispose()


SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(
        2,
        "address",
        StructType(
            NestedField(3, "city", StringType(), required=False),
            NestedField(4, "zip", StringType(), required=False),
        ),
        required=False,
    ),
    NestedField(5, "tags", ListType(6, StringType(), element_required=False), required=False),
    NestedField(
        7,
        "items",
        ListType(
            8,
            StructType(
                NestedField(9, "code", StringType(), required=False),
                NestedField(10, "qty", IntegerType(), required=False),
            ),
            element_required=False,
        ),
        required=False,
    ),
    NestedField(11, "attrs", MapType(12, StringType(), 13, StringType(), value_required=False), required=False),
)

ROWS: dict[str, list[Any]] = {
    "id": [1, 2, 3],
    "address": [{"city": "Paris", "zip": "75001"}, None, {"city": None, "zip": "10115"}],
    "tags": [["a", "b"], None, ["c", None]],
    "items": [[{"code": "X", "qty": 1}], [], [{"code": "Y", "qty": 0}, {"code": None, "qty": 5}]],
    "attrs": [{"k": "v"}, None, {}],
}


def c(name: str, logical: str, **kw: Any) -> ExpectedColumn:
    return ExpectedColumn(name, name, logical, **kw)


def columns(
    *,
    city: ExpectedColumn | None = None,
    tag: ExpectedColumn | None = None,
    qty: ExpectedColumn | None = None,
    address_extra: tuple[ExpectedColumn, ...] = (),
) -> tuple[ExpectedColumn, ...]:
    return (
        c("id", "integer", required=True),
        c("address", "object", children=(city or c("city", "string"), c("zip", "string"), *address_extra)),
        c("tags", "array", items=tag or c("tag", "string")),
        c("items", "array", items=c("item", "object", children=(c("code", "string"), qty or c("qty", "integer")))),
        c("attrs", "object"),  # an object without properties: compared by type only
    )


def monitored(cols: tuple[ExpectedColumn, ...]) -> MonitoredTable:
    return MonitoredTable("people", TableRef(("crm",), "people", catalog=CATALOG), cols)


def drifts(table: MonitoredTable, actual: TableSchemaInfo, baseline: dict[str, int] | None = None) -> list[Any]:
    out, _ = evaluate_schema_drift(table, actual, baseline)
    return sorted((f.kind, f.element, f.severity) for f in out.findings)


@pytest.fixture
def people(catalog: SqlCatalog) -> Table:
    return create(catalog, "crm.people", SCHEMA, ROWS)


# contract path -> the name pyiceberg indexes the field under (create_table assigns fresh field ids)
ICEBERG_NAMES = {
    "id": "id",
    "address": "address",
    "address.city": "address.city",
    "address.zip": "address.zip",
    "tags": "tags",
    "tags[]": "tags.element",
    "items": "items",
    "items[]": "items.element",
    "items[].code": "items.element.code",
    "items[].qty": "items.element.qty",
    "attrs": "attrs",
    "attrs.key": "attrs.key",
    "attrs.value": "attrs.value",
}


def field_id(table: Table, path: str) -> int:
    return int(table.schema().find_field(ICEBERG_NAMES[path]).field_id)


def test_nested_fields_are_read_with_paths_and_field_ids(people: Table) -> None:
    info = schema_info(people)
    by_path = info.by_path()
    assert list(by_path) == list(ICEBERG_NAMES)
    assert {p: f.field_id for p, f in by_path.items()} == {p: field_id(people, p) for p in ICEBERG_NAMES}
    assert {p: (f.kind, f.required) for p, f in by_path.items()} == {
        "id": ("primitive", True),
        "address": ("struct", False),
        "address.city": ("primitive", False),
        "address.zip": ("primitive", False),
        "tags": ("list", False),
        "tags[]": ("primitive", False),
        "items": ("list", False),
        "items[]": ("struct", False),
        "items[].code": ("primitive", False),
        "items[].qty": ("primitive", False),
        "attrs": ("map", False),
        "attrs.key": ("primitive", True),
        "attrs.value": ("primitive", False),
    }
    assert (by_path["tags[]"].type, by_path["items[].qty"].type) == ("string", "int")
    assert [col.name for col in info.columns] == ["id", "address", "tags", "items", "attrs"]  # top level unchanged


def test_a_matching_nested_contract_has_no_drift(people: Table) -> None:
    out, baseline = evaluate_schema_drift(monitored(columns()), schema_info(people))
    assert (out.status, out.findings) == (CheckStatus.PASS, ())
    # field ids are recorded by path (fields of structs and of an array's element struct included), so a
    # later rename inside them is told from a drop + add
    recorded = ("id", "address", "address.city", "address.zip", "tags", "items", "items[].code", "items[].qty", "attrs")
    assert baseline == {p: field_id(people, p) for p in recorded}


def test_nested_drift_names_the_path(people: Table) -> None:
    with people.update_schema() as update:
        update.delete_column(("address", "zip"))
        update.add_column(("address", "country"), StringType())
        update.add_column(("items", "element", "unit"), StringType())
    contract = monitored(columns(tag=c("tag", "integer"), qty=c("qty", "string")))
    assert drifts(contract, schema_info(people)) == [
        ("column_added", "address.country", S.WARNING),
        ("column_added", "items[].unit", S.WARNING),
        ("column_removed", "address.zip", S.CRITICAL),
        ("type_changed", "items[].qty", S.ERROR),
        ("type_changed", "tags[]", S.ERROR),
    ]


def test_nested_rename_by_field_id_from_the_contract(people: Table) -> None:
    city_id = field_id(people, "address.city")
    with people.update_schema() as update:
        update.rename_column(("address", "city"), "town")
    contract = monitored(columns(city=c("city", "string", field_id=city_id)))
    out, _ = evaluate_schema_drift(contract, schema_info(people))
    [f] = out.findings
    assert (f.kind, f.element, f.severity, f.expected, f.actual) == (
        "column_renamed",
        "address.city",
        S.ERROR,
        "address.city",
        "address.town",
    )
    # without the id it reads as a drop and an add, both named by path
    assert drifts(monitored(columns()), schema_info(people)) == [
        ("column_added", "address.town", S.WARNING),
        ("column_removed", "address.city", S.CRITICAL),
    ]


def test_nested_required_not_enforced_is_info_and_tightened_is_a_warning(catalog: SqlCatalog) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(
            2,
            "address",
            StructType(
                NestedField(3, "city", StringType(), required=False),
                NestedField(4, "zip", StringType(), required=True),
            ),
            required=False,
        ),
    )
    table = create(catalog, "crm.people", schema)
    contract = monitored(
        (
            c("id", "integer", required=True),
            c("address", "object", children=(c("city", "string", required=True), c("zip", "string"))),
        )
    )
    out, _ = evaluate_schema_drift(contract, schema_info(table))
    assert sorted((f.kind, f.element, f.severity) for f in out.findings) == [
        ("nullability_changed", "address.zip", S.WARNING),
        ("required_not_enforced", "address.city", S.INFO),
    ]
    # ODCS object `logicalTypeOptions.required` (a list of child names) means the same as `required: true`
    listed = monitored(
        (
            c("id", "integer", required=True),
            c(
                "address",
                "object",
                children=(c("city", "string"), c("zip", "string", required=True)),
                logical_type_options={"required": ["city"]},
            ),
        )
    )
    assert drifts(listed, schema_info(table)) == [("required_not_enforced", "address.city", S.INFO)]


def run_drift(store: MonitoringStore, contract: MonitoredContract) -> CheckRun:
    runner = CheckRunner(IcebergSource(), store, MonitoringConfig(), clock=lambda: NOW)
    [r] = list(runner.run(ViolationType.SCHEMA_DRIFT, [(contract, t) for t in contract.tables]))
    return r


def test_a_nested_rename_is_found_from_the_stored_baseline(people: Table, store: MonitoringStore) -> None:
    contract = MonitoredContract(
        name="people", version="1.0.0", contract_id="urn:people", source="people.yaml", tables=(monitored(columns()),)
    )
    first = run_drift(store, contract)
    assert (first.result.status, first.violations) == (CheckStatus.PASS, ())
    with people.update_schema() as update:
        update.rename_column(("address", "zip"), "postcode")
    second = run_drift(store, contract)
    assert [(v.metadata["drift"], v.element, v.severity, v.actual_value) for v in second.violations] == [
        ("column_renamed", "address.zip", S.ERROR, "address.postcode")
    ]
    assert [row["column"] for row in second.outcome.details["drifts"]] == ["address.zip"]


# -- quality rules on nested paths ----------------------------------------------------------------------------------


def test_constraints_on_nested_paths_count_where_the_parent_is_present(people: Table) -> None:
    from floe_monitoring_defs.checks.quality import run_quality

    cols = columns(
        city=c("city", "string", required=True),  # row 3: address present, city null -> 1 (row 2: no address)
        tag=c("tag", "string", required=True, logical_type_options={"maxLength": 1}),  # one null element
        qty=c("qty", "integer", logical_type_options={"minimum": 1}),  # one qty 0
    )
    out = run_quality(people, monitored(cols), "duckdb")
    got = {r["rule"]: (r["status"], r["actual"], r["method"]) for r in out.details["rules"]}
    assert got == {
        "id: required": ("pass", "0 rows", "metadata"),
        "address.city: required": ("fail", "1 row", "scan"),  # a nested null count needs the rows
        "tags[]: required": ("fail", "1 row", "scan"),
        "tags[]: maxLength": ("pass", "0 rows", "scan"),
        "items[].qty: minimum": ("fail", "1 row", "scan"),
    }
    assert out.details["columns_read"] == ["address", "tags", "items"]
