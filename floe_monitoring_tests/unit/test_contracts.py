"""ODCS contract loading: strict v3 and the floe dialect, and errors that name file and field."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_monitoring_defs.contracts import load_contracts, parse_document
from floe_monitoring_defs.contracts.loader import ContractLoadError

FIXTURES = Path(__file__).parent.parent / "fixtures"


def strict_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "urn:x:orders",
        "name": "orders",
        "version": "2.1.0",
        "status": "active",
        "domain": "sales",
        "servers": [
            {
                "server": "prod",
                "type": "iceberg",
                "catalog": "prod",
                "catalogUrl": "http://127.0.0.1:8181",
                "namespace": "sales.core",
                "warehouse": "s3://wh",
            }
        ],
        "schema": [
            {
                "name": "orders",
                "physicalName": "orders_v2",
                "properties": [
                    {"name": "order_id", "logicalType": "string", "primaryKey": True, "required": True},
                    {"name": "email", "logicalType": "string", "classification": "pii"},
                    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(12,2)", "required": True},
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
        "slaProperties": [
            {"property": "freshness", "value": "PT6H", "element": "updated_at"},
            {"property": "availability", "value": "99.9%"},
        ],
        "customProperties": [{"property": "consumers", "value": ["bi", "ml"]}],
    }
    doc.update(overrides)
    return doc


def test_strict_contract_maps_table_columns_and_slas() -> None:
    c = parse_document(strict_doc(), "orders.yaml")
    assert (c.name, c.version, c.dialect, c.domain) == ("orders", "2.1.0", "odcs", "sales")
    [t] = c.tables
    assert t.ref.namespace == ("sales", "core") and t.ref.name == "orders_v2"
    assert t.ref.identifier == "sales.core.orders_v2"
    assert (t.ref.catalog, t.ref.catalog_url, t.ref.warehouse) == ("prod", "http://127.0.0.1:8181", "s3://wh")
    assert [col.physical_name for col in t.columns] == ["order_id", "email", "amount", "updated_at"]
    assert t.primary_key == ("order_id",)
    amount = t.column("amount")
    assert amount is not None and amount.physical_type == "DECIMAL(12,2)"
    assert t.freshness_column == "updated_at"
    assert c.freshness is not None and c.freshness.threshold == timedelta(hours=6)
    assert c.availability is not None and c.availability.target_pct == pytest.approx(99.9)
    assert c.consumers == ("bi", "ml")
    assert c.sensitive_columns == frozenset({"email"})


def test_floe_dialect_is_accepted() -> None:
    c = parse_document(yaml.safe_load((FIXTURES / "floe-demo-dialect.yaml").read_text()), "demo.yaml")
    assert c.dialect == "floe"
    [t] = c.tables
    assert t.ref.identifier == "analytics.customer_360.mart_customer_360"
    ltv = t.column("lifetime_value")
    assert ltv is not None
    assert ltv.logical_type == "number"
    assert ltv.physical_type == "DECIMAL(12,2)"
    assert c.freshness is not None and c.freshness.threshold == timedelta(hours=6)
    assert c.owners == ("analytics-team@acme.com",)
    assert {r.type for r in t.quality_rules} == {"format", "constraint", "null_check"}
    assert c.sensitive_columns == frozenset({"email", "full_name"})


def test_strict_reference_without_servers_names_the_field() -> None:
    with pytest.raises(ContractLoadError) as exc:
        parse_document(yaml.safe_load((FIXTURES / "odcs-strict.yaml").read_text()), "strict.yaml")
    assert exc.value.error.source == "strict.yaml"
    assert exc.value.error.field == "servers"


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (
            lambda d: d["schema"][0]["properties"][2].update(logicalType="money"),
            "schema[0].properties[2].logicalType",
            "'money'",
        ),
        (lambda d: d["slaProperties"][0].update(value="6 hours"), "slaProperties[0].value", "ISO-8601"),
        (lambda d: d["slaProperties"][1].update(value="lots"), "slaProperties[1].value", "percentage"),
        (lambda d: d.update(version="1.0"), "version", "semantic version"),
        (lambda d: d.update(schema=[]), "schema", "no table"),
        (lambda d: d.update(apiVersion="v9"), "apiVersion", "'v9'"),
        (
            lambda d: d["schema"][0]["properties"].append({"name": "email", "logicalType": "string"}),
            "schema[0].properties[4].name",
            "twice",
        ),
    ],
)
def test_errors_name_the_field_path(mutate: Any, field: str, fragment: str) -> None:
    doc = strict_doc()
    mutate(doc)
    with pytest.raises(ContractLoadError) as exc:
        parse_document(doc, "bad.yaml")
    assert exc.value.error.field == field
    assert fragment in exc.value.error.message
    assert str(exc.value).startswith("bad.yaml: ")


def test_one_bad_file_never_stops_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(strict_doc()))
    (tmp_path / "b.yaml").write_text("apiVersion: [unclosed\n")
    other = strict_doc(name="payments", id="urn:x:payments")
    other["schema"][0]["physicalName"] = "payments"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yml").write_text(yaml.safe_dump(other))
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(strict_doc(name="dup", id="urn:x:dup")))  # same table as a
    report = load_contracts([tmp_path])
    assert sorted(c.name for c in report.contracts) == ["orders", "payments"]
    by_file = {Path(e.source).name: e for e in report.errors}
    assert set(by_file) == {"b.yaml", "d.yaml"}
    assert by_file["b.yaml"].field.startswith("line ")
    assert "not valid YAML" in by_file["b.yaml"].message
    assert "already monitored by contract 'orders'" in by_file["d.yaml"].message


def test_freshness_element_with_table_prefix_and_numeric_unit() -> None:
    doc = strict_doc()
    doc["schema"].append({"name": "lines", "properties": [{"name": "ts", "logicalType": "timestamp"}]})
    doc["slaProperties"][0] = {"property": "freshness", "value": 90, "unit": "m", "element": "lines.ts"}
    c = parse_document(doc, "x.yaml")
    assert c.freshness is not None and c.freshness.threshold == timedelta(minutes=90)
    assert {t.schema_name: t.freshness_column for t in c.tables} == {"orders": None, "lines": "ts"}


def test_monitoring_overrides_and_explicit_field_ids() -> None:
    doc = strict_doc(
        customProperties=[{"property": "floe.monitoring", "value": {"check_intervals": {"freshness_minutes": 5}}}]
    )
    doc["schema"][0]["properties"][0]["customProperties"] = [{"property": "floe.iceberg_field_id", "value": 7}]
    c = parse_document(doc, "x.yaml")
    assert c.monitoring_overrides == {"check_intervals": {"freshness_minutes": 5}}
    assert c.tables[0].columns[0].field_id == 7


def test_library_and_sql_quality_rules_are_parsed() -> None:
    doc = strict_doc()
    doc["schema"][0]["quality"] = [{"type": "sql", "query": "SELECT COUNT(*) FROM ${object}", "mustBeGreaterThan": 0}]
    doc["schema"][0]["properties"][1]["quality"] = [{"metric": "nullValues", "mustBeLessThan": 5, "unit": "percent"}]
    c = parse_document(doc, "x.yaml")
    rules = {r.type: r for r in c.tables[0].quality_rules}
    assert rules["sql"].operators == {"mustBeGreaterThan": 0}
    assert rules["library"].element == "email" and rules["library"].metric == "nullValues"


# ---------------------------------------------------------------------------------------------------
# Columns: constraints, nested properties, field ids; rules that cannot run


def test_column_constraints_are_parsed() -> None:
    doc = strict_doc()
    props = doc["schema"][0]["properties"]
    props[0].update(primaryKeyPosition=2)
    props[1].update(unique=True, logicalTypeOptions={"pattern": "^[^@]+@[^@]+$", "maxLength": 120})
    props[2].update(primaryKey=True, primaryKeyPosition=1, logicalTypeOptions={"minimum": 0, "exclusiveMaximum": 1e9})
    [t] = parse_document(doc, "x.yaml").tables
    assert t.primary_key == ("amount", "order_id")  # by primaryKeyPosition
    email, amount = t.column("email"), t.column("amount")
    assert email is not None and amount is not None
    assert (email.unique, email.logical_type_options) == (True, {"pattern": "^[^@]+@[^@]+$", "maxLength": 120})
    assert (amount.primary_key_position, amount.logical_type_options) == (1, {"minimum": 0, "exclusiveMaximum": 1e9})
    updated = t.column("updated_at")
    assert updated is not None and (updated.unique, updated.primary_key_position, updated.logical_type_options) == (
        False,
        None,
        {},
    )


def test_a_top_level_primary_key_stays_required_as_schema_drift_reads_it() -> None:
    doc = strict_doc()
    doc["schema"][0]["properties"][0] = {"name": "order_id", "logicalType": "string", "primaryKey": True}
    [t] = parse_document(doc, "x.yaml").tables
    order_id = t.column("order_id")
    assert order_id is not None and (order_id.primary_key, order_id.required) == (True, True)


def test_nested_objects_and_arrays_become_children_and_items_with_paths() -> None:
    doc = strict_doc()
    doc["schema"][0]["properties"] += [
        {
            "name": "address",
            "logicalType": "object",
            "properties": [
                {"name": "city", "logicalType": "string", "required": True},
                {"name": "geo", "logicalType": "object", "properties": [{"name": "lat", "logicalType": "number"}]},
            ],
        },
        {"name": "tags", "logicalType": "array", "items": {"logicalType": "string"}},
        {
            "name": "lines",
            "logicalType": "array",
            "items": {
                "logicalType": "object",
                "properties": [{"name": "sku", "physicalName": "sku_code", "logicalType": "string"}],
            },
        },
    ]
    [t] = parse_document(doc, "x.yaml").tables
    address, tags, lines = t.column("address"), t.column("tags"), t.column("lines")
    assert address is not None and tags is not None and lines is not None
    assert (address.column_path, [c.column_path for c in address.children]) == (
        "address",
        ["address.city", "address.geo"],
    )
    assert [c.column_path for c in address.children[1].children] == ["address.geo.lat"]
    assert address.children[0].required is True and address.children[1].required is False
    assert tags.items is not None and (tags.items.column_path, tags.items.logical_type) == ("tags[]", "string")
    assert lines.items is not None and [c.column_path for c in lines.items.children] == ["lines[].sku_code"]
    assert t.column("city") is None  # nested properties are not top-level columns


def test_a_nested_property_declared_twice_names_its_path() -> None:
    doc = strict_doc()
    doc["schema"][0]["properties"].append(
        {
            "name": "address",
            "logicalType": "object",
            "properties": [{"name": "city", "logicalType": "string"}, {"name": "city", "logicalType": "string"}],
        }
    )
    with pytest.raises(ContractLoadError) as exc:
        parse_document(doc, "x.yaml")
    assert exc.value.error.field == "schema[0].properties[4].properties[1].name"
    assert "address.city is declared twice" in exc.value.error.message


@pytest.mark.parametrize("key", ["icebergFieldId", "floe.iceberg_field_id"])
def test_field_ids_from_either_custom_property(key: str) -> None:
    doc = strict_doc()
    doc["schema"][0]["properties"][1]["customProperties"] = [{"property": key, "value": 12}]
    doc["schema"][0]["properties"].append(
        {
            "name": "address",
            "logicalType": "object",
            "properties": [
                {"name": "city", "logicalType": "string", "customProperties": [{"property": key, "value": "31"}]}
            ],
        }
    )
    [t] = parse_document(doc, "x.yaml").tables
    email, address = t.column("email"), t.column("address")
    assert email is not None and email.field_id == 12
    assert address is not None and address.children[0].field_id == 31  # a quoted number is the id meant


@pytest.mark.parametrize(
    ("custom", "field", "fragment"),
    [
        (
            [{"property": "icebergFieldId", "value": "seven"}],
            "customProperties.icebergFieldId",
            "not an Iceberg field id",
        ),
        (
            [{"property": "icebergFieldId", "value": 3}, {"property": "floe.iceberg_field_id", "value": 4}],
            "customProperties",
            "differ",
        ),
    ],
)
def test_a_bad_field_id_names_the_field(custom: list[dict[str, Any]], field: str, fragment: str) -> None:
    doc = strict_doc()
    doc["schema"][0]["properties"][1]["customProperties"] = custom
    with pytest.raises(ContractLoadError) as exc:
        parse_document(doc, "x.yaml")
    assert exc.value.error.field == f"schema[0].properties[1].{field}"
    assert fragment in exc.value.error.message


def test_text_and_foreign_custom_rules_are_listed_as_not_monitored() -> None:
    doc = strict_doc()
    doc["schema"][0]["quality"] = [
        {"type": "text", "name": "no_gaps", "description": "Orders have no gaps in their numbering."},
        {"type": "custom", "name": "soda_check", "engine": "soda", "implementation": "checks for orders: ..."},
        {"type": "custom", "name": "local_check", "engine": "duckdb", "implementation": "SELECT 1"},
        {"metric": "rowCount", "mustBeGreaterThan": 0, "scheduler": "cron", "schedule": "0 6 * * *"},
    ]
    c = parse_document(doc, "x.yaml")
    assert [r.name for r in c.tables[0].quality_rules] == [
        "no_gaps",
        "soda_check",
        "local_check",
        "orders.table.rowCount",
    ]
    assert [(n.field, n.what) for n in c.not_monitored] == [
        ("schema[0].quality[0]", "quality rule no_gaps (type text)"),
        ("schema[0].quality[1]", "quality rule soda_check (type custom)"),
        ("schema[0].quality[2]", "quality rule local_check (type custom)"),  # the engine skips every custom rule
        ("schema[0].quality[3].schedule", "schedule of quality rule orders.table.rowCount"),
    ]
    assert c.not_monitored[1].reason.startswith("a custom rule is written for its own engine (soda)")
    assert "write it as type sql" in c.not_monitored[2].reason


def test_quality_rules_on_nested_properties_are_listed_as_not_monitored() -> None:
    doc = strict_doc()
    doc["schema"][0]["properties"].append(
        {
            "name": "address",
            "logicalType": "object",
            "properties": [
                {"name": "city", "logicalType": "string", "quality": [{"metric": "nullValues", "mustBe": 0}]},
                {
                    "name": "lines",
                    "logicalType": "array",
                    "items": {"logicalType": "string", "quality": [{"metric": "missingValues", "mustBe": 0}]},
                },
            ],
        }
    )
    c = parse_document(doc, "x.yaml")
    n = len(doc["schema"][0]["properties"]) - 1
    assert [(m.field, m.what) for m in c.not_monitored] == [
        (f"schema[0].properties[{n}].properties[0].quality[0]", "quality rule on address.city"),
        (f"schema[0].properties[{n}].properties[1].items.quality[0]", "quality rule on address.lines[]"),
    ]
    assert all("nested property is not run" in m.reason for m in c.not_monitored)
    assert all(r.element != "address" for r in c.tables[0].quality_rules)
