"""Table access behind a small protocol, so the checks never see a catalog client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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
    """One Iceberg field. Nested types carry their fields in `children`: a struct's fields, a list's element
    (named `element`, path `tags[]`), a map's `key` and `value` (paths `attrs.key`, `attrs.value`)."""

    name: str
    field_id: int
    type: str  # Iceberg type as text: "long", "decimal(12, 2)", "timestamptz", "struct<...>", "list<string>"
    required: bool
    children: tuple[ColumnInfo, ...] = ()
    path: str = ""  # where it sits: "address.city", "tags[]", "tags[].code"; "" means `name` (top level)
    kind: str = "primitive"  # primitive | struct | list | map

    @property
    def column_path(self) -> str:
        return self.path or self.name

    def walk(self) -> Iterator[ColumnInfo]:
        """This field and every field nested in it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class TableSchemaInfo:
    columns: tuple[ColumnInfo, ...]  # the top-level fields (nested ones in their `children`)
    identifier_fields: tuple[str, ...] = ()
    schema_id: int | None = None

    def by_name(self) -> dict[str, ColumnInfo]:
        return {c.name: c for c in self.columns}

    def by_id(self) -> dict[int, ColumnInfo]:
        return {c.field_id: c for c in self.columns}

    def by_path(self) -> dict[str, ColumnInfo]:
        """Every field at every depth, by path ("id", "address.city", "tags[]")."""
        return {f.column_path: f for c in self.columns for f in c.walk()}


@dataclass(frozen=True)
class FileMetrics:
    """What the manifest entry of one live data file says, for the fields asked for (no data file opened).

    `null_counts`, `nan_counts`, `lower` and `upper` hold only the fields the writer recorded them for (metrics
    mode `none`, or an old writer, leaves them out). Bounds are decoded to Iceberg's single-value form: ints for
    int / long / date (days) / time / timestamp (microseconds; nanoseconds for *_ns), floats, Decimals, strings
    (possibly truncated: never used as exact bounds). `has_deletes`: delete files apply to this file, so its
    counts may include deleted rows.
    """

    path: str
    rows: int
    has_deletes: bool = False
    null_counts: Mapping[int, int] = field(default_factory=dict)
    nan_counts: Mapping[int, int] = field(default_factory=dict)
    lower: Mapping[int, Any] = field(default_factory=dict)
    upper: Mapping[int, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FreshnessReading:
    """When the table's data was last updated, and how that was found out."""

    last_update: datetime | None  # None: the table holds no data yet
    method: str  # "snapshot" | "column_bounds" | "column_scan"
    column: str | None = None
    files_considered: int = 0
    files_scanned: int = 0
    snapshot_id: int | None = None
    # The table's state as its metadata says (no data file read), reported beside the check as an observation:
    # the current snapshot, its summary's `total-records`, and when the newest data-changing snapshot committed.
    current_snapshot_id: int | None = None
    total_records: int | None = None
    committed_at: datetime | None = None


class TableSource(Protocol):
    def catalog_name(self, ref: TableRef) -> str: ...

    def load_table(self, ref: TableRef) -> Any: ...

    def table_schema(self, ref: TableRef) -> TableSchemaInfo: ...

    def last_update(self, ref: TableRef, column: str | None) -> FreshnessReading: ...
