"""Dagster resources wrapping the core: the Iceberg catalog and the monitoring store."""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore, default_db_url


class IcebergCatalogResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # generic only for resource factories
    """pyiceberg catalogs; `default_catalog` is used for contracts whose server names none."""

    default_catalog: str | None = None

    _source: IcebergSource | None = PrivateAttr(default=None)

    def source(self) -> IcebergSource:
        if self._source is None:
            self._source = IcebergSource(default_catalog=self.default_catalog)
        return self._source


class MonitoringStoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # generic only for resource factories
    """The monitoring store. `db_url` may be an `EnvVar`; unset means FLOE_MONITORING_DB_URL or SQLite."""

    db_url: str | None = None

    _store: MonitoringStore | None = PrivateAttr(default=None)

    def store(self) -> MonitoringStore:
        if self._store is None:
            self._store = MonitoringStore(self.db_url or default_db_url())
        return self._store

    def teardown_after_execution(self, context: Any) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None
