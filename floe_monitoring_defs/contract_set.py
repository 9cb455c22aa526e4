"""The contract set a deployment monitors (FR-004), the same for the code location, the CLI and `floe health`:
the contract files under the contracts directory, plus the contracts registered in the store; when the store
restores none (empty, or unreadable) and discovery is configured (`FLOE_DISCOVERY_NAMESPACES`), plus the contracts
found in Iceberg table properties (contracts/discovery.py). Files always load and win by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from floe_monitoring_defs.config import Settings
from floe_monitoring_defs.contracts.discovery import CatalogLike, discover_contracts
from floe_monitoring_defs.contracts.model import LoadReport, TableRef
from floe_monitoring_defs.contracts.registry import load_all, merge_reports
from floe_monitoring_defs.contracts.servers import server_options
from floe_monitoring_defs.sources.base import SourceError
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store.registry import read_registrations

__all__ = ["catalog_opener", "load_contracts_and_registrations"]

log = logging.getLogger("floe_monitoring")


def catalog_opener(settings: Settings) -> Callable[[str], CatalogLike]:
    """Opens a pyiceberg catalog by name the way the checks will (sources/iceberg.py: pyiceberg config first)."""
    source = IcebergSource(default_catalog=settings.default_catalog)

    def open_catalog(name: str) -> CatalogLike:
        try:
            return source.catalog_for(TableRef(namespace=(), name="", catalog=name))
        except SourceError:
            raise  # its message names the catalog and a masked endpoint
        except Exception as exc:  # e.g. a broken .pyiceberg.yaml: its text may quote properties, so the type only
            raise SourceError(f"cannot open Iceberg catalog {name!r}: {type(exc).__name__}") from None

    return open_catalog


def load_contracts_and_registrations(
    settings: Settings, registrations: list[dict[str, Any]] | None = None
) -> LoadReport:
    """The contract files under the contracts directory, plus the contracts registered in the store (FR-004);
    when the store restores none (empty, or unreadable) and FLOE_DISCOVERY_NAMESPACES is set, plus the contracts
    found in table properties (contracts/discovery.py). Files always load and win by name, as over registrations.
    `registrations`: those already read from the store (default: read them now)."""
    if registrations is None:
        registrations = read_registrations()
    options = server_options(settings)
    report = load_all(settings.contracts_dir, registrations, options)
    if registrations or settings.discovery is None:
        return report
    discovered = discover_contracts(settings.discovery, catalog_opener(settings), options)
    log.info(
        "no registrations restored from the store: %d contracts discovered in catalogs %s (%d not loaded)",
        len(discovered.contracts),
        ", ".join(settings.discovery.catalogs),
        len(discovered.errors),
    )
    return merge_reports(report, discovered)
