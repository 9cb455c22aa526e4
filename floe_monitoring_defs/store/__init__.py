"""Monitoring store: SQLAlchemy Core tables, Alembic migrations, and one small repository per concern.

`MonitoringStore` is one `Database` (engine, transactions, upserts, migrations) with its repositories:
`results` (check results, violations, SLA status), `availability` (pings), `baselines` (schema field ids),
`registry` (registered contracts), `outbox` (alerts, deliveries, dedup state, incidents), `aggregates`
(daily SLA aggregates and report reads), `retention`, `manifests` (Iceberg manifest bounds kept across
runs) and `commits` (tables' data-changing snapshots, the volume check's history). SQLite by default (a file
in `$DAGSTER_HOME`), PostgreSQL via `FLOE_MONITORING_DB_URL`. The store
holds rows, not check logic: it imports only the shared models, and this package does not import Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from floe_monitoring_defs.models import utcnow
from floe_monitoring_defs.store.aggregates import AggregateRepository
from floe_monitoring_defs.store.availability import AvailabilityRepository
from floe_monitoring_defs.store.baselines import BaselineRepository
from floe_monitoring_defs.store.commits import CommitHistoryRepository
from floe_monitoring_defs.store.database import (
    DB_URL_ENV,
    Database,
    StoreError,
    default_db_url,
    existing_db_url,
    mask_url,
    normalize_db_url,
    store_configured,
)
from floe_monitoring_defs.store.manifests import ManifestBoundsRepository
from floe_monitoring_defs.store.migrations import head_revision
from floe_monitoring_defs.store.outbox import OutboxRepository
from floe_monitoring_defs.store.registry import RegistryRepository
from floe_monitoring_defs.store.results import ResultsRepository, SLAUpdate, StoredViolation
from floe_monitoring_defs.store.retention import RetentionRepository


class MonitoringStore:
    """One monitoring database and its repositories; safe to share between threads."""

    def __init__(self, url: str, *, auto_migrate: bool = True, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = Database(url, auto_migrate=auto_migrate, clock=clock)
        self.outbox = OutboxRepository(self.db)
        self.results = ResultsRepository(self.db, self.outbox)
        self.availability = AvailabilityRepository(self.db)
        self.baselines = BaselineRepository(self.db)
        self.registry = RegistryRepository(self.db)
        self.aggregates = AggregateRepository(self.db)
        self.retention = RetentionRepository(self.db)
        self.manifests = ManifestBoundsRepository(self.db)  # the cross-run tier of the manifest bounds cache
        self.commits = CommitHistoryRepository(self.db)  # tables' data-changing commits (the volume check)

    @classmethod
    def from_env(cls) -> MonitoringStore:
        """The store at `default_db_url()`."""
        return cls(default_db_url())

    @classmethod
    def open_existing(cls, environ: Mapping[str, str] | None = None) -> MonitoringStore:
        """The store at `default_db_url()` for reading only: nothing is created or migrated. `StoreError`
        when it does not exist, holds no floe schema, or is at another revision than this floe's."""
        store = cls(existing_db_url(environ), auto_migrate=False)
        try:
            revision = store.db.current_revision()
        except StoreError:
            store.dispose()
            raise
        if revision != head_revision():
            store.dispose()
            what = "holds no floe tables" if revision is None else f"is at revision {revision}, not {head_revision()}"
            raise StoreError(f"monitoring store {store.url_display} {what}: run `floe db upgrade`")
        return store

    @property
    def url_display(self) -> str:
        return self.db.url_display

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def dispose(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        self.db.dispose()

    def __repr__(self) -> str:
        return f"MonitoringStore({self.url_display!r})"


__all__ = [
    "DB_URL_ENV",
    "Database",
    "MonitoringStore",
    "SLAUpdate",
    "StoreError",
    "StoredViolation",
    "default_db_url",
    "existing_db_url",
    "mask_url",
    "normalize_db_url",
    "store_configured",
]
