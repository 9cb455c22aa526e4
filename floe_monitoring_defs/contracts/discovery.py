"""Contracts found in table properties: the cold start of FR-004 when the store restores no registration.

A table carries its contract in one of two properties (set by `floe contracts register --table`, or by any
Iceberg writer):

* `floe.contract.location`: where the ODCS file is, a local absolute path or a `file://` URI. It is read as the
  files under FLOE_CONTRACTS_DIR are (`files.read_bytes`: regular file only, FLOE_CONTRACT_MAX_BYTES, UTF-8,
  one YAML document) and parsed through the same parse cache;
* `floe.contract`: the ODCS YAML itself (the same size limit and decoding apply to its text).

`floe.monitoring.enabled` = `false` on the table leaves it out ("deployed contracts with monitoring enabled").
When both contract properties are set, the location wins and the text is ignored (said as a note, not an error).

The search reads table metadata only (`list_tables`, then `load_table(...).properties`), in each configured
catalog and namespace (`DiscoverySettings`), one thread per catalog, within one time budget for all: a catalog
still listing or loading when it runs out leaves its part incomplete, reported as an error naming the catalog
and where it was; nothing is raised, no traceback is printed. Catalogs are opened by a function the caller
hands in (the composition root's pyiceberg resolution), so this package imports no catalog client.

Every error names the table it comes from: `catalog NAME table NS.TABLE: property floe.contract.location: ...`.
A discovered contract's `source` (what `floe contracts list` shows) is its file's path for a location, as for the
files (a file deleted after the load is skipped until the reload, edge case 2), and `catalog:NAME/NS.TABLE` for a
contract held in the property.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from floe_monitoring_defs.config import DiscoverySettings
from floe_monitoring_defs.contracts import files
from floe_monitoring_defs.contracts.cache import ContractCache, default_cache
from floe_monitoring_defs.contracts.errors import ContractLoadError, fail
from floe_monitoring_defs.contracts.loader import INTERNAL, load_contract_file, parse_document
from floe_monitoring_defs.contracts.model import ContractError, LoadReport, MonitoredContract
from floe_monitoring_defs.contracts.servers import ServerOptions
from floe_monitoring_defs.contracts.yamltext import ContractYAMLError, load_yaml

__all__ = [
    "ENABLED_PROPERTY",
    "INLINE_PROPERTY",
    "LOCATION_PROPERTY",
    "CatalogLike",
    "Discovered",
    "discover_contracts",
    "load_discovered",
    "location_path",
    "scan_catalogs",
]

log = logging.getLogger(__name__)

LOCATION_PROPERTY = "floe.contract.location"
INLINE_PROPERTY = "floe.contract"
ENABLED_PROPERTY = "floe.monitoring.enabled"
DISCOVERY = "discovery"  # the field of an error about a catalog or namespace, not one table


class CatalogLike(Protocol):
    """What discovery asks of a catalog (pyiceberg's `Catalog` has it)."""

    def list_tables(self, namespace: str | tuple[str, ...]) -> list[tuple[str, ...]]: ...

    # Any: only `.properties` (a mapping of strings) is read from what it returns (pyiceberg's `Table`).
    def load_table(self, identifier: str | tuple[str, ...]) -> Any: ...


@dataclass(frozen=True)
class Discovered:
    """One table that carries a contract property: where it is and the property's value."""

    catalog: str
    table: str  # NS.TABLE
    key: str  # LOCATION_PROPERTY or INLINE_PROPERTY
    value: str
    note: str | None = None  # something worth saying that is not an error (both properties set)

    @property
    def label(self) -> str:
        """How errors name the table."""
        return f"catalog {self.catalog} table {self.table}"

    @property
    def source(self) -> str:
        """The `source` of the contract the table's text holds (`MonitoredContract.source_path` knows it is no file)."""
        return f"catalog:{self.catalog}/{self.table}"


@dataclass
class _Progress:
    """What one catalog's worker has found so far; read by the caller when the budget runs out."""

    found: list[Discovered] = field(default_factory=list)
    errors: list[ContractError] = field(default_factory=list)
    doing: str = "opening the catalog"
    tables_read: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _text(value: object, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scan_one(
    name: str, open_catalog: Callable[[str], CatalogLike], namespaces: Sequence[tuple[str, ...]], progress: _Progress
) -> None:
    """Fill `progress` for catalog `name`; every failure becomes an error entry (this runs in its own thread)."""

    def error(source: str, where: str, message: str) -> None:
        with progress.lock:
            progress.errors.append(ContractError(source, where, message))

    try:
        catalog = open_catalog(name)
    except Exception as exc:  # the opener's errors are messages without secrets (sources/iceberg.py)
        error(f"catalog {name}", DISCOVERY, f"cannot open the catalog: {_text(exc)}")
        return
    for ns in namespaces:
        shown = ".".join(ns)
        progress.doing = f"listing namespace {shown}"
        try:
            idents = sorted(tuple(i) for i in catalog.list_tables(ns))
        except Exception as exc:
            # The exception's text may quote the catalog's properties: only its type is shown.
            error(f"catalog {name}", DISCOVERY, f"cannot list the tables of namespace {shown}: {type(exc).__name__}")
            continue
        for ident in idents:
            table = ".".join(ident)
            progress.doing = f"reading the properties of table {table}"
            try:
                props = dict(catalog.load_table(ident).properties)
            except Exception as exc:
                error(f"catalog {name} table {table}", "table metadata", f"cannot load: {type(exc).__name__}")
                continue
            with progress.lock:
                progress.tables_read += 1
            if str(props.get(ENABLED_PROPERTY, "")).strip().lower() == "false":
                continue
            location, inline = props.get(LOCATION_PROPERTY), props.get(INLINE_PROPERTY)
            if location is not None:
                note = f"{INLINE_PROPERTY} is ignored: {LOCATION_PROPERTY} is set too" if inline is not None else None
                hit = Discovered(name, table, LOCATION_PROPERTY, location, note)
            elif inline is not None:
                hit = Discovered(name, table, INLINE_PROPERTY, inline)
            else:
                continue
            with progress.lock:
                progress.found.append(hit)
    progress.doing = "done"


def scan_catalogs(
    open_catalog: Callable[[str], CatalogLike],
    catalogs: Sequence[str],
    namespaces: Sequence[tuple[str, ...]],
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Discovered], list[ContractError]]:
    """The tables of `namespaces` in `catalogs` that carry a contract property, and what went wrong, by catalog
    and table. All catalogs are searched at once; after `timeout_seconds` in all, a catalog not done is left
    (its thread is a daemon: it ends with the process or when its call returns) and reported incomplete."""
    deadline = clock() + timeout_seconds
    work: list[tuple[str, _Progress, threading.Thread]] = []
    for name in catalogs:
        progress = _Progress()
        thread = threading.Thread(
            target=_scan_one,
            args=(name, open_catalog, namespaces, progress),
            name=f"floe-discovery-{name}",
            daemon=True,
        )
        thread.start()
        work.append((name, progress, thread))
    found: list[Discovered] = []
    errors: list[ContractError] = []
    for name, progress, thread in work:
        thread.join(max(0.0, deadline - clock()))
        with progress.lock:
            found.extend(progress.found)
            errors.extend(progress.errors)
            if thread.is_alive():
                message = (
                    f"discovery incomplete: the catalog did not answer within {timeout_seconds:g} s "
                    f"(FLOE_DISCOVERY_TIMEOUT) while {progress.doing}; {progress.tables_read} tables read, "
                    f"{len(progress.found)} contracts found before that are loaded"
                )
                errors.append(ContractError(f"catalog {name}", DISCOVERY, message))
    return found, errors


def location_path(value: str) -> Path:
    """The local file a `floe.contract.location` names: an absolute path or a `file://` URI; ValueError otherwise."""
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() != "file":
            raise ValueError(f"{_text(parts.scheme, 20)}:// is not read: give a local absolute path or a file:// URI")
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file://{_text(parts.netloc, 60)}/... names another host: give a local path")
        text = unquote(parts.path)
    path = Path(text)
    if not text or not path.is_absolute():
        raise ValueError(f"{_text(value, 120)!r} is not an absolute path (nor a file:// URI)")
    return path


def _parse_inline(hit: Discovered, options: ServerOptions, cache: ContractCache) -> MonitoredContract:
    data = hit.value.encode("utf-8")
    source = hit.source
    if len(data) > options.max_file_bytes:
        raise fail(
            source,
            "<text>",
            f"{len(data):,} bytes is more than the limit of {options.max_file_bytes:,} bytes (FLOE_CONTRACT_MAX_BYTES)",
        )

    def parse() -> MonitoredContract:
        text = files.decode(data, source)
        try:
            raw = load_yaml(text)
        except ContractYAMLError as exc:
            raise fail(source, exc.where, exc.problem) from None
        return parse_document(raw, source, options=options, text=text)

    return cache.parse(data, source, options, parse)


def _load_one(hit: Discovered, options: ServerOptions, cache: ContractCache) -> MonitoredContract:
    """The contract `hit` carries; ContractLoadError whose error names the table and the property."""
    where = f"property {hit.key}"
    if hit.key == INLINE_PROPERTY:
        try:
            contract = _parse_inline(hit, options, cache)
        except ContractLoadError as exc:
            raise fail(hit.label, where, f"{exc.error.field}: {exc.error.message}") from None
        return contract
    try:
        path = location_path(hit.value)
    except ValueError as exc:
        raise fail(hit.label, where, str(exc)) from None
    try:
        # Parsed under the file's own path: a `local` server's relative path is relative to the file.
        contract = load_contract_file(path, options, cache)
    except ContractLoadError as exc:
        raise fail(hit.label, where, str(exc.error)) from None
    return contract


def load_discovered(
    found: Iterable[Discovered], options: ServerOptions | None = None, cache: ContractCache | None = None
) -> LoadReport:
    """The contracts the discovered properties carry, loaded like files (same validation, same parse cache);
    a bad one is an error entry naming its table. One contract set on several of its tables loads once; two
    different documents with one name: the first table (by catalog, table) wins and the other is an error."""
    opts = options or ServerOptions()
    cache = default_cache() if cache is None else cache
    contracts: list[MonitoredContract] = []
    errors: list[ContractError] = []
    by_name: dict[str, tuple[str, str]] = {}  # name -> (label, digest of the document)
    for hit in sorted(found, key=lambda h: (h.catalog, h.table)):
        if hit.note:
            log.info("%s: %s", hit.label, hit.note)
        try:
            contract = _load_one(hit, opts, cache)
        except ContractLoadError as exc:
            errors.append(exc.error)
            continue
        except Exception as exc:  # a bug of floe's must not stop the other tables, nor print a traceback
            log.debug("reading the contract of %s failed", hit.label, exc_info=True)
            errors.append(
                ContractError(hit.label, INTERNAL, f"floe could not read this contract ({type(exc).__name__})")
            )
            continue
        # The same document on two tables reads the same but for its source (several files may hold one text).
        digest = hashlib.sha256(repr(replace(contract, source="")).encode()).hexdigest()
        if contract.name in by_name:
            first, first_digest = by_name[contract.name]
            if first_digest != digest:
                errors.append(
                    ContractError(hit.label, "name", f"contract name {contract.name!r} is already used by {first}")
                )
            continue  # the same contract on another of its tables
        by_name[contract.name] = (hit.label, digest)
        contracts.append(contract)
    return LoadReport(tuple(contracts), tuple(errors))


def discover_contracts(
    settings: DiscoverySettings,
    open_catalog: Callable[[str], CatalogLike],
    options: ServerOptions | None = None,
    cache: ContractCache | None = None,
) -> LoadReport:
    """Search the configured catalogs and load what their tables carry; never raises. Problems with a catalog
    (unreachable, too slow) are logged at ERROR here, naming it; all problems are error entries of the report."""
    try:
        found, errors = scan_catalogs(open_catalog, settings.catalogs, settings.namespaces, settings.timeout_seconds)
    except Exception as exc:  # e.g. no thread can be started: discovery is a fallback, never the load's end
        log.error("contract discovery from the catalogs failed: %s", type(exc).__name__)
        return LoadReport((), (ContractError("catalogs", DISCOVERY, f"discovery failed: {type(exc).__name__}"),))
    for err in errors:
        if err.field == DISCOVERY:
            log.error("contract discovery: %s", err)
    report = load_discovered(found, options, cache)
    return LoadReport(report.contracts, (*errors, *report.errors))
