"""Reading a contract as the version it declares, and as its author wrote it (issue 10, items 1-3 and 8).

- Each strict ODCS file is validated against the official schema of its own `apiVersion`; `type: iceberg`
  servers are accepted in every v3 version (with their v3.2.0 fields, validated by the v3.2.0 definition).
- YAML typing never refuses or crashes a valid file: unquoted dates and times stay the text written, and a
  number where ODCS wants text is read as the text written.
- An invalid, large, deeply nested contract is explained with the file and the field path.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_monitoring_defs.contracts import load_contracts, parse_document
from floe_monitoring_defs.contracts.loader import ContractLoadError, ServerOptions, load_contract_file
from floe_monitoring_defs.contracts.registry import load_registered, register_file
from floe_monitoring_defs.contracts.validation import SUPPORTED_VERSIONS

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "contracts"


def doc_for(version: str, **overrides: Any) -> dict[str, Any]:
    """A minimal strict contract on an Iceberg table, valid in every v3 version (v3.0 has no `timestamp`)."""
    doc: dict[str, Any] = {
        "apiVersion": version,
        "kind": "DataContract",
        "id": "urn:x:orders",
        "name": "orders",
        "version": "1.0.0",
        "status": "active",
        "servers": [
            {
                "server": "lake",
                "type": "iceberg",
                "catalog": "lake",
                "catalogUrl": "http://127.0.0.1:8181",
                "namespace": "sales",
                "warehouse": "s3://wh",
            }
        ],
        "schema": [
            {
                "name": "orders",
                "properties": [
                    {"name": "order_id", "logicalType": "string", "required": True},
                    {"name": "placed_on", "logicalType": "date"},
                ],
            }
        ],
    }
    doc.update(overrides)
    return doc


def refused(doc: Any, source: str = "c.yaml") -> ContractLoadError:
    with pytest.raises(ContractLoadError) as exc:
        parse_document(doc, source)
    return exc.value


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_v3_version_is_read_and_recorded(version: str) -> None:
    c = parse_document(doc_for(version), "c.yaml")
    assert c.api_version == version
    [t] = c.tables
    assert (t.ref.identifier, t.ref.catalog, t.ref.catalog_url, t.ref.warehouse) == (
        "sales.orders",
        "lake",
        "http://127.0.0.1:8181",
        "s3://wh",
    )


@pytest.mark.parametrize(
    ("version", "accepted"), [("v3.0.0", True), ("v3.0.2", True), ("v3.1.0", False), ("v3.2.0", False)]
)
def test_v30_library_rule_is_valid_exactly_in_v30(version: str, accepted: bool) -> None:
    doc = doc_for(version)
    doc["schema"][0]["properties"][0]["quality"] = [{"rule": "nullValues", "mustBe": 0}]
    if not accepted:
        err = refused(doc).error
        assert err.field == "schema[0].properties[0].quality[0]"
        assert f"ODCS {version} has no fields 'rule', 'mustBe' here" in err.message
        return
    [rule] = parse_document(doc, "c.yaml").tables[0].quality_rules
    assert (rule.type, rule.metric, rule.operators) == ("library", "nullValues", {"mustBe": 0})


def test_v30_rule_names_become_the_metrics_the_engine_knows() -> None:
    doc = doc_for("v3.0.0")
    doc["schema"][0]["properties"][0]["quality"] = [
        {"rule": "duplicateCount", "mustBe": 0},
        {"rule": "validValues", "validValues": ["a", "b"], "mustBe": 0},
    ]
    dup, valid = parse_document(doc, "c.yaml").tables[0].quality_rules
    assert (dup.metric, dup.rule) == ("duplicateValues", "duplicateCount")
    assert (valid.metric, valid.arguments) == ("invalidValues", {"validValues": ["a", "b"]})


def test_a_property_without_logical_type_is_valid_in_v31_and_not_in_v32() -> None:
    untyped = {"name": "notes"}
    v31 = doc_for("v3.1.0")
    v31["schema"][0]["properties"].append(untyped)
    assert parse_document(v31, "c.yaml").tables[0].column("notes") is not None
    v32 = doc_for("v3.2.0")
    v32["schema"][0]["properties"].append(dict(untyped))
    assert refused(v32).error.field.startswith("schema[0].properties[2]")


def test_timestamp_logical_type_is_refused_by_v30_only() -> None:
    prop = {"name": "updated_at", "logicalType": "timestamp"}
    v31 = doc_for("v3.1.0")
    v31["schema"][0]["properties"].append(prop)
    assert parse_document(v31, "c.yaml").tables[0].column("updated_at") is not None
    v30 = doc_for("v3.0.2")
    v30["schema"][0]["properties"].append(dict(prop))
    err = refused(v30).error
    assert err.field == "schema[0].properties[2].logicalType"
    assert "'timestamp'" in err.message and "ODCS v3.0.2" in err.message


@pytest.mark.parametrize("version", ["v3.0.0", "v3.1.0"])
def test_an_iceberg_server_before_v32_is_validated_as_v32_defines_it(version: str) -> None:
    doc = doc_for(version)
    del doc["servers"][0]["catalogUrl"]  # required by the v3.2.0 iceberg server definition
    err = refused(doc).error
    assert err.field == "servers[0].catalogUrl"
    assert "ODCS" in err.message
    doc = doc_for(version)
    doc["servers"][0]["catalogURL"] = "http://typo"
    assert refused(doc).error.field == "servers[0].catalogURL"


def test_the_rest_of_a_file_with_an_iceberg_server_is_validated_by_its_own_version() -> None:
    doc = doc_for("v3.0.1")
    doc["servers"].append({"server": "hms", "type": "hive", "host": "h", "database": "sales"})  # hive: v3.1.0+
    err = refused(doc).error
    assert err.field == "servers[1].type"
    assert "'hive'" in err.message and "ODCS v3.0.1" in err.message


@pytest.mark.parametrize(
    ("api_version", "shown"),
    [(None, "no apiVersion"), ("v3.3.0", "'v3.3.0'"), ("3.1.0", "'3.1.0'"), ("v2.2.2", "'v2.2.2'")],
)
def test_an_unknown_or_missing_api_version_names_the_field_and_the_versions(
    api_version: str | None, shown: str
) -> None:
    doc = doc_for("v3.1.0")
    if api_version is None:
        del doc["apiVersion"]
    else:
        doc["apiVersion"] = api_version
    err = refused(doc).error
    assert err.field == "apiVersion"
    assert shown in err.message
    assert "v3.0.0, v3.0.1, v3.0.2, v3.1.0, v3.2.0" in err.message


def test_a_missing_top_level_field_is_named() -> None:
    doc = doc_for("v3.1.0")
    del doc["status"]
    err = refused(doc).error
    assert err.field == "status"
    assert "requires 'status'" in err.message


# ---------------------------------------------------------------------------------------------------
# YAML as the author meant it


V30_WITH_DATES = """\
apiVersion: v3.0.2
kind: DataContract
id: urn:x:orders
name: orders
version: 1.0.0
status: active
contractCreatedTs: 2024-05-01T10:00:00Z
servers:
  - server: lake
    type: iceberg
    catalog: lake
    catalogUrl: http://127.0.0.1:8181
    namespace: sales
schema:
  - name: orders
    properties:
      - name: order_id
        logicalType: string
        examples:
          - A-1
      - name: placed_on
        logicalType: date
        examples:
          - 2022-10-03
          - 2022-10-04
slaProperties:
  - property: timeOfAvailability
    value: 10:30
  - property: endOfSupport
    value: 2032-05-12
"""


def test_unquoted_dates_and_times_are_read_as_the_text_written(tmp_path: Path) -> None:
    c = load_contract_file(write(tmp_path, V30_WITH_DATES))
    assert c.api_version == "v3.0.2"
    toa = c.time_of_availability
    assert toa is not None and (toa.time_of_day.hour, toa.time_of_day.minute, toa.text) == (10, 30, "10:30")
    assert c.lifecycle is not None and c.lifecycle.end_of_support == date(2032, 5, 12)


def test_a_directory_with_unquoted_dates_loads_every_file(tmp_path: Path) -> None:
    write(tmp_path, V30_WITH_DATES, "a.yaml")
    write(tmp_path, V30_WITH_DATES.replace("name: orders", "name: returns", 1).replace("- name: orders", "- name: r"))
    report = load_contracts([tmp_path])
    assert report.errors == ()
    assert sorted(c.name for c in report.contracts) == ["orders", "returns"]


def test_a_document_parsed_by_a_plain_yaml_loader_still_validates() -> None:
    raw = yaml.safe_load(V30_WITH_DATES.replace("value: 10:30", 'value: "10:30"'))
    assert isinstance(raw["contractCreatedTs"], datetime)  # what PyYAML makes of it
    c = parse_document(raw, "c.yaml")
    assert c.lifecycle is not None and c.lifecycle.end_of_support == date(2032, 5, 12)
    assert isinstance(raw["contractCreatedTs"], datetime)  # the caller's document is left as it was


NUMBERS_AS_TEXT = """\
apiVersion: v3.1.0
kind: DataContract
id: 0123
name: 2024
version: 1.0.0
status: active
servers:
  - server: lake
    type: iceberg
    catalog: lake
    catalogUrl: http://127.0.0.1:8181
    namespace: sales
schema:
  - name: orders
    description: 1.50
    properties:
      - name: order_id
        logicalType: string
        physicalType: 10
"""


def test_numbers_where_odcs_wants_text_are_read_as_the_text_written(tmp_path: Path) -> None:
    c = load_contract_file(write(tmp_path, NUMBERS_AS_TEXT))
    assert (c.contract_id, c.name) == ("0123", "2024")  # YAML 1.1 reads 0123 as octal 83
    [t] = c.tables
    assert t.description == "1.50"
    order_id = t.column("order_id")
    assert order_id is not None and order_id.physical_type == "10"


def test_a_number_as_version_is_read_as_written_then_refused_as_not_semver(tmp_path: Path) -> None:
    text = NUMBERS_AS_TEXT.replace("version: 1.0.0", "version: 1.10")
    with pytest.raises(ContractLoadError) as exc:
        load_contract_file(write(tmp_path, text))
    assert exc.value.error.field == "version"
    assert "'1.10'" in exc.value.error.message


def test_a_wrong_type_that_is_not_yaml_typing_is_still_refused(tmp_path: Path) -> None:
    text = NUMBERS_AS_TEXT.replace("        physicalType: 10", "        required: 'yes'")
    with pytest.raises(ContractLoadError) as exc:
        load_contract_file(write(tmp_path, text))
    assert exc.value.error.field == "schema[0].properties[0].required"
    assert "'yes'" in exc.value.error.message


class MemoryRegistry:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def register(
        self,
        name: str,
        version: str,
        contract_data: Any,
        connection_config: Any,
        overrides: Any,
        registered_at: datetime,
    ) -> None:
        self.rows.append({"contract_name": name, "contract_data": contract_data})


def test_registering_a_file_with_dates_stores_text_that_loads_again(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    contract = register_file(registry, write(tmp_path, V30_WITH_DATES), datetime(2026, 1, 1, tzinfo=UTC))
    [row] = registry.rows
    assert row["contract_data"]["schema"][0]["properties"][1]["examples"] == ["2022-10-03", "2022-10-04"]
    report = load_registered(registry.rows)
    assert report.errors == ()
    [again] = report.contracts
    assert (again.source, again.time_of_availability) == ("store:orders", contract.time_of_availability)


# ---------------------------------------------------------------------------------------------------
# Errors explained fast


def nested(depth: int, width: int, tag: str) -> list[dict[str, Any]]:
    props: list[dict[str, Any]] = [
        {"name": f"{tag}_{depth}_{i}", "logicalType": "string", "description": "a column " * 6} for i in range(width)
    ]
    if depth > 0:
        props.append({"name": f"obj_{depth}", "logicalType": "object", "properties": nested(depth - 1, width, tag)})
        props.append(
            {
                "name": f"list_{depth}",
                "logicalType": "array",
                "items": {"logicalType": "object", "properties": nested(min(depth - 1, 2), 3, tag + "i")},
            }
        )
    return props


@pytest.mark.parametrize("version", ["v3.0.2", "v3.1.0", "v3.2.0"])
def test_an_invalid_large_nested_contract_is_explained_with_the_field_path(tmp_path: Path, version: str) -> None:
    doc = doc_for(version)
    doc["schema"][0]["properties"] = [
        {"name": f"top_{k}", "logicalType": "object", "properties": nested(8, 9, f"t{k}")} for k in range(3)
    ]
    node = doc["schema"][0]["properties"][1]["properties"]
    expected = "schema[0].properties[1]"
    for depth in range(8, 0, -1):
        index = next(i for i, p in enumerate(node) if p["name"] == f"obj_{depth}")
        expected += f".properties[{index}]"
        node = node[index]["properties"]
    node[4]["logicalTyp"] = node[4].pop("logicalType")  # the one typo, nine objects deep
    expected += ".properties[4].logicalTyp"
    path = write(tmp_path, yaml.safe_dump(doc, sort_keys=False))
    assert path.stat().st_size > 100_000
    started = time.perf_counter()
    with pytest.raises(ContractLoadError) as exc:
        load_contract_file(path)
    print(f"explained a {path.stat().st_size // 1024} KB contract in {time.perf_counter() - started:.3f} s")
    assert exc.value.error.source == str(path)
    assert exc.value.error.field == expected
    assert exc.value.error.message == f"ODCS {version} defines no field 'logicalTyp'"


# ---------------------------------------------------------------------------------------------------
# The project's own examples


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_examples_validate_under_the_version_they_declare(path: Path) -> None:
    declared = yaml.safe_load(path.read_text(encoding="utf-8"))["apiVersion"]
    c = load_contract_file(path, ServerOptions())
    assert c.api_version == (None if c.dialect == "floe" else declared)  # the floe dialect: customers.yaml
    assert c.not_monitored == ()
