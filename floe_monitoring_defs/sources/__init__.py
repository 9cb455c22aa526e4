"""Sources: read table metadata (schema, snapshots, column bounds) for the checks."""

from floe_monitoring_defs.sources.base import (
    CatalogNotConfiguredError,
    ColumnInfo,
    ColumnNotFoundError,
    FreshnessReading,
    SourceError,
    SourceUnavailableError,
    TableNotFoundError,
    TableSchemaInfo,
    TableSource,
)

__all__ = [
    "CatalogNotConfiguredError",
    "ColumnInfo",
    "ColumnNotFoundError",
    "FreshnessReading",
    "SourceError",
    "SourceUnavailableError",
    "TableNotFoundError",
    "TableSchemaInfo",
    "TableSource",
]
