"""Table access behind a small protocol, so the checks never see a catalog client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from floe_monitoring_defs.contracts.model import TableRef


class SourceError(Exception):
    """Base class: the table could not be read. Messages name the table/endpoint, never credentials."""


class TableNotFoundError(SourceError):
    pass


class ColumnNotFoundError(SourceError):
    pass


class SourceUnavailableError(SourceError):
    """The catalog (or its storage) could not be reached or is not configured."""


class CatalogNotConfiguredError(SourceUnavailableError):
    """No configuration names the catalog: no pyiceberg entry, no override, no catalogUrl."""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    field_id: int
    type: str  # Iceberg type as text: "long", "decimal(12, 2)", "timestamptz"
    required: bool


@dataclass(frozen=True)
class TableSchemaInfo:
    columns: tuple[ColumnInfo, ...]
    identifier_fields: tuple[str, ...] = ()
    schema_id: int | None = None

    def by_name(self) -> dict[str, ColumnInfo]:
        return {c.name: c for c in self.columns}

    def by_id(self) -> dict[int, ColumnInfo]:
        return {c.field_id: c for c in self.columns}


@dataclass(frozen=True)
class FreshnessReading:
    """When the table's data was last updated, and how that was found out."""

    last_update: datetime | None  # None: the table holds no data yet
    method: str  # "snapshot" | "column_bounds" | "column_scan"
    column: str | None = None
    files_considered: int = 0
    files_scanned: int = 0
    snapshot_id: int | None = None


class TableSource(Protocol):
    def catalog_name(self, ref: TableRef) -> str: ...

    def load_table(self, ref: TableRef) -> Any: ...

    def table_schema(self, ref: TableRef) -> TableSchemaInfo: ...

    def last_update(self, ref: TableRef, column: str | None) -> FreshnessReading: ...
