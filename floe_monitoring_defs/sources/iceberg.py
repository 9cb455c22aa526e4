"""Iceberg tables through pyiceberg: schema with field ids, last commit, column max from bounds.

Catalog resolution (DESIGN "Interfaces"): the contract's `servers[].catalog` name (else
`FLOE_CATALOG`, else pyiceberg's default) is looked up in pyiceberg's own configuration
(`.pyiceberg.yaml`, `PYICEBERG_CATALOG__<NAME>__*`). When that has no entry, the server's
`catalogUrl` and `warehouse` are used: a SQLAlchemy URL means a SQL catalog, http(s) a REST one.
A table given by its metadata file (`TableRef.metadata_location`, servers of type s3 / local) is read
with `StaticTable.from_metadata`, no catalog involved; the named catalog's properties (if any) supply
the FileIO settings (S3 endpoint, credentials).
"""

from __future__ import annotations

import json
import logging
import operator
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.conversions import from_bytes
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, GreaterThanOrEqual, LessThanOrEqual
from pyiceberg.manifest import ManifestContent, ManifestFile
from pyiceberg.table import FileScanTask, StaticTable, Table
from pyiceberg.table.snapshots import Operation, Snapshot, ancestors_of
from pyiceberg.types import (
    DateType,
    IcebergType,
    ListType,
    MapType,
    PrimitiveType,
    StructType,
    TimestampType,
    TimestamptzType,
)
from pyiceberg.utils.config import Config

from floe_monitoring_defs.contracts.model import TableRef
from floe_monitoring_defs.sources.base import (
    CatalogNotConfiguredError,
    ColumnInfo,
    ColumnNotFoundError,
    FileMetrics,
    FreshnessReading,
    SourceUnavailableError,
    TableNotFoundError,
    TableSchemaInfo,
)

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_USERINFO = re.compile(r"//[^/@]*@")
_NANO_TYPES = ("timestamp_ns", "timestamptz_ns")


def mask_endpoint(url: str | None) -> str:
    """An endpoint fit for a message: user and password removed, query string dropped."""
    if not url:
        return "<none>"
    return _USERINFO.sub("//***@", url).split("?", 1)[0]


def catalog_properties_from_server(ref: TableRef) -> dict[str, str]:
    """pyiceberg properties derived from an ODCS iceberg server entry (no pyiceberg config)."""
    if not ref.catalog_url:
        return {}
    url = ref.catalog_url
    scheme = url.split(":", 1)[0].lower()
    props: dict[str, str] = {"uri": url}
    if scheme.startswith(("sqlite", "postgresql", "mysql")):
        props["type"] = "sql"
    elif scheme in ("http", "https"):
        props["type"] = "rest"
    elif scheme == "thrift":
        props["type"] = "hive"
    if ref.warehouse:
        props["warehouse"] = ref.warehouse
    return props


_RECENT_TABLES = 8  # tables remembered by `IcebergSource.recent_table`


class IcebergSource:
    """A TableSource over pyiceberg catalogs, one cached client per catalog."""

    def __init__(
        self, default_catalog: str | None = None, catalog_properties: dict[str, dict[str, str]] | None = None
    ) -> None:
        self._default_catalog = default_catalog
        self._overrides = catalog_properties or {}
        self._catalogs: dict[tuple[str, str | None, str | None], Catalog] = {}
        self._lock = threading.Lock()
        # One lock per catalog while it is being created: a catalog whose endpoint hangs (an availability
        # ping abandons that thread after its timeout) must not block the creation of the other catalogs.
        self._creating: dict[tuple[str, str | None, str | None], threading.Lock] = {}
        # The last few tables loaded, with when: a violation's context (checks/context.py) describes the metadata
        # the check itself read instead of loading the table a second time.
        self._recent: dict[tuple[str, str, str | None], tuple[float, Table]] = {}

    # -- catalog ---------------------------------------------------------------------------

    def catalog_name(self, ref: TableRef) -> str:
        if ref.metadata_location:
            return ref.catalog or "static"  # no catalog: the table is read from its metadata file
        return ref.catalog or self._default_catalog or "default"

    def catalog_for(self, ref: TableRef) -> Catalog:
        name = self.catalog_name(ref)
        key = (name, ref.catalog_url, ref.warehouse)
        with self._lock:
            cat = self._catalogs.get(key)
            if cat is not None:
                return cat
            creating = self._creating.setdefault(key, threading.Lock())
        with creating:
            with self._lock:
                cat = self._catalogs.get(key)
            if cat is None:
                cat = self._load(name, ref)  # cached only once created
                with self._lock:
                    self._catalogs[key] = cat
            return cat

    def _load(self, name: str, ref: TableRef) -> Catalog:
        # A fresh read (the env may change after import). pyiceberg turns `_` into `-` in catalog names
        # that come from PYICEBERG_CATALOG__<NAME>__* variables, so look under both spellings.
        config = Config()
        configured = None
        for candidate in (name, name.replace("_", "-")):
            configured = config.get_catalog_config(candidate)
            if configured:
                break  # load under the contract's spelling: a SQL catalog keys its tables by name
        props: dict[str, str] = {}
        endpoint: str | None = None
        if name in self._overrides:
            props = dict(self._overrides[name])
            endpoint = props.get("uri")
        elif configured:
            # pyiceberg's load_catalog reads its config once at import; pass the fresh entry explicitly.
            props = {k: v for k, v in configured.items() if isinstance(v, str)}
            endpoint = props.get("uri")
        else:
            props = catalog_properties_from_server(ref)
            endpoint = props.get("uri")
            if not props:
                env_name = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
                raise CatalogNotConfiguredError(
                    f"Iceberg catalog {name!r} is not configured: set PYICEBERG_CATALOG__{env_name}__URI "
                    f"(or a .pyiceberg.yaml entry), or give the contract's iceberg server a catalogUrl"
                )
        try:
            # Properties given here merge over pyiceberg's config for `name`.
            return load_catalog(name, **props)
        except Exception as exc:  # pyiceberg raises many types; none may leak credentials
            # The exception text may quote catalog properties (credentials included), so only its type is shown.
            raise SourceUnavailableError(
                f"cannot open Iceberg catalog {name!r} at {mask_endpoint(endpoint)}: {type(exc).__name__} "
                "(check the catalog's type, uri and warehouse properties)"
            ) from None

    def _file_io_properties(self, ref: TableRef) -> dict[str, str]:
        """FileIO properties for a table read from its metadata file: the named catalog's, if configured."""
        if not ref.catalog:
            return {}
        if ref.catalog in self._overrides:
            return dict(self._overrides[ref.catalog])
        config = Config()
        for candidate in (ref.catalog, ref.catalog.replace("_", "-")):
            configured = config.get_catalog_config(candidate)
            if configured:
                return {k: v for k, v in configured.items() if isinstance(v, str)}
        return {}

    def _load_static(self, ref: TableRef, location: str) -> Table:
        shown = mask_endpoint(location)
        try:
            return StaticTable.from_metadata(location, properties=self._file_io_properties(ref))
        except FileNotFoundError:
            raise TableNotFoundError(f"table {ref.identifier}: no table metadata at {shown}") from None
        except Exception as exc:
            if isinstance(exc, OSError) and "not found" in str(exc).lower():
                raise TableNotFoundError(f"table {ref.identifier}: no table metadata at {shown}") from None
            raise SourceUnavailableError(
                f"cannot read the metadata of table {ref.identifier} at {shown}: {type(exc).__name__}: {_short(exc)}"
            ) from None

    def recent_table(self, ref: TableRef, loaded_after: float) -> Table | None:
        """The table as `load_table` last returned it, if that was at or after `loaded_after` (time.monotonic)."""
        hit = self._recent.get((self.catalog_name(ref), ref.identifier, ref.metadata_location))
        return hit[1] if hit is not None and hit[0] >= loaded_after else None

    def load_table(self, ref: TableRef) -> Table:
        table = self._load_table(ref)
        key = (self.catalog_name(ref), ref.identifier, ref.metadata_location)
        with self._lock:  # availability pings load tables from several threads
            self._recent.pop(key, None)
            self._recent[key] = (time.monotonic(), table)
            while len(self._recent) > _RECENT_TABLES:  # dicts keep insertion order: drop the oldest
                del self._recent[next(iter(self._recent))]
        return table

    def _load_table(self, ref: TableRef) -> Table:
        if ref.metadata_location:
            return self._load_static(ref, ref.metadata_location)
        catalog = self.catalog_for(ref)
        try:
            return catalog.load_table(ref.identifier)
        except (NoSuchTableError, NoSuchNamespaceError):
            raise TableNotFoundError(
                f"table {ref.identifier} does not exist in catalog {self.catalog_name(ref)!r}"
            ) from None
        except Exception as exc:
            raise SourceUnavailableError(
                f"cannot load table {ref.identifier} from catalog {self.catalog_name(ref)!r}: "
                f"{type(exc).__name__}: {_short(exc)}"
            ) from None

    # -- TableSource ------------------------------------------------------------------------

    def table_schema(self, ref: TableRef) -> TableSchemaInfo:
        return schema_info(self.load_table(ref))

    def last_update(self, ref: TableRef, column: str | None) -> FreshnessReading:
        return last_update(self.load_table(ref), column)


def _short(exc: Exception) -> str:
    text = _USERINFO.sub("//***@", str(exc)).splitlines()[0] if str(exc) else ""
    return text[:300]


def _column_info(name: str, field_id: int, ftype: IcebergType, required: bool, path: str) -> ColumnInfo:
    """One field with its nested fields; paths as the contract writes them ("address.city", "tags[]")."""
    children: tuple[ColumnInfo, ...] = ()
    kind = "primitive"
    if isinstance(ftype, StructType):
        kind = "struct"
        children = tuple(
            _column_info(f.name, f.field_id, f.field_type, f.required, f"{path}.{f.name}") for f in ftype.fields
        )
    elif isinstance(ftype, ListType):
        kind = "list"
        children = (_column_info("element", ftype.element_id, ftype.element_type, ftype.element_required, f"{path}[]"),)
    elif isinstance(ftype, MapType):
        kind = "map"
        children = (
            _column_info("key", ftype.key_id, ftype.key_type, True, f"{path}.key"),
            _column_info("value", ftype.value_id, ftype.value_type, ftype.value_required, f"{path}.value"),
        )
    return ColumnInfo(
        name=name,
        field_id=field_id,
        type=str(ftype),
        required=required,
        children=children,
        path="" if path == name else path,
        kind=kind,
    )


def schema_info(table: Table) -> TableSchemaInfo:
    schema = table.schema()
    ids = set(schema.identifier_field_ids)
    cols = tuple(_column_info(f.name, f.field_id, f.field_type, f.required, f.name) for f in schema.fields)
    return TableSchemaInfo(
        columns=cols,
        identifier_fields=tuple(c.name for c in cols if c.field_id in ids),
        schema_id=schema.schema_id,
    )


def primitive_fields(table: Table) -> dict[int, PrimitiveType]:
    """Every primitive field of the table's current schema (at any depth), by field id."""
    out: dict[int, PrimitiveType] = {}

    def visit(ftype: IcebergType, field_id: int) -> None:
        if isinstance(ftype, PrimitiveType):
            out[field_id] = ftype
        elif isinstance(ftype, StructType):
            for f in ftype.fields:
                visit(f.field_type, f.field_id)
        elif isinstance(ftype, ListType):
            visit(ftype.element_type, ftype.element_id)
        elif isinstance(ftype, MapType):
            visit(ftype.key_type, ftype.key_id)
            visit(ftype.value_type, ftype.value_id)

    for f in table.schema().fields:
        visit(f.field_type, f.field_id)
    return out


def file_metrics(
    tasks: Iterable[FileScanTask], fields: Mapping[int, PrimitiveType], *, bounds: Iterable[int] = ()
) -> list[FileMetrics]:
    """The manifest metrics of each planned data file for `fields` (null / NaN counts) and `bounds` (decoded
    lower / upper bounds), read from the manifest entries the scan planning already loaded: no data file opened.
    """
    wanted = set(fields)
    bounded = {fid for fid in bounds if fid in fields}
    out: list[FileMetrics] = []
    for task in tasks:
        f = task.file
        if not f.record_count:
            continue
        nulls = f.null_value_counts or {}
        nans = f.nan_value_counts or {}
        lowers = f.lower_bounds or {}
        uppers = f.upper_bounds or {}
        out.append(
            FileMetrics(
                path=f.file_path,
                rows=int(f.record_count),
                has_deletes=bool(task.delete_files),
                null_counts={k: int(v) for k, v in nulls.items() if k in wanted},
                nan_counts={k: int(v) for k, v in nans.items() if k in wanted},
                lower={k: from_bytes(fields[k], v) for k, v in lowers.items() if k in bounded},
                upper={k: from_bytes(fields[k], v) for k, v in uppers.items() if k in bounded},
            )
        )
    return out


def snapshot_time(timestamp_ms: int) -> datetime:
    """A snapshot's (or snapshot-log entry's) `timestamp-ms` as an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=timestamp_ms)


def data_snapshots(table: Table) -> Iterator[Snapshot]:
    """The snapshots on the current ancestry that changed data, newest first.

    Compactions (`replace`) rewrite files without new data, so they do not make a table fresh.
    The current ancestry, not the newest snapshot in the log, is what readers see after a rollback.
    """
    current = table.current_snapshot()
    if current is None:
        return
    for snap in ancestors_of(current, table.metadata):
        op = snap.summary.operation if snap.summary is not None else None
        if op != Operation.REPLACE:
            yield snap


def data_commit_time(table: Table) -> tuple[datetime | None, int | None]:
    """Commit time of the newest snapshot on the current ancestry that changed data (see `data_snapshots`);
    the current snapshot when every ancestor is a compaction."""
    current = table.current_snapshot()
    if current is None:
        return None, None
    snap = next(data_snapshots(table), current)
    return snapshot_time(snap.timestamp_ms), snap.snapshot_id


def _to_datetime(field_type: IcebergType, value: Any) -> datetime:
    """A decoded manifest bound of a date / timestamp column (days or micro / nanoseconds) as UTC datetime."""
    if isinstance(field_type, DateType):
        return _EPOCH + timedelta(days=int(value))
    if str(field_type) in _NANO_TYPES:
        return _EPOCH + timedelta(microseconds=int(value) // 1000)
    return _EPOCH + timedelta(microseconds=int(value))


def _arrow_to_datetime(value: Any) -> datetime | None:
    """A value pyarrow's `as_py()` gave for a date / timestamp column as UTC datetime (naive means UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


# -- manifest bounds, cached by manifest path ------------------------------------------------------------
#
# Reading a table's column bounds means parsing its manifest list and every data manifest (Avro, about 1 ms
# each). Those files are immutable (a commit writes new ones), so what one says is cached under its path:
# in-process (bounded LRU) and, when a store is attached, across runs in the store's `manifest_bounds`
# table (every Dagster run is its own process). A run then reads only the manifests it has not seen.

SUMMARY_VERSION = 1
STORE_RETRY_SECONDS = 30.0  # how long the store tier is skipped after it failed to answer


class ManifestSummaryStore(Protocol):
    """The cross-run tier (store/manifests.py `ManifestBoundsRepository`): compact JSON summaries by path."""

    def load_manifest_summaries(self, paths: Sequence[str]) -> dict[str, str]: ...

    def save_manifest_summaries(self, summaries: Mapping[str, str]) -> None: ...


@dataclass(frozen=True)
class FieldBounds:
    """One field over a manifest's live data files with rows: the smallest lower and largest upper bound (raw
    Iceberg single-value bytes, compared decoded as `type`), how many files had no such bound, and the null
    count summed over the files that recorded one."""

    type: str
    lower: bytes | None
    upper: bytes | None
    missing_lower: int
    missing_upper: int
    nulls: int


@dataclass(frozen=True)
class ManifestSummary:
    """What the live data entries of one data manifest say: files with rows, their rows, bounds by field id."""

    files: int
    rows: int
    fields: Mapping[int, FieldBounds]

    def to_json(self) -> str:
        fields = {
            str(fid): [b.type, _hex(b.lower), _hex(b.upper), b.missing_lower, b.missing_upper, b.nulls]
            for fid, b in self.fields.items()
        }
        return json.dumps(
            {"v": SUMMARY_VERSION, "files": self.files, "rows": self.rows, "f": fields}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, text: str) -> ManifestSummary | None:
        """None for a summary of another format version (read the manifest again)."""
        doc = json.loads(text)
        if doc.get("v") != SUMMARY_VERSION or "f" not in doc:
            return None
        fields = {
            int(fid): FieldBounds(str(v[0]), _unhex(v[1]), _unhex(v[2]), int(v[3]), int(v[4]), int(v[5]))
            for fid, v in doc["f"].items()
        }
        return cls(int(doc["files"]), int(doc["rows"]), fields)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def summarize_manifest(manifest: ManifestFile, io: Any, fields: Mapping[int, PrimitiveType]) -> ManifestSummary:
    """Read one data manifest's live entries and fold their bounds for `fields` (as `time_column_extreme` does
    per file: entries without rows are left out; a bound that does not decode as the field's type is unknown)."""
    files = rows = 0
    lowers: dict[int, tuple[Any, bytes]] = {}
    uppers: dict[int, tuple[Any, bytes]] = {}
    missing_lower = dict.fromkeys(fields, 0)
    missing_upper = dict.fromkeys(fields, 0)
    nulls = dict.fromkeys(fields, 0)
    undecodable: set[int] = set()
    for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
        data_file = entry.data_file
        if not data_file.record_count:
            continue
        files += 1
        rows += int(data_file.record_count)
        for side, found, missing, beats in (
            (data_file.lower_bounds or {}, lowers, missing_lower, operator.lt),
            (data_file.upper_bounds or {}, uppers, missing_upper, operator.gt),
        ):
            for fid, ftype in fields.items():
                raw = side.get(fid)
                if raw is None:
                    missing[fid] += 1
                    continue
                try:
                    value = from_bytes(ftype, raw)
                    known = found.get(fid)
                    if known is None or beats(value, known[0]):
                        found[fid] = (value, bytes(raw))
                except Exception:  # an odd writer's bound: that field is not cached for this manifest
                    undecodable.add(fid)
        for fid, count in (data_file.null_value_counts or {}).items():
            if fid in nulls:
                nulls[fid] += int(count)
    summary = {
        fid: FieldBounds(
            str(ftype),
            lowers[fid][1] if fid in lowers else None,
            uppers[fid][1] if fid in uppers else None,
            missing_lower[fid],
            missing_upper[fid],
            nulls[fid],
        )
        for fid, ftype in fields.items()
        if fid not in undecodable
    }
    return ManifestSummary(files, rows, summary)


class ManifestBoundsCache:
    """Manifest summaries (and the data manifests of manifest lists) by file path: an in-process LRU tier in
    front of an optional store tier. New entries reach the store on `flush` (the pipeline flushes after each
    page of checks, in one write). A store that fails is logged and skipped: the manifests are read instead."""

    def __init__(self, store: ManifestSummaryStore | None = None, *, max_entries: int = 100_000) -> None:
        self._store = store
        self._max = max_entries
        self._local: OrderedDict[str, Any] = OrderedDict()
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        self.manifests_read = 0  # data manifests parsed (cache misses); manifest lists count in `lists_read`
        self.lists_read = 0
        self._store_down_until = 0.0  # after a failed read, the store tier is skipped for a while (no log flood)

    def attach(self, store: ManifestSummaryStore | None) -> None:
        """Use `store` as the cross-run tier from now on (None: in-process only)."""
        with self._lock:
            self._store = store

    def _get_local(self, key: str) -> Any:
        with self._lock:
            value = self._local.get(key)
            if value is not None:
                self._local.move_to_end(key)
            return value

    def _put(self, key: str, value: Any, serialized: str | None) -> None:
        with self._lock:
            self._local[key] = value
            self._local.move_to_end(key)
            while len(self._local) > self._max:
                self._local.popitem(last=False)
            if serialized is not None and self._store is not None:
                self._pending[key] = serialized

    def _load(self, keys: Sequence[str]) -> dict[str, str]:
        store = self._store
        if store is None or not keys or time.monotonic() < self._store_down_until:
            return {}
        try:
            return store.load_manifest_summaries(keys)
        except Exception as exc:  # the cache is an optimisation: read the manifests instead
            self._store_down_until = time.monotonic() + STORE_RETRY_SECONDS
            log.warning(
                "manifest bounds cache unavailable (%s: %s); reading manifests", type(exc).__name__, _short(exc)
            )
            return {}

    def flush(self) -> None:
        """Write what was read since the last flush to the store tier (one transaction); never raises."""
        with self._lock:
            pending, self._pending = self._pending, {}
            store = self._store
        if store is None:
            return
        try:
            store.save_manifest_summaries(pending)
        except Exception as exc:  # lost entries are read again next run
            log.warning("manifest bounds not saved (%s: %s)", type(exc).__name__, _short(exc))

    def data_manifest_paths(self, table: Table, snap: Snapshot) -> tuple[list[str], dict[str, ManifestFile]]:
        """The data manifests of a snapshot, by path, and the `ManifestFile`s when the list had to be read."""
        key = f"list:{snap.manifest_list}"
        paths = self._get_local(key)
        if paths is None:
            stored = self._load([key]).get(key)
            if stored is not None:
                doc = json.loads(stored)
                if doc.get("v") == SUMMARY_VERSION:
                    paths = list(doc["data"])
                    self._put(key, paths, None)
        if paths is not None:
            return list(paths), {}
        manifests = {m.manifest_path: m for m in snap.manifests(table.io) if m.content == ManifestContent.DATA}
        self.lists_read += 1
        paths = list(manifests)
        self._put(key, paths, json.dumps({"v": SUMMARY_VERSION, "data": paths}, separators=(",", ":")))
        return paths, manifests

    def summaries(self, table: Table, snap: Snapshot, field_id: int) -> list[ManifestSummary]:
        """The summary of every data manifest of `snap`, each holding `field_id` with its current type: from the
        cache, else read (and cached). A cached summary that lacks the field or saw it with another type (a
        schema change) is read again."""
        paths, manifests = self.data_manifest_paths(table, snap)
        fields = primitive_fields(table)
        wanted = str(fields[field_id]) if field_id in fields else None

        def usable(summary: ManifestSummary | None) -> bool:
            bounds = summary.fields.get(field_id) if summary is not None else None
            return bounds is not None and bounds.type == wanted

        found: dict[str, ManifestSummary] = {}
        for path in paths:
            local = self._get_local(path)
            if usable(local):
                found[path] = local
        for path, text in self._load([p for p in paths if p not in found]).items():
            summary = ManifestSummary.from_json(text)
            if summary is not None and usable(summary):
                found[path] = summary
                self._put(path, summary, None)
        missing = [p for p in paths if p not in found]
        if missing and not manifests:  # the list came from the cache: its ManifestFiles are needed to read
            manifests = {m.manifest_path: m for m in snap.manifests(table.io) if m.content == ManifestContent.DATA}
            self.lists_read += 1
        for path in missing:
            summary = summarize_manifest(manifests[path], table.io, fields)
            self.manifests_read += 1
            found[path] = summary
            self._put(path, summary, summary.to_json())
        return [found[p] for p in paths]

    def snapshot_bounds(self, table: Table, snap: Snapshot, field_id: int) -> ManifestSummary:
        """`field_id`'s bounds folded over every data manifest of `snap` (one `ManifestSummary` holding that field
        only, `files` and `rows` summed): what `summaries` gives, folded once per snapshot. A snapshot's manifest
        list is immutable, so the fold is cached under it too, and a later run over an unchanged table reads one
        entry whatever the table's file count (flat in files); after a commit the fold is redone from the cached
        manifest summaries plus the new manifests."""
        fields = primitive_fields(table)
        if field_id not in fields:
            raise KeyError(field_id)
        ftype = fields[field_id]
        wanted = str(ftype)
        key = f"fold:{snap.manifest_list}:{field_id}"

        def usable(summary: ManifestSummary | None) -> bool:
            bounds = summary.fields.get(field_id) if summary is not None else None
            return bounds is not None and bounds.type == wanted

        local = self._get_local(key)
        if usable(local):
            return local  # type: ignore[no-any-return]
        stored = self._load([key]).get(key)
        if stored is not None:
            summary = ManifestSummary.from_json(stored)
            if summary is not None and usable(summary):
                self._put(key, summary, None)
                return summary
        parts = self.summaries(table, snap, field_id)
        lower: tuple[Any, bytes] | None = None
        upper: tuple[Any, bytes] | None = None
        missing_lower = missing_upper = nulls = 0
        for part in parts:
            b = part.fields[field_id]
            missing_lower += b.missing_lower
            missing_upper += b.missing_upper
            nulls += b.nulls
            if b.lower is not None:
                value = from_bytes(ftype, b.lower)
                lower = (value, b.lower) if lower is None or value < lower[0] else lower
            if b.upper is not None:
                value = from_bytes(ftype, b.upper)
                upper = (value, b.upper) if upper is None or value > upper[0] else upper
        folded = ManifestSummary(
            sum(p.files for p in parts),
            sum(p.rows for p in parts),
            {
                field_id: FieldBounds(
                    wanted,
                    lower[1] if lower else None,
                    upper[1] if upper else None,
                    missing_lower,
                    missing_upper,
                    nulls,
                )
            },
        )
        self._put(key, folded, folded.to_json())
        return folded


_PROCESS_CACHE = ManifestBoundsCache()


def process_manifest_cache() -> ManifestBoundsCache:
    """The manifest bounds cache of this process (what `time_column_extreme` uses unless given one); the
    pipeline attaches its store to it as the cross-run tier."""
    return _PROCESS_CACHE


@dataclass(frozen=True)
class ColumnExtreme:
    """The newest or oldest value of a date / timestamp column in the current snapshot, and how it was found."""

    value: datetime | None  # None: no snapshot, or no rows
    method: str  # "column_bounds" | "column_scan"
    files_considered: int = 0
    files_scanned: int = 0  # data files read because their manifest entry had no bound for the column
    snapshot_id: int | None = None  # None: the table has no snapshot


def time_column_extreme(
    table: Table,
    column: str,
    *,
    newest: bool,
    sla: str,
    named: str = "column",
    logger: logging.Logger = log,
    cache: ManifestBoundsCache | None = None,
) -> ColumnExtreme:
    """max(column) (`newest`) or min(column) over the live data files, from the manifests' upper (lower) bounds:
    no data file opened.

    Data files without that bound (metrics mode `none`, old writers) are read with a scan of that one column,
    filtered to rows at or above (at or below) the best bound already known, so files whose bounds prove them
    older (newer) are pruned; the reading says so (`method: column_scan`, `files_scanned`).
    `sla` ("freshness", "retention") and `named` word the errors and the log line; `logger` is the caller's.
    `cache`: where manifest bounds are cached (default: this process's, `process_manifest_cache`).
    """
    try:
        field = table.schema().find_field(column)
    except ValueError:
        raise ColumnNotFoundError(f"{named} {column!r} named by the {sla} SLA is not in table {table.name()}") from None
    ftype = field.field_type
    if not (isinstance(ftype, DateType | TimestampType | TimestamptzType) or str(ftype) in _NANO_TYPES):
        raise ColumnNotFoundError(f"{sla} column {column!r} has type {ftype}, not a timestamp or date")
    snap = table.current_snapshot()
    if snap is None:
        return ColumnExtreme(None, "column_bounds")
    best: Any = None
    # The snapshot's data manifests' bounds folded (each manifest's summary cached by its path, the fold by the
    # snapshot's manifest list): the same extreme and counts as folding the live entries one by one, without
    # parsing a manifest read before, and one cached entry for a snapshot seen before.
    summary = (cache or _PROCESS_CACHE).snapshot_bounds(table, snap, field.field_id)
    bounds = summary.fields[field.field_id]
    considered = summary.files
    missing = bounds.missing_upper if newest else bounds.missing_lower
    raw = bounds.upper if newest else bounds.lower
    if raw is not None:
        best = from_bytes(ftype, raw)  # type: ignore[arg-type]
    bound = None if best is None else _to_datetime(ftype, best)
    if not missing:
        return ColumnExtreme(bound, "column_bounds", considered, snapshot_id=snap.snapshot_id)
    # pyiceberg's predicate classes confuse type checkers (their stubs differ by version): call untyped.
    beyond: Any = GreaterThanOrEqual if newest else LessThanOrEqual
    row_filter: BooleanExpression = AlwaysTrue() if best is None else beyond(column, best)
    arrow = table.scan(row_filter=row_filter, selected_fields=(column,), snapshot_id=snap.snapshot_id).to_arrow()
    import pyarrow.compute as pc

    col = arrow.column(column)
    scanned = _arrow_to_datetime((pc.max(col) if newest else pc.min(col)).as_py()) if len(col) else None
    logger.info(
        f"{sla} of %s: %d of %d data files had no {'upper' if newest else 'lower'} bound for %s; scanned them",
        table.name(),
        missing,
        considered,
        column,
    )
    candidates = [x for x in (scanned, bound) if x is not None]
    pick = max if newest else min
    return ColumnExtreme(
        pick(candidates) if candidates else None, "column_scan", considered, missing, snapshot_id=snap.snapshot_id
    )


def last_update(table: Table, column: str | None, cache: ManifestBoundsCache | None = None) -> FreshnessReading:
    """Last update from the snapshot log, or max(column) from manifest upper bounds (no data scan; data files
    without an upper bound for the column are scanned for it: `time_column_extreme`).
    """
    committed, snapshot_id = data_commit_time(table)
    state = table_state(table, committed)
    if column is None:
        return FreshnessReading(committed, "snapshot", snapshot_id=snapshot_id, **state)
    newest = time_column_extreme(table, column, newest=True, sla="freshness", named="timestamp column", cache=cache)
    return FreshnessReading(
        newest.value,
        newest.method,
        column=column,
        files_considered=newest.files_considered,
        files_scanned=newest.files_scanned,
        snapshot_id=newest.snapshot_id,
        **state,
    )


def table_state(table: Table, committed: datetime | None) -> dict[str, Any]:
    """`FreshnessReading`'s table-state fields: the current snapshot id and its summary's `total-records` (snapshot
    metadata only: no manifest or data file read), and the commit time of the newest data-changing snapshot."""
    current = table.current_snapshot()
    if current is None:
        return {"committed_at": committed}
    total = current.summary["total-records"] if current.summary is not None else None
    try:
        records = int(total) if total is not None else None
    except ValueError:  # a writer that put something else there: the row count is unknown, the check goes on
        records = None
    return {"current_snapshot_id": current.snapshot_id, "total_records": records, "committed_at": committed}
