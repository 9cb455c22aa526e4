"""Checks across fields of one contract: what a field names must exist, and what becomes a Dagster name must be one.

* An SLA `element` (latency / freshness, and the retention one) names a declared column of a timestamp or date
  type: `column`, `table.column`, a nested path (`address.updated_at`, by physical names) or several of
  those separated by commas (one per table). A column is a timestamp or date one when its `logicalType` is
  `timestamp` or `date` (ODCS v3.0 has no `timestamp`) or its `physicalType` says so (`TIMESTAMPTZ`, `DATE`).
* Quality rules name declared columns: a rule under a property is on that column; a floe-dialect rule's
  `element` must be a top-level column of one of the tables (`column` or `table.column`); a table-level
  `duplicateValues` rule's `arguments.properties` must be the table's top-level columns.
* Each table's asset key (the Iceberg namespace + the table name) must be one Dagster accepts, and two tables
  of one contract must not become the same Dagster name (`names.py`).

Every error names the field and what it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from floe_monitoring_defs.contracts.errors import fail, shorten
from floe_monitoring_defs.contracts.model import ExpectedColumn, MonitoredTable
from floe_monitoring_defs.contracts.names import asset_key_problem, key_part_problem, python_names

_TIME_LOGICAL = frozenset({"timestamp", "date"})
_TIME_PHYSICAL = re.compile(r"timestamp|datetime|date", re.IGNORECASE)
_SHOWN_COLUMNS = 12


def _walk(columns: Sequence[ExpectedColumn]) -> Iterator[ExpectedColumn]:
    for c in columns:
        yield c
        yield from _walk(c.children)
        if c.items is not None:
            yield from _walk((c.items,))


def find_column(table: MonitoredTable, path: str) -> ExpectedColumn | None:
    """The column `path` names in `table`: a top-level one by physical name, then by name, or a nested one by
    its path (`address.city`, `tags[]`)."""
    for c in table.columns:
        if c.physical_name == path:
            return c
    for c in table.columns:
        if c.name == path:
            return c
    if "." in path or "[" in path:
        for c in _walk(table.columns):
            if c.column_path == path:
                return c
    return None


def is_time_column(column: ExpectedColumn) -> bool:
    if (column.logical_type or "").lower() in _TIME_LOGICAL:
        return True
    return column.physical_type is not None and _TIME_PHYSICAL.search(column.physical_type) is not None


def _declared(tables: Sequence[MonitoredTable], *, nested: bool = True) -> str:
    names = [
        (f"{t.schema_name}." if len(tables) > 1 else "") + c.column_path
        for t in tables
        for c in (_walk(t.columns) if nested else t.columns)
        if not c.column_path.endswith("[]")
    ]
    if not names:
        return "the contract declares no column"
    more = f" and {len(names) - _SHOWN_COLUMNS} more" if len(names) > _SHOWN_COLUMNS else ""
    return "declared: " + ", ".join(names[:_SHOWN_COLUMNS]) + more


def _resolve(part: str, tables: Sequence[MonitoredTable]) -> list[tuple[MonitoredTable, ExpectedColumn]]:
    """Where an element part points: `table.column` when the prefix is one of the tables, else a column (or a
    nested path) of every table that declares it."""
    if "." in part:
        prefix, rest = part.split(".", 1)
        owners = [t for t in tables if prefix in (t.schema_name, t.ref.name)]
        found = [(t, c) for t in owners if (c := find_column(t, rest)) is not None]
        if found:
            return found
    return [(t, c) for t in tables if (c := find_column(t, part)) is not None]


def _element_parts(element: str) -> list[str]:
    return [p.strip() for p in element.split(",") if p.strip()]


def time_columns(
    element: str | None, tables: Sequence[MonitoredTable], source: str, field: str, what: str
) -> dict[str, str | None]:
    """Each table's timestamp column that `element` names (None: none named); an error naming `field` and the
    column when a part names no declared column, or one that is not a timestamp or date."""
    out: dict[str, str | None] = {t.schema_name: None for t in tables}
    for part in _element_parts(element or ""):
        found = _resolve(part, tables)
        if not found:
            raise fail(source, field, f"{shorten(part)} names no column the contract declares ({_declared(tables)})")
        for table, column in found:
            if not is_time_column(column):
                kind = column.logical_type or column.physical_type or "untyped"
                raise fail(
                    source,
                    field,
                    f"{shorten(part)} is a {kind} column: {what} is measured on a timestamp or date column",
                )
            out[table.schema_name] = out[table.schema_name] or column.column_path
    return out


def dialect_rule_target(
    element: Any, tables: Sequence[MonitoredTable], source: str, field: str
) -> tuple[MonitoredTable, str]:
    """(table, top-level physical column) a floe-dialect rule's `element` names; an error naming both otherwise."""
    if not isinstance(element, str) or not element.strip():
        raise fail(source, field, "a floe-dialect rule needs the column it checks (a column name)")
    name = element.strip()
    for table in tables:
        column = next((c for c in table.columns if name in (c.physical_name, c.name)), None)
        if column is not None:
            return table, column.physical_name
    if "." in name:
        prefix, rest = name.split(".", 1)
        for table in tables:
            if prefix in (table.schema_name, table.ref.name):
                column = next((c for c in table.columns if rest in (c.physical_name, c.name)), None)
                if column is not None:
                    return table, column.physical_name
    raise fail(
        source,
        field,
        f"{shorten(name)} names no top-level column the contract declares ({_declared(tables, nested=False)})",
    )


def check_rule_columns(table: MonitoredTable, source: str) -> None:
    """A table-level duplicateValues rule's `arguments.properties` name top-level columns of its table."""
    top = {c.physical_name for c in table.columns} | {c.name for c in table.columns}
    for rule in table.quality_rules:
        if rule.element is not None or "properties" not in rule.arguments:
            continue
        field = f"{rule.source_path}.arguments.properties"
        props = rule.arguments["properties"]
        if not isinstance(props, list) or not props or not all(isinstance(p, str) for p in props):
            raise fail(source, field, "must be a list of the table's column names")
        for p in props:
            if p not in top:
                raise fail(
                    source,
                    field,
                    f"{shorten(p)} names no top-level column of table {table.schema_name} "
                    f"({_declared([table], nested=False)})",
                )


def check_asset_keys(
    tables: Sequence[MonitoredTable], objects: Sequence[Mapping[str, Any]], namespace_field: str, source: str
) -> None:
    """Every table's asset key is one Dagster accepts, and no two tables of the contract share a Dagster name."""
    seen: dict[str, str] = {}
    for idx, (table, obj) in enumerate(zip(tables, objects, strict=True)):
        table_field = f"schema[{idx}].{'physicalName' if obj.get('physicalName') else 'name'}"
        for part in table.ref.namespace:
            problem = key_part_problem(part)
            if problem is not None:
                raise fail(source, namespace_field, f"the Iceberg namespace: {problem}")
        problem = key_part_problem(table.ref.name)
        if problem is not None:
            raise fail(source, table_field, f"the table name: {problem}")
        problem = asset_key_problem(table.ref.asset_path, checked_parts=True)
        if problem is not None:
            raise fail(source, table_field, problem)
        for form, derived in enumerate(python_names(table.ref.asset_path)):
            other = seen.setdefault(f"{form}:{derived}", table.schema_name)
            if other != table.schema_name:
                raise fail(
                    source,
                    table_field,
                    f"tables {other} and {table.schema_name} become the same Dagster name {derived!r}",
                )
