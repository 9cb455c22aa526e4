"""A live Iceberg table -> the neutral `TableDescription` that `floe contracts import` writes as a contract.

The catalog is found the pyiceberg way (`PYICEBERG_CATALOG__<NAME>__*`, `.pyiceberg.yaml`) through
`IcebergSource`, so import resolves a catalog name exactly as the checks later will. What is read is
metadata only (the current schema, its identifier fields, the table's comment): no data file is opened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pyiceberg.table import Table
from pyiceberg.types import (
    DecimalType,
    FixedType,
    IcebergType,
    ListType,
    MapType,
    NestedField,
    StructType,
)

from floe_monitoring_defs.contracts.export import FieldDescription, TableDescription
from floe_monitoring_defs.contracts.model import TableRef
from floe_monitoring_defs.sources.iceberg import IcebergSource

_USERINFO = re.compile(r"//[^/@]*@")


def split_identifier(identifier: str) -> tuple[tuple[str, ...], str]:
    """`ns.table` / `a.b.table` -> (namespace parts, table); `ValueError` without a namespace."""
    parts = identifier.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"{identifier!r} is not NAMESPACE.TABLE (for example shop.orders)")
    return tuple(parts[:-1]), parts[-1]


def public_location(url: str | None) -> str | None:
    """A catalog URI or warehouse fit to be written into a contract: user and password removed, query dropped
    (a query string may carry tokens)."""
    if not url:
        return None
    return _USERINFO.sub("//", url).split("?", 1)[0] or None


def describe(source: IcebergSource, catalog: str, identifier: str) -> TableDescription:
    """Load `identifier` from `catalog` and describe it; raises `SourceError` subclasses whose message names
    the catalog and the table (not configured, unreachable, missing)."""
    namespace, name = split_identifier(identifier)
    ref = TableRef(namespace=namespace, name=name, catalog=catalog)
    table = source.load_table(ref)
    properties = source.catalog_for(ref).properties
    return describe_table(table, catalog, namespace, name, properties)


def describe_table(
    table: Table,
    catalog: str,
    namespace: tuple[str, ...],
    name: str,
    catalog_properties: Mapping[str, Any] | None = None,
) -> TableDescription:
    """The current schema of a loaded table, its identifier fields in order, and where its catalog is."""
    schema = table.schema()
    positions = {fid: i for i, fid in enumerate(schema.identifier_field_ids, start=1)}
    props = catalog_properties or {}
    uri = props.get("uri")
    warehouse = props.get("warehouse")
    comment = table.metadata.properties.get("comment")
    return TableDescription(
        catalog=catalog,
        namespace=namespace,
        name=name,
        fields=tuple(_field(f, positions) for f in schema.fields),
        catalog_uri=public_location(uri) if isinstance(uri, str) else None,
        warehouse=public_location(warehouse) if isinstance(warehouse, str) else None,
        doc=comment or None,
        schema_id=schema.schema_id,
        format_version=table.metadata.format_version,
    )


def _field(f: NestedField, positions: Mapping[int, int]) -> FieldDescription:
    return _described(f.name, f.field_id, f.field_type, f.required, f.doc, positions)


def _described(
    name: str,
    field_id: int,
    ftype: IcebergType,
    required: bool,
    doc: str | None,
    positions: Mapping[int, int],
) -> FieldDescription:
    common: dict[str, Any] = {
        "name": name,
        "field_id": field_id,
        "required": required,
        "doc": doc or None,
        "type_text": str(ftype),
        "identifier_position": positions.get(field_id),
    }
    if isinstance(ftype, StructType):
        return FieldDescription(type="struct", fields=tuple(_field(c, positions) for c in ftype.fields), **common)
    if isinstance(ftype, ListType):
        element = _described("element", ftype.element_id, ftype.element_type, ftype.element_required, None, positions)
        return FieldDescription(type="list", element=element, **common)
    if isinstance(ftype, MapType):
        key = _described("key", ftype.key_id, ftype.key_type, True, None, positions)
        value = _described("value", ftype.value_id, ftype.value_type, ftype.value_required, None, positions)
        return FieldDescription(type="map", key=key, value=value, **common)
    if isinstance(ftype, DecimalType):
        return FieldDescription(type="decimal", precision=ftype.precision, scale=ftype.scale, **common)
    if isinstance(ftype, FixedType):
        return FieldDescription(type="fixed", length=len(ftype), **common)
    return FieldDescription(type=str(ftype), **common)
