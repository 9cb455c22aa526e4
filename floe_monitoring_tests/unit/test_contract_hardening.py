"""Contract loading never raises past its boundary, what validates loads, and fields name what exists (issue 11).

Case by case what the fuzz suite (`floe_monitoring_tests/fuzz/`) checks in bulk: the message and the field of
each refusal, and what is derived instead of refused.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_monitoring_defs.config import DEFAULT_CONTRACT_MAX_BYTES, ConfigError, Settings
from floe_monitoring_defs.contracts import files, loader, names
from floe_monitoring_defs.contracts.loader import (
    INTERNAL,
    ContractLoadError,
    iter_contract_files,
    load_contract_file,
    load_contracts,
    parse_document,
)
from floe_monitoring_defs.contracts.model import ContractError, LoadReport
from floe_monitoring_defs.contracts.registry import merge_reports
from floe_monitoring_defs.contracts.servers import ServerOptions, server_options
from floe_monitoring_defs.contracts.sla import parse_sla
from floe_monitoring_defs.contracts.yamltext import MAX_DEPTH, ContractYAMLError, load_yaml


def doc(**overrides: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "urn:x:orders",
        "name": "orders",
        "version": "1.0.0",
        "status": "active",
        "servers": [
            {
                "server": "p",
                "type": "iceberg",
                "catalog": "c",
                "catalogUrl": "http://127.0.0.1:8181",
                "namespace": "shop",
            }
        ],
        "schema": [
            {
                "name": "orders",
                "properties": [
                    {"name": "order_id", "logicalType": "string"},
                    {"name": "amount", "logicalType": "number"},
                    {"name": "Updated At", "physicalName": "updated_at", "logicalType": "timestamp"},
                    {"name": "ordered_on", "logicalType": "date"},
                    {"name": "loaded", "physicalType": "TIMESTAMPTZ"},
                    {
                        "name": "address",
                        "logicalType": "object",
                        "properties": [
                            {"name": "city", "logicalType": "string"},
                            {"name": "moved_at", "logicalType": "timestamp"},
                        ],
                    },
                ],
            }
        ],
    }
    d.update(overrides)
    return d


def refused(d: Any, source: str = "c.yaml") -> ContractError:
    with pytest.raises(ContractLoadError) as info:
        parse_document(d, source)
    assert info.value.error.source == source and info.value.error.field != INTERNAL
    return info.value.error


def latency(element: str) -> list[dict[str, Any]]:
    return [{"property": "latency", "value": "PT1H", "element": element}]


# ---------------------------------------------------------------------------------------------------
# Cross-field: elements and quality rules name declared columns
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "column"),
    [
        ("updated_at", "updated_at"),
        ("Updated At", "updated_at"),  # the logical name: the check reads the physical column
        ("orders.updated_at", "updated_at"),
        ("ordered_on", "ordered_on"),  # a date
        ("loaded", "loaded"),  # untyped logically, a timestamp physically
        ("address.moved_at", "address.moved_at"),  # a nested path
        ("orders.address.moved_at", "address.moved_at"),
    ],
)
def test_a_freshness_element_names_a_declared_timestamp_or_date_column(element: str, column: str) -> None:
    [t] = parse_document(doc(slaProperties=latency(element)), "c.yaml").tables
    assert t.freshness_column == column


def test_a_freshness_element_naming_no_column_is_refused_naming_both() -> None:
    err = refused(doc(slaProperties=latency("updated")))
    assert err.field == "slaProperties[0].element"
    assert "'updated' names no column" in err.message and "updated_at" in err.message  # what is declared


def test_a_freshness_element_on_a_column_that_is_no_timestamp_is_refused() -> None:
    err = refused(doc(slaProperties=latency("orders.amount")))
    assert err.field == "slaProperties[0].element"
    assert "'orders.amount' is a number column" in err.message and "timestamp or date" in err.message


def test_sla_default_element_is_named_when_it_supplies_the_element() -> None:
    d = doc(
        apiVersion="v3.0.2",
        slaDefaultElement="orders.city",
        slaProperties=[{"property": "latency", "value": 1, "unit": "h"}],
    )
    d["schema"][0]["properties"] = [{"name": "city", "logicalType": "string"}]
    err = refused(d)
    assert err.field == "slaDefaultElement" and "string column" in err.message


def test_a_retention_element_names_a_declared_timestamp_column() -> None:
    err = refused(doc(slaProperties=[{"property": "retention", "value": 1, "unit": "y", "element": "gone"}]))
    assert err.field == "slaProperties[0].element" and "'gone' names no column" in err.message


def test_a_table_level_duplicate_rule_names_declared_columns() -> None:
    d = doc()
    rule: dict[str, Any] = {
        "metric": "duplicateValues",
        "mustBe": 0,
        "arguments": {"properties": ["order_id", "ordr_id"]},
    }
    d["schema"][0]["quality"] = [rule]
    err = refused(d)
    assert err.field == "schema[0].quality[0].arguments.properties"
    assert "'ordr_id' names no top-level column of table orders" in err.message
    rule["arguments"]["properties"] = ["order_id", "amount"]
    [r] = parse_document(d, "c.yaml").tables[0].quality_rules
    assert r.arguments["properties"] == ["order_id", "amount"]


def dialect(**quality: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "d",
        "name": "d",
        "version": "1.0.0",
        "status": "active",
        "schema": [{"name": "t", "columns": [{"name": "email", "logicalType": "string"}]}],
        "quality": [{"type": "null_check", **quality}],
        "customProperties": {"floe.iceberg_namespace": "crm"},
    }


def test_a_floe_dialect_rule_names_a_declared_column() -> None:
    err = refused(dialect(element="emial"))
    assert err.field == "quality[0].element" and "'emial' names no top-level column" in err.message
    [r] = parse_document(dialect(element="t.email"), "c.yaml").tables[0].quality_rules
    assert (r.table, r.element) == ("t", "email")


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"element": "email", "severity": ["error"]}, "quality[0].severity"),
        ({"element": "email", "weight": float("nan")}, "quality[0].weight"),
        ({"element": ["email"]}, "quality[0].element"),
        ({"element": "email", "name": 3}, "quality[0].name"),
    ],
)
def test_a_floe_dialect_rule_of_the_wrong_types_is_refused_by_field(rule: dict[str, Any], field: str) -> None:
    assert refused(dialect(**rule)).field == field


# ---------------------------------------------------------------------------------------------------
# What becomes a Dagster name
# ---------------------------------------------------------------------------------------------------


def test_a_namespace_dagster_cannot_name_is_refused_at_the_field_that_gave_it() -> None:
    d = doc()
    d["servers"][0]["namespace"] = "shop floor"
    err = refused(d)
    assert err.field == "servers[0].namespace" and "'shop floor' cannot be part of a Dagster asset key" in err.message


def test_a_nested_list_as_floe_iceberg_namespace_validates_never_crashes_definitions() -> None:
    d = doc(servers=[], customProperties=[{"property": "floe.iceberg_namespace", "value": [["shop"]]}])
    assert refused(d).field == "servers"  # no namespace at all: refused here, not when definitions load


@pytest.mark.parametrize(
    ("table", "expected"),
    [("a b", "cannot be part of a Dagster asset key"), ("dict", "which Dagster reserves")],
)
def test_a_table_dagster_cannot_name_is_refused_naming_the_table(table: str, expected: str) -> None:
    d = doc(servers=[{"server": "l", "type": "local", "path": "/data/t", "format": "parquet"}])
    d["schema"][0]["physicalName"] = table
    err = refused(d)
    assert err.field == "schema[0].physicalName" and expected in err.message


def test_the_monitors_own_asset_cannot_be_a_contract_table() -> None:
    d = doc()
    d["servers"][0]["namespace"] = "floe"
    d["schema"][0]["name"] = "contract_registry"
    assert "the monitor's own asset floe/contract_registry" in refused(d).message


def test_the_sla_asset_reserved_here_is_the_one_the_definitions_build() -> None:
    from floe_monitoring_defs.defs.assets import REGISTRY_KEY
    from floe_monitoring_defs.defs.sla import ASSET_NAME

    assert (ASSET_NAME,) == names.SLA_ASSET_KEY and tuple(REGISTRY_KEY.path) == names.REGISTRY_ASSET_KEY


def test_two_tables_becoming_one_dagster_name_are_refused() -> None:
    d = doc()
    d["schema"] = [
        {"name": "a-b", "properties": [{"name": "x", "logicalType": "string"}]},
        {"name": "a_b", "properties": [{"name": "x", "logicalType": "string"}]},
    ]
    err = refused(d)
    assert err.field == "schema[1].name" and "become the same Dagster name" in err.message


def test_contracts_of_two_files_becoming_one_dagster_name_keep_the_first(tmp_path: Path) -> None:
    first, second = doc(name="first", id="first"), doc(name="second", id="second")
    first["schema"][0]["name"], second["schema"][0]["name"] = "a-b", "a_b"
    (tmp_path / "1.yaml").write_text(yaml.safe_dump(first))
    (tmp_path / "2.yaml").write_text(yaml.safe_dump(second))
    report = load_contracts([tmp_path])
    assert [c.name for c in report.contracts] == ["first"]
    [err] = report.errors
    assert err.source == str(tmp_path / "2.yaml") and "same Dagster name" in err.message and "'first'" in err.message


def test_a_registered_contract_clashing_with_a_file_by_dagster_name_is_reported() -> None:
    a, b = doc(name="a", id="a"), doc(name="b", id="b")
    a["schema"][0]["name"], b["schema"][0]["name"] = "t-1", "t_1"
    files_report = LoadReport((parse_document(a, "a.yaml"),), ())
    merged = merge_reports(files_report, LoadReport((parse_document(b, "store:b"),), ()))
    assert [c.name for c in merged.contracts] == ["a"] and "same Dagster name" in merged.errors[0].message


@pytest.mark.parametrize(
    ("written", "owner"),
    [("ops@example.com", "ops@example.com"), ("x@", "team:x"), ("Data Eng", "team:Data-Eng"), ("ü", None)],
)
def test_owners_are_what_dagster_accepts(written: str, owner: str | None) -> None:
    d = doc(team={"members": [{"username": written, "role": "owner"}]})
    assert parse_document(d, "c.yaml").owners == ((owner,) if owner else ())


def test_domains_and_tags_become_dagster_names() -> None:
    assert names.group_name("Sales & Marketing") == "Sales_Marketing" and names.group_name("-") == "contracts"
    assert names.tag_value("a b/ü") == "a_b" and len(names.tag_value("x" * 100)) == 63


def test_monitoring_overrides_are_validated_with_the_contract() -> None:
    d = doc(
        customProperties=[{"property": "floe.monitoring", "value": {"check_intervals": {"freshness_minutes": "x"}}}]
    )
    err = refused(d)
    assert err.field == "customProperties.floe.monitoring" and "freshness_minutes" in err.message


# ---------------------------------------------------------------------------------------------------
# Values no code path may crash on
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fid", ["²", "9" * 5000, 2**40, -1])
def test_a_field_id_that_is_no_iceberg_id_is_refused(fid: Any) -> None:
    d = doc()
    d["schema"][0]["properties"][0]["customProperties"] = [{"property": "icebergFieldId", "value": fid}]
    assert refused(d).field == "schema[0].properties[0].customProperties.icebergFieldId"


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ({"property": "latency", "value": float("nan"), "unit": "h"}, "not a duration"),
        ({"property": "latency", "value": 10**400, "unit": "h"}, "longer than any duration"),
        ({"property": "timeOfAvailability", "value": "09:00+99:00"}, "offset"),
        ({"property": "timeOfAvailability", "value": "09:00", "unit": "A" * 5000 + "/B"}, "not a time zone"),
        ({"property": "endOfLife", "value": "0001-01-01T00:00:00+01:00"}, "not a date"),
    ],
)
def test_sla_values_out_of_range_are_refused_by_field(item: dict[str, Any], words: str) -> None:
    with pytest.raises(ContractLoadError) as info:
        parse_sla([item], None, "c.yaml")
    assert info.value.error.field.startswith("slaProperties[0]") and words in info.value.error.message


@pytest.mark.parametrize("cron", ["\u0663 6 * * *", "0 6 31 2 *", "0 6 30,31 2 *"])
def test_a_cron_dagster_cannot_schedule_is_listed_and_the_sla_kept(cron: str) -> None:
    reading = parse_sla([{"property": "latency", "value": "PT1H", "scheduler": "cron", "schedule": cron}], None, "c")
    assert reading.freshness is not None and reading.schedules == {}
    assert [n.field for n in reading.not_monitored] == ["slaProperties[0].schedule"]


def test_a_bytes_value_behind_an_earlier_error_names_its_field() -> None:
    d = doc(kind="nope", description={"purpose": b"\x00"})  # the schema stops at `kind` before it sees the bytes
    assert refused(d).field == "description.purpose"


def test_huge_messages_are_cut() -> None:
    err = refused(doc(version="9" * 100_000))
    assert err.field == "version" and len(err.message) < 200


def test_a_bug_while_reading_is_an_internal_error_never_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(loader, "_read_contract", broken)
    with pytest.raises(ContractLoadError) as info:
        parse_document(doc(), "c.yaml")
    assert info.value.error.field == INTERNAL and "KeyError" in info.value.error.message


# ---------------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("a: 1\nb: 2\na: 3\n", "line 3, column 1", "the key 'a' is given twice in this mapping (first at line 1)"),
        ('1: x\n"1": y\n', "line 2, column 1", "given twice"),
        ("a: &x [*x]\n", "line 1, column 4", "recursive"),
        ("a: !!int abc\n", "line 1, column 4", "'abc' is not an integer"),
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "line 1", f"more than {MAX_DEPTH} levels"),
        ("a: 1\n---\nb: 2\n", "line 2, column 1", "single document"),
        ("a: b\x00\n", "line 1, column 5", "#x0000"),
    ],
)
def test_yaml_no_contract_needs_is_refused_with_the_line(text: str, where: str, words: str) -> None:
    with pytest.raises(ContractYAMLError) as info:
        load_yaml(text)
    assert info.value.where.startswith(where) and words in info.value.problem


def test_merge_keys_and_shared_anchors_are_still_yaml() -> None:
    assert load_yaml("d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  x: 3\nf: [*d, *d]\n") == {
        "d": {"x": 1, "y": 2},
        "e": {"x": 3, "y": 2},
        "f": [{"x": 1, "y": 2}, {"x": 1, "y": 2}],
    }


def test_an_alias_bomb_is_refused_before_it_grows() -> None:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ContractYAMLError) as info:
        load_yaml("\n".join(lines))
    # l5 (line 6) is the first to pass a million values: 1 + 10 * (1 + 10 * ...) = 1,111,111
    assert "YAML aliases" in info.value.problem and info.value.where.startswith("line 6,")


def test_a_number_python_cannot_convert_stays_the_text_written() -> None:
    assert load_yaml("v: " + "9" * 5000) == {"v": "9" * 5000}
    assert load_yaml("p: 8181\nq: 0x1F") == {"p": 8181, "q": 31}


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------


def write(path: Path, d: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(d), encoding="utf-8")
    return path


def test_the_size_limit_comes_from_the_settings(tmp_path: Path) -> None:
    assert Settings.from_env({}).contract_max_bytes == DEFAULT_CONTRACT_MAX_BYTES
    assert server_options(Settings.from_env({})) is None
    settings = Settings.from_env({"FLOE_CONTRACT_MAX_BYTES": "200"})
    options = server_options(settings)
    assert options == ServerOptions(max_file_bytes=200)
    path = write(tmp_path / "c.yaml", doc())
    with pytest.raises(ContractLoadError) as info:
        load_contract_file(path, options)
    assert info.value.error.field == "<file>" and "more than the limit of 200 bytes (FLOE_CONTRACT_MAX_BYTES)" in str(
        info.value
    )
    assert load_contract_file(path).name == "orders"


@pytest.mark.parametrize("text", ["0", "-5", "lots", "1.5M"])
def test_a_size_limit_that_is_no_size_names_the_variable(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"FLOE_CONTRACT_MAX_BYTES": text})
    assert str(info.value).startswith("FLOE_CONTRACT_MAX_BYTES: ")


def test_a_non_utf8_file_names_its_line_and_the_others_still_load(tmp_path: Path) -> None:
    write(tmp_path / "a_good.yaml", doc())
    (tmp_path / "b_bad.yaml").write_bytes(b"apiVersion: v3.1.0\nname: caf\xe9\n")
    report = load_contracts([tmp_path])
    assert [c.name for c in report.contracts] == ["orders"]
    [err] = report.errors
    assert (err.field, err.source) == ("line 2, column 10", str(tmp_path / "b_bad.yaml"))
    assert "not UTF-8 text (byte 0xe9" in err.message


def test_a_fifo_is_reported_not_read_and_never_listed_as_a_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    write(tmp_path / "good.yaml", doc())  # nothing ever writes to the FIFO: opening it to read would block
    assert list(iter_contract_files([tmp_path])) == [tmp_path / "good.yaml"]
    report = load_contracts([tmp_path])
    assert [e.source for e in report.errors] == [str(fifo)] and "FIFO" in report.errors[0].message
    assert files.fingerprint(fifo).startswith("unreadable: ")


def test_symlinks_to_files_load_and_directory_links_are_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    write(real / "c.yaml", doc())
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "linked.yaml").symlink_to(real / "c.yaml")
    (contracts / "up").symlink_to(tmp_path)  # a loop if followed
    (contracts / "dir.yaml").symlink_to(real)
    report = load_contracts([contracts])
    assert [c.source for c in report.contracts] == [str(contracts / "linked.yaml")] and not report.errors


def test_a_contract_file_that_is_copied_whole_keeps_its_text(tmp_path: Path) -> None:
    text = yaml.safe_dump(doc())
    (tmp_path / "c.yaml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "d.yaml").write_bytes(yaml.safe_dump(copy.deepcopy(doc(name="d", id="d", servers=[]))).encode("utf-16"))
    report = load_contracts([tmp_path])
    assert [c.name for c in report.contracts] == ["orders"]
    assert [e.field for e in report.errors] == ["servers"]  # read through UTF-16: refused for what it says
