"""contracts/export.py: a neutral table description -> a strict ODCS v3.1.0 contract (`floe contracts import`)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from floe_monitoring_defs.contracts.export import (
    ExportError,
    FieldDescription,
    TableDescription,
    contract_document,
    contract_yaml,
    odcs_types,
)
from floe_monitoring_defs.sources.describe import public_location, split_identifier
from floe_monitoring_tests.odcs_schemas import odcs_errors


def fd(name: str, fid: int, type_: str, required: bool = False, **kw: Any) -> FieldDescription:
    return FieldDescription(name=name, field_id=fid, type=type_, required=required, **kw)


def every_type_table() -> TableDescription:
    """One field of every Iceberg type, nested ones included, with a composite identifier out of column order."""
    return TableDescription(
        catalog="lake",
        namespace=("sales", "core"),
        name="orders",
        catalog_uri="sqlite:////tmp/catalog.db",
        warehouse="file:///tmp/wh",
        doc="Orders as the shop writes them",
        schema_id=3,
        fields=(
            fd("order_id", 1, "string", True, identifier_position=2, doc="the order"),
            fd("region", 2, "string", True, identifier_position=1),
            fd("qty", 3, "int", True),
            fd("total", 4, "long"),
            fd("rate", 5, "float"),
            fd("fx", 6, "double"),
            fd("amount", 7, "decimal", True, precision=12, scale=2, type_text="decimal(12, 2)"),
            fd("paid", 8, "boolean"),
            fd("day", 9, "date"),
            fd("at", 10, "time"),
            fd("local_ts", 11, "timestamp"),
            fd("created_at", 12, "timestamptz", True),
            fd("ns_ts", 13, "timestamp_ns"),
            fd("ns_tstz", 14, "timestamptz_ns"),
            fd("ref", 15, "uuid"),
            fd("blob", 16, "binary"),
            fd("digest", 17, "fixed", length=16, type_text="fixed[16]"),
            fd("shape", 18, "geometry", type_text="geometry"),
            fd(
                "address",
                19,
                "struct",
                fields=(
                    fd("city", 20, "string", True),
                    fd("geo", 21, "struct", fields=(fd("lat", 22, "double"), fd("lon", 23, "double"))),
                ),
            ),
            fd("tags", 24, "list", element=fd("element", 25, "string", True)),
            fd(
                "phones",
                26,
                "list",
                element=fd("element", 27, "struct", fields=(fd("kind", 28, "string"), fd("number", 29, "string"))),
            ),
            fd(
                "attrs",
                30,
                "map",
                key=fd("key", 31, "string", True),
                value=fd("value", 32, "decimal", precision=5, scale=2),
            ),
        ),
    )


def props_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in doc["schema"][0]["properties"]}


def field_id(prop: dict[str, Any]) -> Any:
    [custom] = prop["customProperties"]
    assert custom["property"] == "icebergFieldId"
    return custom["value"]


@pytest.mark.parametrize(
    ("field", "logical", "physical"),
    [
        (fd("a", 1, "string"), "string", "STRING"),
        (fd("a", 1, "uuid"), "string", "UUID"),
        (fd("a", 1, "int"), "integer", "INT"),
        (fd("a", 1, "long"), "integer", "LONG"),
        (fd("a", 1, "float"), "number", "FLOAT"),
        (fd("a", 1, "double"), "number", "DOUBLE"),
        (fd("a", 1, "decimal", precision=38, scale=9), "number", "DECIMAL(38,9)"),
        (fd("a", 1, "boolean"), "boolean", "BOOLEAN"),
        (fd("a", 1, "date"), "date", "DATE"),
        (fd("a", 1, "time"), "time", "TIME"),
        (fd("a", 1, "timestamp"), "timestamp", "TIMESTAMP"),
        (fd("a", 1, "timestamptz"), "timestamp", "TIMESTAMPTZ"),
        (fd("a", 1, "timestamp_ns"), "timestamp", "TIMESTAMP_NS"),
        (fd("a", 1, "timestamptz_ns"), "timestamp", "TIMESTAMPTZ_NS"),
        (fd("a", 1, "struct"), "object", "STRUCT"),
        (fd("a", 1, "list", element=fd("element", 2, "long")), "array", "LIST"),
        (
            fd("a", 1, "map", key=fd("key", 2, "string", True), value=fd("value", 3, "decimal", precision=5, scale=2)),
            "object",
            "MAP<STRING, DECIMAL(5,2)>",
        ),
        (fd("a", 1, "binary"), None, "BINARY"),
        (fd("a", 1, "fixed", length=16), None, "FIXED(16)"),
        (fd("a", 1, "geography", type_text="geography(srid:4326, spherical)"), None, "GEOGRAPHY(SRID:4326, SPHERICAL)"),
    ],
)
def test_iceberg_types_map_to_odcs_logical_and_physical_types(
    field: FieldDescription, logical: str | None, physical: str
) -> None:
    assert odcs_types(field) == (logical, physical)


def test_document_is_strict_v310_valid_with_the_iceberg_server_leniency() -> None:
    doc = contract_document(every_type_table())
    assert odcs_errors(doc) == []
    assert (doc["apiVersion"], doc["kind"], doc["name"], doc["version"], doc["status"]) == (
        "v3.1.0",
        "DataContract",
        "orders",
        "1.0.0",
        "draft",
    )
    assert doc["servers"] == [
        {
            "server": "lake",
            "type": "iceberg",
            "catalog": "lake",
            "catalogUrl": "sqlite:////tmp/catalog.db",
            "namespace": "sales.core",
            "warehouse": "file:///tmp/wh",
        }
    ]
    [obj] = doc["schema"]
    assert (obj["name"], obj["physicalName"], obj["description"]) == (
        "orders",
        "orders",
        "Orders as the shop writes them",
    )


def test_the_validator_used_here_refuses_what_v310_refuses() -> None:
    """Negative control for the test above: the schema check is real."""
    doc = contract_document(every_type_table())
    doc["schema"][0]["properties"][0]["logicalType"] = "map"
    assert [e for e in odcs_errors(doc) if e.startswith("schema[0].properties[0].logicalType")]
    doc = contract_document(every_type_table())
    del doc["servers"][0]["catalogUrl"]
    assert "servers[0]: 'catalogUrl' is a required property" in odcs_errors(doc)


def test_required_key_positions_and_field_ids_follow_the_table() -> None:
    props = props_by_name(contract_document(every_type_table()))
    assert [p["required"] for p in props.values()][:4] == [True, True, True, False]
    keyed = {n: p["primaryKeyPosition"] for n, p in props.items() if p.get("primaryKey")}
    assert keyed == {"region": 1, "order_id": 2}
    assert all("primaryKey" not in p for n, p in props.items() if n not in keyed)
    assert {n: field_id(p) for n, p in props.items()} == {f.name: f.field_id for f in every_type_table().fields}
    assert props["order_id"]["description"] == "the order"
    assert "logicalType" not in props["blob"] and props["blob"]["physicalType"] == "BINARY"


def test_nested_struct_list_and_map() -> None:
    props = props_by_name(contract_document(every_type_table()))
    address = props["address"]
    assert (address["logicalType"], address["physicalType"]) == ("object", "STRUCT")
    city, geo = address["properties"]
    assert (city["name"], city["required"], field_id(city)) == ("city", True, 20)
    assert [(p["name"], field_id(p)) for p in geo["properties"]] == [("lat", 22), ("lon", 23)]
    tags = props["tags"]
    assert tags["logicalType"] == "array" and "properties" not in tags
    assert {k: v for k, v in tags["items"].items() if k != "customProperties"} == {
        "logicalType": "string",
        "physicalType": "STRING",
        "required": True,
    }
    assert field_id(tags["items"]) == 25 and "name" not in tags["items"]
    phones_item = props["phones"]["items"]
    assert phones_item["logicalType"] == "object"
    assert [(p["name"], field_id(p)) for p in phones_item["properties"]] == [("kind", 28), ("number", 29)]
    attrs = props["attrs"]
    assert (attrs["logicalType"], attrs["physicalType"]) == ("object", "MAP<STRING, DECIMAL(5,2)>")
    assert "properties" not in attrs and "items" not in attrs  # a map's keys are data, not declared properties


def test_name_version_and_stable_id() -> None:
    table = every_type_table()
    a, b = contract_document(table), contract_document(table, name="sales_orders", version="2.3.4")
    assert (b["name"], b["version"]) == ("sales_orders", "2.3.4")
    assert a["id"] == b["id"]  # the same table of the same catalog: the same id
    other = TableDescription(catalog="lake", namespace=("sales",), name="orders", fields=table.fields[:1])
    assert contract_document(other)["id"] != a["id"]


def test_without_a_catalog_uri_or_warehouse_the_server_leaves_them_out() -> None:
    table = TableDescription(catalog="glue", namespace=("db",), name="t", fields=(fd("a", 1, "long"),))
    assert contract_document(table)["servers"] == [
        {"server": "glue", "type": "iceberg", "catalog": "glue", "namespace": "db"}
    ]


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0-rc1", ""])
def test_a_version_that_is_not_semver_is_refused(version: str) -> None:
    with pytest.raises(ExportError, match=r"^version: .* is not a semantic version X\.Y\.Z$"):
        contract_document(every_type_table(), version=version)


def test_a_table_without_fields_is_refused() -> None:
    with pytest.raises(ExportError, match=r"^schema: table a\.t has no fields$"):
        contract_document(TableDescription(catalog="c", namespace=("a",), name="t", fields=()))


def test_yaml_reads_back_as_the_document_even_for_yaml_1_1_words() -> None:
    table = TableDescription(
        catalog="c",
        namespace=("a",),
        name="t",
        fields=(fd("yes", 1, "boolean", True), fd("null", 2, "string"), fd("1e3", 3, "long"), fd("on", 4, "date")),
        schema_id=0,
    )
    doc = contract_document(table)
    text = contract_yaml(table, doc)
    assert text.startswith(
        "# ODCS v3.1.0 contract generated by `floe contracts import` from Iceberg table\n"
        "# a.t in catalog c (schema id 0)."
    )
    assert yaml.safe_load(text) == doc
    assert [p["name"] for p in yaml.safe_load(text)["schema"][0]["properties"]] == ["yes", "null", "1e3", "on"]


@pytest.mark.parametrize(
    ("url", "public"),
    [
        (
            "postgresql+psycopg2://floe:s3cret@db.internal:5432/catalog?sslmode=require",
            "postgresql+psycopg2://db.internal:5432/catalog",
        ),
        ("https://user:token@rest.example.com/api/catalog", "https://rest.example.com/api/catalog"),
        ("https://rest.example.com/api?token=abc", "https://rest.example.com/api"),
        ("sqlite:////tmp/catalog.db", "sqlite:////tmp/catalog.db"),
        (None, None),
        ("", None),
    ],
)
def test_catalog_locations_lose_credentials(url: str | None, public: str | None) -> None:
    assert public_location(url) == public


@pytest.mark.parametrize(
    ("identifier", "parts"),
    [("shop.orders", (("shop",), "orders")), ("a.b.orders", (("a", "b"), "orders"))],
)
def test_identifiers_split_at_the_last_dot(identifier: str, parts: tuple[tuple[str, ...], str]) -> None:
    assert split_identifier(identifier) == parts


@pytest.mark.parametrize("identifier", ["orders", "shop.", ".orders", "a..b", ""])
def test_identifiers_without_a_namespace_are_refused(identifier: str) -> None:
    with pytest.raises(ValueError, match=r"is not NAMESPACE\.TABLE \(for example shop\.orders\)$"):
        split_identifier(identifier)
