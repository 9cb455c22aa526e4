"""Monitoring store: SQLAlchemy Core tables, Alembic migrations and the `MonitoringStore` repository.

SQLite by default (a file in `$DAGSTER_HOME`), PostgreSQL via `FLOE_MONITORING_DB_URL`.
This package does not import Dagster.
"""

from floe_monitoring_defs.store.repository import (
    DB_URL_ENV,
    MonitoringStore,
    StoredViolation,
    StoreError,
    default_db_url,
    mask_url,
    normalize_db_url,
)

__all__ = [
    "DB_URL_ENV",
    "MonitoringStore",
    "StoreError",
    "StoredViolation",
    "default_db_url",
    "mask_url",
    "normalize_db_url",
]
