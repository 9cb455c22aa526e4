"""Sources: read table metadata (schema, snapshots, column bounds) for the checks."""

from floe_monitoring_defs.sources.base import (
    CatalogNotConfiguredError,
    ColumnInfo,
    ColumnNotFoundError,
    FileMetrics,
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
    "FileMetrics",
    "FreshnessReading",
    "SourceError",
    "SourceUnavailableError",
    "TableNotFoundError",
    "TableSchemaInfo",
    "TableSource",
]
