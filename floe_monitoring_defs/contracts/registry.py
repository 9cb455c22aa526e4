"""Contracts registered in the store (FR-004): `floe contracts register` puts them there, and the
code location restores them at start beside the files under FLOE_CONTRACTS_DIR.

Loading opens no database: the composition root reads the registrations (`store.registry`) and hands
them in; `register_file` writes through any object with the registry's `register` method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from floe_monitoring_defs.contracts.loader import (
    ContractLoadError,
    dagster_clash,
    load_contracts,
    parse_document,
    read_contract_text,
)
from floe_monitoring_defs.contracts.model import ContractError, LoadReport, MonitoredContract
from floe_monitoring_defs.contracts.names import dagster_names
from floe_monitoring_defs.contracts.servers import ServerOptions


class ContractRegistry(Protocol):
    def register(
        self,
        name: str,
        version: str,
        contract_data: Mapping[str, Any],
        connection_config: Mapping[str, Any],
        overrides: Mapping[str, Any] | None,
        registered_at: datetime,
    ) -> None: ...


def register_file(
    registry: ContractRegistry, path: Path, now: datetime, options: ServerOptions | None = None
) -> MonitoredContract:
    """Validate a contract file and store its document; raises ContractLoadError naming the field.

    The document is read like every contract file (dates and `HH:MM` as the text written), so what is
    stored is plain JSON and loads again the same way."""
    text, raw = read_contract_text(path, (options or ServerOptions()).max_file_bytes)
    contract = parse_document(raw, str(path), options=options, text=text)
    connection = [
        {
            "table": t.ref.identifier,
            "catalog": t.ref.catalog,
            "catalog_url": t.ref.catalog_url,
            "warehouse": t.ref.warehouse,
            "metadata_location": t.ref.metadata_location,
        }
        for t in contract.tables
    ]
    registry.register(
        contract.name, contract.version, raw, {"tables": connection}, contract.monitoring_overrides or None, now
    )
    return contract


def load_registered(registrations: Sequence[Mapping[str, Any]], options: ServerOptions | None = None) -> LoadReport:
    """Registrations (rows of `registered_contracts`) as contracts; a stored document that no longer
    validates is an error entry."""
    contracts: list[MonitoredContract] = []
    errors: list[ContractError] = []
    for row in registrations:
        source = f"store:{row.get('contract_name')}"
        try:
            contracts.append(parse_document(row.get("contract_data"), source, options=options))
        except ContractLoadError as exc:
            errors.append(exc.error)
    return LoadReport(tuple(contracts), tuple(errors))


def merge_reports(files: LoadReport, registered: LoadReport) -> LoadReport:
    """Files first; a registration whose name or table a file already claims is reported, not loaded."""
    names = {c.name: c for c in files.contracts}
    tables = {t.ref.identifier: c.name for c in files.contracts for t in c.tables}
    dagster = {k: c.name for c in files.contracts for t in c.tables for k in dagster_names(t.ref.asset_path)}
    kept = list(files.contracts)
    errors = list(files.errors) + list(registered.errors)
    for c in registered.contracts:
        if c.name in names:
            continue  # the file is the newer truth for a contract deployed both ways
        clash = next((t.ref.identifier for t in c.tables if t.ref.identifier in tables), None)
        if clash:
            errors.append(
                ContractError(c.source, "schema", f"table {clash} is already monitored by contract {tables[clash]!r}")
            )
            continue
        same = dagster_clash(c, dagster)
        if same:
            errors.append(ContractError(c.source, "schema", same))
            continue
        dagster.update({k: c.name for t in c.tables for k in dagster_names(t.ref.asset_path)})
        tables.update({t.ref.identifier: c.name for t in c.tables})
        kept.append(c)
    return LoadReport(tuple(kept), tuple(errors))


def load_all(
    contracts_dir: Path, registrations: Sequence[Mapping[str, Any]] = (), options: ServerOptions | None = None
) -> LoadReport:
    """Every contract the code location monitors: files under `contracts_dir` + the given registrations."""
    report = LoadReport((), ())
    if contracts_dir.exists():
        # One argument when there are no options: benchmarks/defs_load.py times `load_contracts(paths)`.
        report = load_contracts([contracts_dir]) if options is None else load_contracts([contracts_dir], options)
    if registrations:
        report = merge_reports(report, load_registered(registrations, options))
    return report
