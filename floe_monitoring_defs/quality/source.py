"""`QualityDataSource` over a pyiceberg table: one pinned snapshot, projected streaming scans.

Each scan reads only the columns asked for, file by file, with at most `prefetch` data files read
ahead (in parallel) of the consumer, so memory stays bounded by a few files' projected columns
rather than the table. The columns read are recorded (`columns_read`) for the check's details.

Direct Parquet reads (`direct_parquet`): when the planned files can be read as plain Parquet files with the
same result as the Arrow scan, the engine may read them itself (DuckDB's `read_parquet`, about twice as fast
as consuming pyiceberg's stream). That needs proof, file by file, and any doubt means the Arrow scan:

* no delete files on any task (the Parquet reader would return deleted rows), no residual row filter;
* every data file Parquet, on a local path (`file://` or a plain path), read by pyiceberg's own FileIO (a
  custom one may decrypt, authorize or count reads);
* every column read a top-level primitive of a type both readers map alike (no UUID, fixed, time, nested);
* each file's footer holds each column under its Iceberg field id, its *current* name (Iceberg matches by
  id, `read_parquet` by name: a rename, a column added after the file was written, a partition value not
  stored in the file, or files without field ids all fall back) and the current Arrow type (no promotion).

Which way each read went is recorded (`reads`) for the check's evidence.
"""

from __future__ import annotations

import copy
import logging
import re
import urllib.parse
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow
from pyiceberg.manifest import FileFormat
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
)

from floe_monitoring_defs.quality.engine import ParquetFiles, QualityReadError
from floe_monitoring_defs.sources.base import FileMetrics, TableSchemaInfo
from floe_monitoring_defs.sources.iceberg import file_metrics, primitive_fields, schema_info

log = logging.getLogger(__name__)

_USERINFO = re.compile(r"//[^/@]*@")


# Types whose Parquet encoding as pyiceberg writes it DuckDB reads to the same SQL type as the Arrow stream.
_DIRECT_TYPES = (
    BooleanType,
    IntegerType,
    LongType,
    FloatType,
    DoubleType,
    DecimalType,
    DateType,
    TimestampType,
    TimestamptzType,
    StringType,
)
_FIELD_ID = b"PARQUET:field_id"
# pyiceberg's own FileIOs (exact types): files they read from a local path are the bytes DuckDB reads there.
_PLAIN_IO = frozenset({("pyiceberg.io.pyarrow", "PyArrowFileIO"), ("pyiceberg.io.fsspec", "FsspecFileIO")})


def local_path(location: str) -> str | None:
    """The local file system path of a data file's location, or None when it is elsewhere (s3://, gs://, ...)."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return urllib.parse.unquote(parsed.path)
    if parsed.scheme == "" and location.startswith("/"):
        return location
    return None


def plan_blocker(tasks: Sequence[FileScanTask], fields: Sequence[NestedField]) -> str | None:
    """Why the planned `tasks` cannot be read as plain Parquet files for `fields` (None: the plan allows it).

    Only what the plan and the schema tell; the files' own schemas are checked by `footer_blocker`.
    """
    if not tasks:
        return "no data files"
    if any(t.delete_files for t in tasks):
        return "delete files present"
    if any(t.residual != AlwaysTrue() for t in tasks):
        return "row filter"
    if any(t.file.file_format != FileFormat.PARQUET for t in tasks):
        return "data files not all Parquet"
    if any(local_path(t.file.file_path) is None for t in tasks):
        return "data files not on a local path"
    for f in fields:
        if not isinstance(f.field_type, _DIRECT_TYPES):
            return f"column type {f.field_type} read through Arrow"
    return None


def _normal(t: pa.DataType) -> pa.DataType:
    """Arrow types equal for this purpose: DuckDB reads string / large_string (binary alike) as one type."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    return t


def footer_blocker(file_schema: pa.Schema, fields: Sequence[NestedField], target: pa.Schema) -> str | None:
    """Why one Parquet file (its Arrow schema, as pyarrow reads the footer) does not hold `fields` as they are
    now: same field id, same name, same type, and no other column whose name DuckDB would confuse with it."""
    by_id: dict[int, pa.Field] = {}
    for f in file_schema:
        raw = (f.metadata or {}).get(_FIELD_ID)
        if raw is not None:
            by_id[int(raw)] = f
    lower = [f.name.lower() for f in file_schema]
    for field in fields:
        got = by_id.get(field.field_id)
        if got is None:
            return f"a data file lacks column {field.name!r} (added later, or no field ids)"
        if got.name != field.name:
            return f"column {field.name!r} has another name in a data file (renamed)"
        if lower.count(field.name.lower()) != 1:
            return f"a data file has several columns named like {field.name!r}"
        if _normal(got.type) != _normal(target.field(field.name).type):
            return f"column {field.name!r} has another type in a data file"
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return _USERINFO.sub("//***@", text)[:300]


class IcebergQualitySource:
    """Read access to one Iceberg table at the snapshot current when this object is created.

    Besides scans it is a `MetadataReader`: the manifest metrics of the planned data files (null counts,
    bounds) come from the same scan planning the scans use, so metadata and data agree on one snapshot.
    """

    def __init__(self, table: Table, *, prefetch: int = 2, direct_read: bool = True) -> None:
        self._table = table
        self._direct_read = direct_read  # False: always the Arrow scan (benchmarks and equality tests)
        self._footers: dict[str, pa.Schema] = {}  # local path -> the file's Arrow schema, read once
        self._reads: dict[str, None] = {}  # how the data was read, in order (shared with restricted views)
        self._prefetch = max(1, prefetch)
        snapshot = table.current_snapshot()
        self._snapshot_id = snapshot.snapshot_id if snapshot is not None else None
        self._read: set[str] = set()
        self._tasks: list[FileScanTask] | None = None
        self._full_scan = table.scan(snapshot_id=self._snapshot_id)
        self._schema = schema_to_pyarrow(self._full_scan.projection())
        self._only: frozenset[str] | None = None  # a restricted view: scans read only these data files

    def restricted(self, files: Collection[str]) -> IcebergQualitySource:
        """A view of the same snapshot whose scans (and row count) cover only the data files named."""
        view = copy.copy(self)
        view._only = frozenset(files)
        view._tasks = [t for t in self._plan() if t.file.file_path in view._only]
        return view  # shares `_read`: the columns a view reads are reported by the check

    def schema_info(self) -> TableSchemaInfo:
        return schema_info(self._table)

    def file_metrics(self, field_ids: Collection[int], bounds: Collection[int] = ()) -> list[FileMetrics]:
        fields = {k: v for k, v in primitive_fields(self._table).items() if k in set(field_ids) | set(bounds)}
        return file_metrics(self._plan(), fields, bounds=bounds)

    @property
    def name(self) -> str:
        return str(self._table.name()[-1])

    @property
    def identifier(self) -> str:
        return ".".join(self._table.name())

    @property
    def snapshot_id(self) -> int | None:
        return self._snapshot_id

    @property
    def columns_read(self) -> tuple[str, ...]:
        return tuple(n for n in self._schema.names if n in self._read)

    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(self._reads)

    def record_read(self, how: str) -> None:
        self._reads[how] = None

    def direct_parquet(self, columns: Sequence[str]) -> ParquetFiles | str:
        """The planned data files, when DuckDB may read `columns` from them directly; else why not.

        The engine records what it then did (`record_read`); a `scan` records why the files were not enough.
        """
        plan = self._direct_blocker(tuple(dict.fromkeys(columns)))
        if not isinstance(plan, str):
            self._read.update(columns)
        return plan

    def _direct_blocker(self, cols: tuple[str, ...]) -> ParquetFiles | str:
        if not self._direct_read:
            return "direct read disabled"
        if self._snapshot_id is None:
            return "no snapshot"
        io = type(self._table.io)
        if (io.__module__, io.__name__) not in _PLAIN_IO:
            return f"custom FileIO {io.__name__}"  # it may decrypt, authorize or count reads: let it read
        schema: Schema = self._full_scan.projection()
        top = {f.name: f for f in schema.fields}
        if not cols or any(c not in top for c in cols):
            return "column not in the schema"
        fields = [top[c] for c in cols]
        tasks = self._plan()
        blocker = plan_blocker(tasks, fields)
        if blocker is not None:
            return blocker
        paths = tuple(str(local_path(t.file.file_path)) for t in tasks)
        for path in paths:
            try:
                if path not in self._footers:
                    self._footers[path] = pq.read_schema(path)
            except Exception as exc:  # unreadable here: let the Arrow scan read it (or report why it cannot)
                return f"footer unreadable: {type(exc).__name__}"
            blocker = footer_blocker(self._footers[path], fields, self._schema)
            if blocker is not None:
                return blocker
        return ParquetFiles(paths, sum(int(t.file.record_count) for t in tasks))

    def row_count(self) -> int:
        if self._snapshot_id is None:
            return 0
        if self._only is not None:
            tasks = self._plan()
            if not any(t.delete_files for t in tasks):
                return sum(int(t.file.record_count) for t in tasks)
            # deletes apply: count the rows that survive them (reading the first column only)
            return sum(batch.num_rows for batch in self.scan([self._schema.names[0]]))
        try:
            return int(self._full_scan.count())
        except Exception as exc:
            raise QualityReadError(
                f"cannot count the rows of {self.identifier}: {type(exc).__name__}: {_short(exc)}"
            ) from exc

    def _plan(self) -> list[FileScanTask]:
        if self._tasks is None:
            try:
                self._tasks = list(self._full_scan.plan_files()) if self._snapshot_id is not None else []
            except Exception as exc:
                raise QualityReadError(
                    f"cannot plan the scan of {self.identifier}: {type(exc).__name__}: {_short(exc)}"
                ) from exc
        return self._tasks

    def scan(self, columns: Sequence[str]) -> pa.RecordBatchReader:
        cols = tuple(dict.fromkeys(columns))
        unknown = [c for c in cols if c not in self._schema.names]
        if unknown:
            raise KeyError(f"columns {unknown} are not in table {self.identifier}")
        if not cols:
            raise ValueError("a scan needs at least one column")
        tasks = self._plan()
        why = self._direct_blocker(cols)
        if isinstance(why, str):  # otherwise the engine chose the stream, and records why (`record_read`)
            self._reads[f"arrow-scan ({why})"] = None
        scan = self._table.scan(selected_fields=cols, snapshot_id=self._snapshot_id)
        projected = scan.projection()
        target = schema_to_pyarrow(projected)
        self._read.update(cols)
        arrow_scan = ArrowScan(self._table.metadata, self._table.io, projected, scan.row_filter, scan.case_sensitive)
        batches = self._batches(arrow_scan, tasks)
        return pa.RecordBatchReader.from_batches(target, batches).cast(target)

    def _batches(self, arrow_scan: ArrowScan, tasks: list[FileScanTask]) -> Iterator[pa.RecordBatch]:
        """Batches of every task in order, reading up to `prefetch` files ahead in worker threads."""

        def read(task: FileScanTask) -> list[pa.RecordBatch]:
            return list(arrow_scan.to_record_batches([task]))

        todo = iter(tasks)
        pending: deque[Future[list[pa.RecordBatch]]] = deque()
        with ThreadPoolExecutor(max_workers=self._prefetch, thread_name_prefix="floe-quality-scan") as pool:
            try:
                for task in todo:
                    pending.append(pool.submit(read, task))
                    if len(pending) >= self._prefetch:
                        break
                while pending:
                    try:
                        batches = pending.popleft().result()
                    except Exception as exc:
                        raise QualityReadError(
                            f"cannot read the data of {self.identifier}: {type(exc).__name__}: {_short(exc)}"
                        ) from exc
                    nxt: Any = next(todo, None)
                    if nxt is not None:
                        pending.append(pool.submit(read, nxt))
                    yield from batches
            finally:
                for fut in pending:
                    fut.cancel()
