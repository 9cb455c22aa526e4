"""Real Iceberg tables for tests: a pyiceberg SqlCatalog on SQLite with a local file warehouse."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.contracts import MonitoredContract, parse_document

CATALOG = "floetest"

# An orders-like table (`shop.<name>`) and its strict v3.1.0 contract with a PT1H freshness SLA on `updated_at`:
# the shape the store-outage and record-page tests run real freshness checks on.
FRESHNESS_SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "amount", DecimalType(10, 2), required=True),
    NestedField(3, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)
FRESHNESS_PROPS: list[dict[str, Any]] = [
    {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(10,2)", "required": True},
    {"name": "updated_at", "logicalType": "timestamp", "required": True},
]


def freshness_contract(name: str) -> MonitoredContract:
    """The contract of table `shop.<name>` (FRESHNESS_SCHEMA) in this catalog, freshness PT1H on updated_at."""
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "schema": [{"name": name, "properties": FRESHNESS_PROPS}],
        "slaProperties": [{"property": "freshness", "value": "PT1H", "element": "updated_at"}],
    }
    return parse_document(doc, f"{name}.yaml")


def make_catalog(root: Path) -> SqlCatalog:
    (root / "wh").mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG, uri=f"sqlite:///{root / 'catalog.db'}", warehouse=f"file://{root / 'wh'}")


def catalog_env(root: Path) -> dict[str, str]:
    p = f"PYICEBERG_CATALOG__{CATALOG.upper()}__"
    return {f"{p}TYPE": "sql", f"{p}URI": f"sqlite:///{root / 'catalog.db'}", f"{p}WAREHOUSE": f"file://{root / 'wh'}"}


def create(cat: SqlCatalog, ident: str, schema: Schema, rows: Mapping[str, Sequence[Any]] | None = None) -> Table:
    cat.create_namespace_if_not_exists(ident.rsplit(".", 1)[0])
    table = cat.create_table(ident, schema=schema)
    if rows:
        table.append(pa.table(rows, schema=table.schema().as_arrow()))
    return table


def append_without_metrics(table: Table, rows: Mapping[str, Sequence[Any]]) -> None:
    """Add a data file whose manifest entry has no column bounds (as old writers or metrics=none do)."""
    with table.transaction() as tx:
        tx.set_properties({"write.metadata.metrics.default": "none"})
    table.append(pa.table(rows, schema=table.schema().as_arrow()))
