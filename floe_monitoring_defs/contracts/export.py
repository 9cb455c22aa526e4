"""A live table's description -> a strict ODCS v3.1.0 contract: how `floe contracts import` adopts a table.

`TableDescription` / `FieldDescription` are neutral: they say what a table is (its fields with their Iceberg
types, nullability, field ids, nested fields, identifier fields) without any ODCS vocabulary; the
sources package fills them from a live table (`sources/describe.py`; they are defined here because sources
sits above contracts in the layers). This module is the only place that turns them into ODCS field names,
so that the contracts package stays the one that knows ODCS.

Mapping (Iceberg -> ODCS `logicalType` / `physicalType`):

| Iceberg | logicalType | physicalType |
|---|---|---|
| string, uuid | string | STRING, UUID |
| int, long | integer | INT, LONG |
| float, double, decimal(p, s) | number | FLOAT, DOUBLE, DECIMAL(p,s) |
| boolean | boolean | BOOLEAN |
| date, time | date, time | DATE, TIME |
| timestamp, timestamptz (and the _ns variants) | timestamp | TIMESTAMP, TIMESTAMPTZ, ... |
| struct | object, with `properties` | STRUCT |
| list | array, with `items` | LIST |
| map | object (ODCS has no map type) | MAP<K, V> |
| binary, fixed[n], geometry, geography, unknown | none (ODCS v3.1 has no such logical type) | BINARY, FIXED(n), ... |

`required` is the Iceberg field's nullability, `primaryKey` / `primaryKeyPosition` come from the
identifier fields in their order, and every property carries its field id as `customProperties`
`icebergFieldId` (renames are then told from drop + add from the first check on).

The server entry is `type: iceberg` with `catalog`, `catalogUrl`, `namespace` and `warehouse`. ODCS v3.1.0
has no iceberg server type (v3.2.0 has); floe accepts it with its v3.2.0 fields in every v3 version, and it
is how a contract says "this is an Iceberg table".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

ODCS_API_VERSION = "v3.1.0"
DEFAULT_VERSION = "1.0.0"
DEFAULT_STATUS = "draft"  # generated from what the table is today: the team reviews it before calling it active

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")

# Iceberg primitive type -> (ODCS logicalType or None, physicalType).
_PRIMITIVES: dict[str, tuple[str | None, str]] = {
    "string": ("string", "STRING"),
    "uuid": ("string", "UUID"),
    "int": ("integer", "INT"),
    "long": ("integer", "LONG"),
    "float": ("number", "FLOAT"),
    "double": ("number", "DOUBLE"),
    "boolean": ("boolean", "BOOLEAN"),
    "date": ("date", "DATE"),
    "time": ("time", "TIME"),
    "timestamp": ("timestamp", "TIMESTAMP"),
    "timestamptz": ("timestamp", "TIMESTAMPTZ"),
    "timestamp_ns": ("timestamp", "TIMESTAMP_NS"),
    "timestamptz_ns": ("timestamp", "TIMESTAMPTZ_NS"),
    # ODCS v3.1 has no logical type for bytes: the physical type alone says what the column is.
    "binary": (None, "BINARY"),
}


class ExportError(ValueError):
    """The description cannot become a contract (bad version, no fields); the message names the field."""


@dataclass(frozen=True)
class FieldDescription:
    """One field of a table as the table itself declares it (no ODCS vocabulary)."""

    name: str
    field_id: int
    type: str  # Iceberg type name: "long", "decimal", "fixed", "timestamptz", "struct", "list", "map", ...
    required: bool
    doc: str | None = None
    type_text: str = ""  # the full Iceberg spelling: "decimal(12, 2)", "fixed[16]", "map<string, long>"
    precision: int | None = None  # decimal
    scale: int | None = None  # decimal
    length: int | None = None  # fixed
    fields: tuple[FieldDescription, ...] = ()  # struct: its fields
    element: FieldDescription | None = None  # list: its element
    key: FieldDescription | None = None  # map: its key
    value: FieldDescription | None = None  # map: its value
    identifier_position: int | None = None  # 1-based position among the table's identifier fields


@dataclass(frozen=True)
class TableDescription:
    """A live table: where it is, and its current schema."""

    catalog: str
    namespace: tuple[str, ...]
    name: str
    fields: tuple[FieldDescription, ...]
    catalog_uri: str | None = None  # credentials already removed by whoever described the table
    warehouse: str | None = None
    doc: str | None = None  # the table's comment
    schema_id: int | None = None
    format_version: int | None = None

    @property
    def identifier(self) -> str:
        return ".".join((*self.namespace, self.name))


def contract_document(
    table: TableDescription,
    *,
    name: str | None = None,
    version: str = DEFAULT_VERSION,
    status: str = DEFAULT_STATUS,
) -> dict[str, Any]:
    """The strict ODCS v3.1.0 contract of `table` (a plain mapping, keys in the order a reader expects)."""
    if not _SEMVER.match(version):
        raise ExportError(f"version: {version!r} is not a semantic version X.Y.Z")
    if not table.fields:
        raise ExportError(f"schema: table {table.identifier} has no fields")
    contract_name = name or table.name
    server: dict[str, Any] = {
        "server": table.catalog,
        "type": "iceberg",
        "catalog": table.catalog,
    }
    if table.catalog_uri:
        server["catalogUrl"] = table.catalog_uri
    server["namespace"] = ".".join(table.namespace)
    if table.warehouse:
        server["warehouse"] = table.warehouse
    obj: dict[str, Any] = {
        "name": table.name,
        "physicalName": table.name,
        "logicalType": "object",
        "physicalType": "table",
    }
    if table.doc:
        obj["description"] = table.doc
    obj["properties"] = [_property(f) for f in table.fields]
    return {
        "apiVersion": ODCS_API_VERSION,
        "kind": "DataContract",
        # A name-based UUID: importing the same table of the same catalog again gives the same id.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"iceberg://{table.catalog}/{table.identifier}")),
        "name": contract_name,
        "version": version,
        "status": status,
        "servers": [server],
        "schema": [obj],
    }


def contract_yaml(table: TableDescription, document: Mapping[str, Any]) -> str:
    """The contract as YAML, with a header saying where it came from and what to review."""
    schema = f" (schema id {table.schema_id})" if table.schema_id is not None else ""
    header = (
        f"# ODCS {ODCS_API_VERSION} contract generated by `floe contracts import` from Iceberg table\n"
        f"# {table.identifier} in catalog {table.catalog}{schema}. It states what the table is today;\n"
        "# review it and add what the table promises (slaProperties, quality rules, unique, descriptions).\n"
    )
    body = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)
    return header + body


def odcs_types(f: FieldDescription) -> tuple[str | None, str]:
    """(logicalType, physicalType) of a field."""
    if f.type in _PRIMITIVES:
        return _PRIMITIVES[f.type]
    if f.type == "decimal":
        return "number", f"DECIMAL({f.precision},{f.scale})"
    if f.type == "struct":
        return "object", "STRUCT"
    if f.type == "list":
        return "array", "LIST"
    if f.type == "map":
        # ODCS has no map type: an object whose keys are data, not declared properties; the key and value
        # types are kept in the physical type.
        key = odcs_types(f.key)[1] if f.key is not None else "?"
        value = odcs_types(f.value)[1] if f.value is not None else "?"
        return "object", f"MAP<{key}, {value}>"
    if f.type == "fixed":
        return None, f"FIXED({f.length})"
    # geometry, geography, unknown, and types newer than this mapping: the physical type alone.
    return None, (f.type_text or f.type).upper()


def _typed(f: FieldDescription) -> dict[str, Any]:
    """The type, nullability, nested structure and field id of a property or of an array's items."""
    logical, physical = odcs_types(f)
    out: dict[str, Any] = {}
    if logical is not None:
        out["logicalType"] = logical
    out["physicalType"] = physical
    out["required"] = f.required
    if f.identifier_position is not None:
        out["primaryKey"] = True
        out["primaryKeyPosition"] = f.identifier_position
    if f.doc:
        out["description"] = f.doc
    if f.type == "struct" and f.fields:
        out["properties"] = [_property(c) for c in f.fields]
    if f.type == "list" and f.element is not None:
        out["items"] = _typed(f.element)
    out["customProperties"] = [{"property": "icebergFieldId", "value": f.field_id}]
    return out


def _property(f: FieldDescription) -> dict[str, Any]:
    return {"name": f.name, **_typed(f)}
