"""`QualityDataSource` over a pyiceberg table: one pinned snapshot, projected streaming scans.

Each scan reads only the columns asked for, file by file, with at most `prefetch` data files read
ahead (in parallel) of the consumer, so memory stays bounded by a few files' projected columns
rather than the table. The columns read are recorded (`columns_read`) for the check's details.
"""

from __future__ import annotations

import copy
import logging
import re
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow
from pyiceberg.table import FileScanTask, Table

from floe_monitoring_defs.quality.engine import QualityReadError
from floe_monitoring_defs.sources.base import FileMetrics, TableSchemaInfo
from floe_monitoring_defs.sources.iceberg import file_metrics, primitive_fields, schema_info

log = logging.getLogger(__name__)

_USERINFO = re.compile(r"//[^/@]*@")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return _USERINFO.sub("//***@", text)[:300]


class IcebergQualitySource:
    """Read access to one Iceberg table at the snapshot current when this object is created.

    Besides scans it is a `MetadataReader`: the manifest metrics of the planned data files (null counts,
    bounds) come from the same scan planning the scans use, so metadata and data agree on one snapshot.
    """

    def __init__(self, table: Table, *, prefetch: int = 2) -> None:
        self._table = table
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
