"""The quality engine interface: what an engine reads (`QualityDataSource`) and returns (`RuleResult`).

An engine evaluates a contract's quality rules against one table and returns one `RuleResult` per
rule; grading (weighted score, findings, status) is done by `checks.quality`, independent of the
engine. Engines are found through the `floe.quality_engines` entry-point group (`quality.registry`).

Results never carry column values: only counts, rates and the contract's own thresholds (FR-025).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from floe_monitoring_defs.contracts.model import MonitoredTable, QualityRule
from floe_monitoring_defs.models import ViolationSeverity
from floe_monitoring_defs.sources.base import FileMetrics, SourceError, TableSchemaInfo

if TYPE_CHECKING:
    import pyarrow as pa

# Severity of a rule (ODCS `severity` is free text) -> the monitor's four levels; default ERROR.
_SEVERITY_ALIASES: dict[str, ViolationSeverity] = {
    "info": ViolationSeverity.INFO,
    "information": ViolationSeverity.INFO,
    "low": ViolationSeverity.INFO,
    "warning": ViolationSeverity.WARNING,
    "warn": ViolationSeverity.WARNING,
    "medium": ViolationSeverity.WARNING,
    "error": ViolationSeverity.ERROR,
    "high": ViolationSeverity.ERROR,
    "critical": ViolationSeverity.CRITICAL,
    "fatal": ViolationSeverity.CRITICAL,
    "blocker": ViolationSeverity.CRITICAL,
}

# Default rule weights by severity (floe-core scoring: critical 3.0, warning 1.0, info 0.5; error 2.0).
SEVERITY_WEIGHTS: dict[ViolationSeverity, float] = {
    ViolationSeverity.CRITICAL: 3.0,
    ViolationSeverity.ERROR: 2.0,
    ViolationSeverity.WARNING: 1.0,
    ViolationSeverity.INFO: 0.5,
}


def rule_severity(rule: QualityRule) -> ViolationSeverity:
    """The rule's severity: info | warning | error | critical (plus common aliases); default ERROR."""
    return _SEVERITY_ALIASES.get(str(rule.severity or "").strip().lower(), ViolationSeverity.ERROR)


def rule_weight(rule: QualityRule) -> float:
    """The rule's weight in the score: its explicit weight, else the weight of its severity."""
    if rule.weight is not None and rule.weight > 0:
        return float(rule.weight)
    return SEVERITY_WEIGHTS[rule_severity(rule)]


class QualityEngineUnavailable(RuntimeError):
    """The engine is not installed or cannot start: the quality check is SKIPPED, never failed."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"quality engine {name!r} is unavailable: {reason}")


class QualityReadError(SourceError):
    """The table's data could not be read: the quality check is ERROR (not a violation)."""


@dataclass(frozen=True)
class RuleResult:
    """The evaluation of one quality rule.

    `passed` is True / False when the rule was evaluated, None when it errored (`error` says why) or
    was not executable (`note` says why: `type: text`, `custom`). `value` is the measured number
    (a count, or a percentage 0..100 for `unit: percent`); `expected` / `actual` are display strings
    such as "< 5 %" / "12.0 %". `rows_checked` is the number of rows the measurement covered.
    `method` says how: `metadata` (manifest null counts / bounds, no data file opened) or `scan` (rows
    read); None for a rule that did not run.
    """

    name: str
    passed: bool | None
    metric: str  # nullValues, missingValues, invalidValues, duplicateValues, rowCount, sql, null_check, ...
    expected: str
    actual: str
    weight: float
    severity: ViolationSeverity
    element: str | None = None
    rows_checked: int | None = None
    error: str | None = None
    note: str | None = None
    value: float | None = None
    unit: str = "rows"
    rule_type: str = "library"
    source_path: str = ""
    method: str | None = None

    @property
    def status(self) -> str:
        """pass | fail | error | skipped."""
        if self.passed is True:
            return "pass"
        if self.passed is False:
            return "fail"
        return "error" if self.error else "skipped"

    @property
    def evaluated(self) -> bool:
        return self.passed is not None


@runtime_checkable
class QualityDataSource(Protocol):
    """Read access to one table, as an engine needs it: its schema and projected scans.

    Implementations pin one snapshot, so every scan of one check sees the same data, and record the
    columns they were asked for (`columns_read`), so the projection can be verified and reported.
    """

    @property
    def name(self) -> str:
        """The table's own name (the last part of its identifier)."""
        ...

    @property
    def columns_read(self) -> tuple[str, ...]:
        """Every column a scan of this source has read so far, in schema order."""
        ...

    @property
    def snapshot_id(self) -> int | None: ...

    def schema(self) -> pa.Schema:
        """The top-level columns with their Arrow types."""
        ...

    def scan(self, columns: Sequence[str]) -> pa.RecordBatchReader:
        """A stream of the rows with only `columns` (a non-empty subset of the schema)."""
        ...

    def row_count(self) -> int:
        """The number of rows (from metadata when possible)."""
        ...


@runtime_checkable
class MetadataReader(Protocol):
    """What a source offers beyond `QualityDataSource` when the table format keeps per-file metrics (Iceberg):
    the nested schema with field ids, each live data file's manifest metrics, and scans limited to some files.
    Column constraints are proven from these without reading data where the metrics allow it.
    """

    def schema_info(self) -> TableSchemaInfo:
        """The table's fields (nested ones included) with their Iceberg field ids and types."""
        ...

    def file_metrics(self, field_ids: Collection[int], bounds: Collection[int] = ()) -> Sequence[FileMetrics]:
        """Per live data file: null / NaN counts of `field_ids`, decoded bounds of `bounds` (manifests only)."""
        ...

    def restricted(self, files: Collection[str]) -> QualityDataSource:
        """The same table and snapshot, its scans reading only the data files named (paths)."""
        ...


@dataclass(frozen=True)
class ParquetFiles:
    """Plain Parquet files an engine may read itself instead of a source's Arrow stream (`DirectParquetReader`).

    Only handed out when reading `paths` by column name gives exactly the rows and values of `scan`: no delete
    files, local paths, every file holding each column under its current name, field id and type.
    """

    paths: tuple[str, ...]
    rows: int  # the sum of the files' record counts (no deletes apply, so the table's row count)


@runtime_checkable
class DirectParquetReader(Protocol):
    """What a source offers when its data may be read as plain Parquet files (Iceberg without delete files).

    `direct_parquet` returns the files, or a short reason why the columns must be read with `scan` (which
    records it). The engine records how it read the files (`record_read`); both are the check's evidence.
    """

    def direct_parquet(self, columns: Sequence[str]) -> ParquetFiles | str: ...

    def record_read(self, how: str) -> None: ...

    @property
    def reads(self) -> tuple[str, ...]:
        """How the data was read, e.g. `parquet-direct (10 files)`, `arrow-scan (delete files present)`."""
        ...


class QualityEngine(Protocol):
    """Evaluates quality rules on one table. Must not raise for a bad rule: that rule gets `error`.

    Raises `QualityEngineUnavailable` when the engine cannot run at all, and `QualityReadError`
    when the table's data cannot be read.
    """

    name: str

    def run(
        self, source: QualityDataSource, monitored: MonitoredTable, rules: Sequence[QualityRule]
    ) -> list[RuleResult]: ...
