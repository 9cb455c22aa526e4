"""Which Iceberg table a contract names, from the server types that front one (issue 10, item 8).

Before v3.2.0 ODCS has no `iceberg` server type: contracts name the engine or catalog in front of the table.
Each type maps to a pyiceberg catalog + namespace (or a table location); servers override through their
customProperties; with several usable servers FLOE_SERVER_ENVIRONMENT picks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_monitoring_defs.config import ConfigError, Settings
from floe_monitoring_defs.contracts import TableRef, parse_document
from floe_monitoring_defs.contracts.loader import ContractLoadError, ServerOptions, load_contract_file
from floe_monitoring_defs.contracts.registry import load_all
from floe_monitoring_defs.contracts.servers import server_options


def contract(*servers: dict[str, Any], version: str = "v3.1.0", tables: int = 1, **top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": version,
        "kind": "DataContract",
        "id": "urn:x:orders",
        "name": "orders",
        "version": "1.0.0",
        "status": "active",
        "servers": list(servers),
        "schema": [
            {"name": name, "physicalName": f"{name}_t", "properties": [{"name": "id", "logicalType": "string"}]}
            for name in ["orders", "lines", "items"][:tables]
        ],
    }
    doc.update(top)
    return doc


def refs(doc: dict[str, Any], options: ServerOptions | None = None, source: str = "c.yaml") -> list[TableRef]:
    return [t.ref for t in parse_document(doc, source, options=options).tables]


def refused(doc: dict[str, Any], options: ServerOptions | None = None) -> str:
    with pytest.raises(ContractLoadError) as exc:
        parse_document(doc, "c.yaml", options=options)
    assert exc.value.error.field == "servers"
    return exc.value.error.message


GLUE = {"server": "glue", "type": "glue", "account": "1234", "database": "sales"}
HIVE = {"server": "hms", "type": "hive", "host": "hive.local", "database": "sales"}
TRINO = {"server": "trino", "type": "trino", "host": "trino.local", "port": 8080, "catalog": "lake", "schema": "sales"}
PRESTO = {"server": "presto", "type": "presto", "host": "presto.local:8080", "catalog": "hive", "schema": "sales"}
ATHENA = {"server": "athena", "type": "athena", "stagingDir": "s3://results/", "schema": "sales"}
DATABRICKS = {
    "server": "dbx",
    "type": "databricks",
    "host": "x.cloud.databricks.com",
    "catalog": "main",
    "schema": "sales",
}
CUSTOM = {"server": "rest", "type": "custom", "catalog": "rest_cat", "schema": "sales.core"}
ICEBERG = {
    "server": "ice",
    "type": "iceberg",
    "catalog": "ice",
    "catalogUrl": "http://127.0.0.1:1",
    "namespace": "sales",
}


@pytest.mark.parametrize(
    ("server", "namespace", "catalog"),
    [
        (GLUE, ("sales",), None),  # no catalog named: FLOE_CATALOG (the sources' fallback)
        (HIVE, ("sales",), None),
        (TRINO, ("sales",), "lake"),
        (PRESTO, ("sales",), "hive"),
        (ATHENA, ("sales",), "awsdatacatalog"),  # the ODCS schema's default Athena catalog
        (DATABRICKS, ("sales",), "main"),
        (CUSTOM, ("sales", "core"), "rest_cat"),
        (ICEBERG, ("sales",), "ice"),
    ],
    ids=lambda v: v["type"] if isinstance(v, dict) else None,
)
def test_each_server_type_maps_to_a_catalog_and_namespace(
    server: dict[str, Any], namespace: tuple[str, ...], catalog: str | None
) -> None:
    [ref] = refs(contract(server))
    assert (ref.namespace, ref.name, ref.catalog, ref.metadata_location) == (namespace, "orders_t", catalog, None)


@pytest.mark.parametrize("server", [GLUE, HIVE, TRINO, ATHENA, DATABRICKS, CUSTOM], ids=lambda s: s["type"])
def test_the_catalog_configured_for_a_type_is_used(server: dict[str, Any]) -> None:
    options = ServerOptions(catalogs={server["type"]: "configured"})
    [ref] = refs(contract(server), options)
    assert ref.catalog == "configured"


def test_settings_read_the_server_environment_and_catalogs() -> None:
    settings = Settings.from_env(
        {"FLOE_SERVER_ENVIRONMENT": " prod ", "FLOE_SERVER_CATALOGS": "glue=prod_glue, Hive = hms"}
    )
    assert settings.server_catalogs == (("glue", "prod_glue"), ("hive", "hms"))
    options = server_options(settings)
    assert options == ServerOptions(environment="prod", catalogs={"glue": "prod_glue", "hive": "hms"})
    assert server_options(Settings.from_env({})) is None
    with pytest.raises(ConfigError, match="FLOE_SERVER_CATALOGS: 'glue' is not <server type>=<pyiceberg catalog"):
        Settings.from_env({"FLOE_SERVER_CATALOGS": "glue"})


def test_the_contracts_own_catalog_is_the_fallback_for_a_server_naming_none() -> None:
    doc = contract(GLUE, customProperties=[{"property": "floe.iceberg_catalog", "value": "team_glue"}])
    [ref] = refs(doc)
    assert (ref.catalog, ref.namespace) == ("team_glue", ("sales",))


def test_a_servers_custom_properties_override_what_it_says() -> None:
    server = {
        **GLUE,
        "customProperties": [
            {"property": "floe.iceberg_catalog", "value": "other"},
            {"property": "floe.iceberg_namespace", "value": "lake.sales"},
            {"property": "floe.iceberg_catalog_url", "value": "http://127.0.0.1:2"},
            {"property": "floe.iceberg_warehouse", "value": "s3://wh"},
        ],
    }
    [ref] = refs(contract(server), ServerOptions(catalogs={"glue": "configured"}))
    assert (ref.catalog, ref.namespace, ref.catalog_url, ref.warehouse) == (
        "other",
        ("lake", "sales"),
        "http://127.0.0.1:2",
        "s3://wh",
    )


def test_a_server_of_another_type_is_usable_with_a_floe_namespace() -> None:
    snowflake = {
        "server": "sf",
        "type": "snowflake",
        "account": "acme",
        "database": "DB",
        "schema": "PUBLIC",
        "customProperties": [
            {"property": "floe.iceberg_namespace", "value": "sales"},
            {"property": "floe.iceberg_catalog", "value": "polaris"},
        ],
    }
    [ref] = refs(contract(snowflake))
    assert (ref.catalog, ref.namespace) == ("polaris", ("sales",))


def test_s3_location_is_the_table_and_model_becomes_each_table_name() -> None:
    one = {"server": "s3", "type": "s3", "location": "s3://lake/warehouse/sales/orders/metadata/00003-ab.metadata.json"}
    [ref] = refs(contract(one))
    assert (ref.namespace, ref.name, ref.metadata_location) == ((), "orders_t", one["location"])
    many = {"server": "s3", "type": "s3", "location": "s3://lake/warehouse/sales/{model}", "format": "parquet"}
    assert [r.metadata_location for r in refs(contract(many, tables=2))] == [
        "s3://lake/warehouse/sales/orders_t",
        "s3://lake/warehouse/sales/lines_t",
    ]
    assert "put `{model}` where the table name goes" in refused(contract(one, tables=2))


def test_local_path_is_relative_to_the_contract_file(tmp_path: Path) -> None:
    local = {"server": "laptop", "type": "local", "path": "./warehouse/orders", "format": "parquet"}
    doc = contract(local, customProperties=[{"property": "floe.iceberg_namespace", "value": "dev"}])
    path = tmp_path / "contracts" / "orders.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    [table] = load_contract_file(path).tables
    assert table.ref.metadata_location == str(tmp_path / "contracts" / "warehouse" / "orders")
    assert table.ref.identifier == "dev.orders_t"
    absolute = {**local, "path": "/srv/lake/orders/metadata/v3.metadata.json"}
    [ref] = refs(contract(absolute))
    assert ref.metadata_location == "/srv/lake/orders/metadata/v3.metadata.json"


@pytest.mark.parametrize(
    ("server", "why"),
    [
        ({"server": "s3", "type": "s3", "location": "s3://lake/orders/*.json", "format": "json"}, "format 'json'"),
        ({"server": "s3", "type": "s3", "location": "s3://lake/orders/*.parquet"}, "no globs"),
        ({"server": "p", "type": "presto", "host": "presto.local"}, "no schema"),
        ({"server": "k", "type": "kafka", "host": "k:9092"}, "does not front an Iceberg table"),
    ],
)
def test_an_unusable_server_is_refused_naming_its_type_and_the_supported_ones(server: dict[str, Any], why: str) -> None:
    message = refused(contract(server))
    assert f"the contract has {server['type']}; floe reads iceberg, glue, hive, trino" in message
    reason = message.split(f"(servers[0] ({server['type']} {server['server']!r}): ", 1)[1]
    assert why in reason


def test_no_server_and_no_namespace_names_the_servers_field() -> None:
    assert "no Iceberg namespace" in refused(contract())


def test_the_contract_level_namespace_still_works_without_a_usable_server() -> None:
    doc = contract(
        {"server": "k", "type": "kafka", "host": "k:9092"},
        customProperties=[
            {"property": "floe.iceberg_namespace", "value": "analytics.c360"},
            {"property": "floe.iceberg_catalog", "value": "lake"},
        ],
    )
    [ref] = refs(doc)
    assert (ref.namespace, ref.catalog) == (("analytics", "c360"), "lake")


def two_environments() -> dict[str, Any]:
    dev = {**ICEBERG, "server": "ice-dev", "environment": "dev", "namespace": "sales_dev"}
    prod = {**GLUE, "server": "glue-prod", "environment": "prod"}
    return contract(dev, prod, {"server": "k", "type": "kafka", "host": "k:9092", "environment": "prod"})


@pytest.mark.parametrize(
    ("env", "namespace"), [("dev", ("sales_dev",)), ("prod", ("sales",)), ("ice-dev", ("sales_dev",))]
)
def test_the_environment_picks_among_several_usable_servers(env: str, namespace: tuple[str, ...]) -> None:
    [ref] = refs(two_environments(), ServerOptions(environment=env))
    assert ref.namespace == namespace


def test_several_usable_servers_without_an_environment_name_the_choices() -> None:
    message = refused(two_environments())
    assert (
        "servers[0] (iceberg 'ice-dev', environment 'dev'); servers[1] (glue 'glue-prod', environment 'prod')"
        in message
    )
    assert "set FLOE_SERVER_ENVIRONMENT" in message
    assert "none matches FLOE_SERVER_ENVIRONMENT='qa'" in refused(two_environments(), ServerOptions(environment="qa"))


def test_the_only_usable_server_is_taken_whatever_the_environment() -> None:
    doc = contract(
        {"server": "k", "type": "kafka", "host": "k:9092", "environment": "prod"}, {**GLUE, "environment": "dev"}
    )
    [ref] = refs(doc, ServerOptions(environment="prod"))
    assert ref.namespace == ("sales",)


def test_two_servers_of_the_same_environment_are_ambiguous() -> None:
    doc = contract({**GLUE, "environment": "prod"}, {**HIVE, "environment": "prod"})
    assert "several servers match FLOE_SERVER_ENVIRONMENT='prod'" in refused(doc, ServerOptions(environment="prod"))


def test_load_all_passes_the_deployments_options(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(two_environments()), encoding="utf-8")
    assert [e.field for e in load_all(tmp_path).errors] == ["servers"]
    report = load_all(tmp_path, (), ServerOptions(environment="prod"))
    assert report.errors == ()
    assert [t.ref.identifier for c in report.contracts for t in c.tables] == ["sales.orders_t"]
