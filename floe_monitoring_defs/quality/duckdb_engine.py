"""The built-in quality engine: DuckDB (in-process) over projected Iceberg scans.

* Library and floe-dialect rules and column constraints: ONE aggregate pass, `SELECT count(*), <one
  count per rule> FROM object`, over a stream of only the columns those rules touch; rules that count the
  same thing share one expression. Each expression is first probed on a one-row all-NULL table, so a rule
  with a bad regex or literal errors alone instead of the pass.
* `type: sql` rules: the columns their query names are read once (materialized, since a query may
  scan the table more than once) and each query runs alone; it must be a single SELECT returning one
  row with one number (or boolean).
* Where the source proves its data files are plain Parquet files that give the same rows as its scan
  (`DirectParquetReader`: Iceberg without delete files, local files holding every column under its current
  name, id and type), DuckDB reads those files itself (`read_parquet`, only the needed columns), instead
  of consuming the source's Arrow stream: about twice as fast, with less memory. A direct read that fails
  is retried on the stream. Which way was taken is in the source's `reads` (the check's evidence).
* Every connection is fresh, in memory, with `enable_external_access = false` (no files, no network,
  no extensions; a direct read allows exactly the planned files through `allowed_paths`), no Python
  replacement scans, and its configuration locked: a rule can read only the registered table
  (`object`, also under the table's own name).

A rule that cannot run gets `passed=None` and an `error` naming the rule and its source path. Error
texts from DuckDB are reduced to their first line with quoted fragments masked (they may quote data);
for rules on a classified column only the error class is kept (FR-025).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from floe_monitoring_defs.contracts.model import MonitoredTable, QualityRule
from floe_monitoring_defs.quality.compile import OBJECT, CompiledRule, compile_rule
from floe_monitoring_defs.quality.constraints import CONSTRAINT_TYPE
from floe_monitoring_defs.quality.engine import (
    DirectParquetReader,
    ParquetFiles,
    QualityDataSource,
    QualityEngineUnavailable,
    QualityReadError,
    RuleResult,
    rule_severity,
    rule_weight,
)
from floe_monitoring_defs.quality.operators import (
    RuleError,
    describe_expected,
    format_value,
)

log = logging.getLogger(__name__)

# DuckDB error classes raised while parsing / binding a query, before any data is read.
_QUERY_ERRORS = frozenset({"Parser Error", "Binder Error", "Catalog Error", "Permission Error"})
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


class _ReadGuard:
    """Wraps a reader so that a failure while reading the table is told apart from a rule's failure."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def wrap(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except BaseException as exc:
                self.error = exc
                raise

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def raise_if_failed(self) -> None:
        if self.error is not None:
            if isinstance(self.error, QualityReadError):
                raise self.error
            raise QualityReadError(
                f"cannot read the table: {type(self.error).__name__}: "
                f"{str(self.error).splitlines()[0][:300] if str(self.error) else ''}"
            )


class _DirectConnection:
    """One file-reading connection for a run's direct reads (the aggregate pass and the SQL rules read the
    same planned files), opened on first use: connecting costs about as much as a small table's scan."""

    def __init__(self, engine: DuckDBQualityEngine) -> None:
        self._engine = engine
        self._con: duckdb.DuckDBPyConnection | None = None
        self._paths: tuple[str, ...] = ()

    def get(self, files: ParquetFiles) -> duckdb.DuckDBPyConnection:
        if self._con is None or self._paths != files.paths:
            self.close()
            self._con = self._engine._connect_files(files.paths)
            self._paths = files.paths
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class DuckDBQualityEngine:
    """`floe.quality_engines` entry point `duckdb`."""

    name = "duckdb"

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None:
        self._config: dict[str, Any] = {
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
        }
        if threads is not None:
            self._config["threads"] = threads
        if memory_limit is not None:
            self._config["memory_limit"] = memory_limit
        try:
            self._connect().close()
        except Exception as exc:
            raise QualityEngineUnavailable(self.name, f"DuckDB cannot start: {type(exc).__name__}: {exc}") from exc
        self.version = duckdb.__version__

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:", config=dict(self._config))
        con.execute("SET lock_configuration = true")
        return con

    def _connect_files(self, files: Sequence[str]) -> duckdb.DuckDBPyConnection:
        """A connection like `_connect`'s that may read `files` and nothing else."""
        # allowed_paths can only be set once the database runs, and only while external access is on:
        # allow exactly the planned files, then switch access off and lock, before any rule runs.
        con = duckdb.connect(":memory:", config={**self._config, "enable_external_access": True})
        try:
            con.execute("SET allowed_paths = ?", [list(files)])
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con

    def _direct_view(self, con: duckdb.DuckDBPyConnection, files: ParquetFiles, cols: Sequence[str]) -> None:
        """`object` as a view over the Parquet files: only `cols`, matched by name (proven by the source)."""
        paths = ", ".join(_literal(p) for p in files.paths)
        select = ", ".join(_ident(c) for c in cols)
        con.sql(
            f"SELECT {select} FROM read_parquet([{paths}], hive_partitioning = false, union_by_name = false)"
        ).create_view(OBJECT, replace=True)

    def _direct(self, source: QualityDataSource, cols: Sequence[str]) -> ParquetFiles | None:
        if not isinstance(source, DirectParquetReader):
            return None
        plan = source.direct_parquet(cols)
        return plan if isinstance(plan, ParquetFiles) else None

    # -- run ------------------------------------------------------------------------------------------

    def run(
        self, source: QualityDataSource, monitored: MonitoredTable, rules: Sequence[QualityRule]
    ) -> list[RuleResult]:
        started = time.perf_counter()
        schema = source.schema()
        sensitive = {c.physical_name: (c.classification or "") for c in monitored.columns if c.sensitive}
        results: dict[int, RuleResult] = {}
        aggregates: list[tuple[int, CompiledRule]] = []
        row_counts: list[tuple[int, CompiledRule]] = []
        sqls: list[tuple[int, CompiledRule]] = []
        for i, rule in enumerate(rules):
            try:
                compiled = compile_rule(rule, schema)
            except RuleError as exc:
                results[i] = _error(rule, str(exc))
                continue
            if compiled.kind == "skip":
                results[i] = _result(compiled, None, None, note=compiled.note)
            elif compiled.kind == "aggregate":
                aggregates.append((i, compiled))
            elif compiled.kind == "row_count":
                row_counts.append((i, compiled))
            else:
                sqls.append((i, compiled))

        runnable = []
        problems = self._probe(aggregates, schema)
        for i, c in aggregates:
            if i in problems:
                results[i] = _error(c.rule, problems[i])
            else:
                runnable.append((i, c))

        shared = _DirectConnection(self)
        try:
            return self._evaluate(source, monitored, rules, results, runnable, row_counts, sqls, sensitive, shared)
        finally:
            shared.close()
            log.debug(
                "quality engine duckdb: %d rules on %s in %.3fs (columns read: %s)",
                len(rules),
                source.name,
                time.perf_counter() - started,
                ", ".join(source.columns_read),
            )

    def _evaluate(
        self,
        source: QualityDataSource,
        monitored: MonitoredTable,
        rules: Sequence[QualityRule],
        results: dict[int, RuleResult],
        runnable: list[tuple[int, CompiledRule]],
        row_counts: list[tuple[int, CompiledRule]],
        sqls: list[tuple[int, CompiledRule]],
        sensitive: dict[str, str],
        shared: _DirectConnection,
    ) -> list[RuleResult]:
        rows: int | None = None
        if runnable:
            rows, counts = self._aggregate_pass(source, runnable, sensitive, shared)
            for i, c in runnable:
                got = counts[i]
                if isinstance(got, str):
                    results[i] = _error(c.rule, got)
                else:
                    value = float(got) if c.unit == "rows" else (100.0 * got / rows if rows else 0.0)
                    results[i] = _result(c, value, rows)
        if row_counts:
            method = "scan"
            if rows is None:
                rows, method = source.row_count(), "metadata"  # record counts of the manifests
            for i, c in row_counts:
                results[i] = _result(c, float(rows), rows, method=method)
        if sqls:
            for i, result in self._sql_rules(source, monitored, sqls, sensitive, shared).items():
                results[i] = result
        return [results[i] for i in range(len(rules))]

    def _probe(self, aggregates: list[tuple[int, CompiledRule]], schema: pa.Schema) -> dict[int, str]:
        """Run each rule's expression on one all-NULL row: catches bad regexes, literals and types.

        One connection for every probe (a failed statement leaves it usable). The probe holds no data, so
        its errors can be shown in full (they quote the contract only).
        """
        if not aggregates:
            return {}
        names = {n for _, c in aggregates for n in c.columns}
        probe = pa.table({f.name: pa.nulls(1, f.type) for f in schema if f.name in names})
        problems: dict[int, str] = {}
        con = self._connect()
        try:
            con.register(OBJECT, probe)
            for i, c in aggregates:
                try:
                    con.execute(f"SELECT {c.expression} FROM {OBJECT}").fetchall()
                except duckdb.Error as exc:
                    problems[i] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        finally:
            con.close()
        return problems

    def _aggregate_pass(
        self,
        source: QualityDataSource,
        runnable: list[tuple[int, CompiledRule]],
        sensitive: dict[str, str],
        shared: _DirectConnection | None = None,
    ) -> tuple[int, dict[int, int | str]]:
        """All aggregate rules in one scan; if that fails, each rule alone (to isolate the bad one)."""
        names = source.schema().names
        wanted = {col for _, c in runnable for col in c.columns}
        cols = [n for n in names if n in wanted]
        # Rules that count the same thing (a `duplicateValues` rule and the column's `unique` constraint, a
        # `nullValues` rule and `required`) share one expression, computed once.
        distinct = list(dict.fromkeys(c.expression or "0" for _, c in runnable))
        try:
            row = self._select(source, cols, distinct, shared)
        except duckdb.Error as exc:
            log.warning(
                "quality: the combined pass over %s failed (%s); evaluating rules one by one",
                source.name,
                type(exc).__name__,
            )
        else:
            value_of = dict(zip(distinct, row[1:], strict=True))
            return int(row[0]), {i: int(value_of[c.expression or "0"]) for i, c in runnable}
        rows: int | None = None
        counts: dict[int, int | str] = {}
        for i, c in runnable:
            try:
                one = self._select(source, list(c.columns), [c.expression or "0"], shared)
            except duckdb.Error as exc:
                counts[i] = _engine_error(exc, c.columns, sensitive)
                continue
            rows = int(one[0])
            counts[i] = int(one[1])
        return (rows if rows is not None else source.row_count()), counts

    def _select(
        self,
        source: QualityDataSource,
        cols: list[str],
        expressions: list[str],
        shared: _DirectConnection | None = None,
    ) -> tuple[Any, ...]:
        select = ", ".join(["count(*)", *(f"{e} AS r{k}" for k, e in enumerate(expressions))])
        files = self._direct(source, cols)
        if files is not None:
            own = shared or _DirectConnection(self)
            try:
                con = own.get(files)
                try:
                    self._direct_view(con, files, cols)
                    # fetchall: a result left unfinished blocks the connection's next statement (shared)
                    [direct] = con.execute(f"SELECT {select} FROM {OBJECT}").fetchall()
                finally:
                    if shared is None:
                        own.close()
                _record(source, f"parquet-direct ({len(files.paths)} files)")
                return tuple(direct)
            except duckdb.Error as exc:
                # A rule's error or a file DuckDB cannot read: the stream tells which (and errors alike).
                failed = f"{type(exc).__name__}"
            row = self._stream_select(source, cols, select)  # raises if a rule is at fault
            _record(source, f"arrow-scan (direct read failed: {failed})")
            log.warning("quality: direct Parquet read of %s failed (%s); read the stream", source.name, failed)
            return row
        return self._stream_select(source, cols, select)

    def _stream_select(self, source: QualityDataSource, cols: list[str], select: str) -> tuple[Any, ...]:
        guard = _ReadGuard()
        try:
            reader = guard.wrap(source.scan(cols))
        except QualityReadError:
            raise
        except Exception as exc:
            raise QualityReadError(f"cannot read {source.name}: {type(exc).__name__}: {exc}") from exc
        con = self._connect()
        try:
            con.register(OBJECT, reader)
            row = con.execute(f"SELECT {select} FROM {OBJECT}").fetchone()
        except Exception:
            guard.raise_if_failed()  # the table could not be read: not the rules' fault
            raise
        finally:
            con.close()
        guard.raise_if_failed()
        assert row is not None  # an aggregate without GROUP BY always returns one row
        return tuple(row)

    def _sql_rules(
        self,
        source: QualityDataSource,
        monitored: MonitoredTable,
        sqls: list[tuple[int, CompiledRule]],
        sensitive: dict[str, str],
        shared: _DirectConnection,
    ) -> dict[int, RuleResult]:
        schema = source.schema()
        wanted = {col for _, c in sqls for col in c.columns}
        cols = [n for n in schema.names if n in wanted] or [_narrowest(schema)]
        files = self._direct(source, cols)
        if files is not None:
            try:
                direct = self._sql_direct(source, monitored, sqls, sensitive, shared.get(files), files, cols)
            except duckdb.Error as exc:  # the view could not be made (a file unreadable): read the stream
                _record(source, f"arrow-scan (direct read failed: {type(exc).__name__})")
            else:
                _record(source, f"parquet-direct ({len(files.paths)} files)")
                return direct
        guard = _ReadGuard()
        try:
            data = guard.wrap(source.scan(cols)).read_all()
        except QualityReadError:
            raise
        except Exception as exc:
            guard.raise_if_failed()
            raise QualityReadError(f"cannot read {source.name}: {type(exc).__name__}: {exc}") from exc
        out: dict[int, RuleResult] = {}
        con = self._connect()
        try:
            con.register(OBJECT, data)
            for alias in dict.fromkeys((source.name, monitored.ref.name, monitored.schema_name)):
                if alias and alias.lower() != OBJECT:
                    con.register(alias, data)
            for i, c in sqls:
                out[i] = self._one_sql(con, c, data.num_rows, sensitive)
        finally:
            con.close()
        return out

    def _sql_direct(
        self,
        source: QualityDataSource,
        monitored: MonitoredTable,
        sqls: list[tuple[int, CompiledRule]],
        sensitive: dict[str, str],
        con: duckdb.DuckDBPyConnection,
        files: ParquetFiles,
        cols: list[str],
    ) -> dict[int, RuleResult]:
        """The SQL rules over views of the Parquet files (a query scanning twice reads the files twice,
        instead of holding the columns in memory); the row count is the files' (no deletes apply)."""
        self._direct_view(con, files, cols)
        con.execute(f"SELECT count(*) FROM (SELECT * FROM {OBJECT} LIMIT 1)").fetchall()  # files readable
        for alias in dict.fromkeys((source.name, monitored.ref.name, monitored.schema_name)):
            if alias and alias.lower() != OBJECT:
                con.sql(f"SELECT * FROM {OBJECT}").create_view(alias, replace=True)
        return {i: self._one_sql(con, c, files.rows, sensitive) for i, c in sqls}

    def _one_sql(
        self, con: duckdb.DuckDBPyConnection, c: CompiledRule, rows: int, sensitive: dict[str, str]
    ) -> RuleResult:
        assert c.query is not None
        try:
            cur = con.execute(c.query)
            width = len(cur.description or ())
            got = cur.fetchmany(2)
        except duckdb.Error as exc:
            return _error(c.rule, _engine_error(exc, c.columns, sensitive))
        if width != 1 or len(got) != 1:
            return _error(
                c.rule,
                f"the query must return one row with one column; it returned {len(got)}"
                f"{'+' if len(got) > 1 else ''} row(s) with {width} column(s)",
            )
        value = got[0][0]
        if value is None:
            return _error(c.rule, "the query returned NULL; it must return a number")
        if isinstance(value, bool):
            if c.comparison is None:
                passed = value
                return RuleResult(
                    name=c.rule.name,
                    passed=passed,
                    metric="sql",
                    expected="true",
                    actual="true" if value else "false",
                    weight=rule_weight(c.rule),
                    severity=rule_severity(c.rule),
                    element=c.element,
                    rows_checked=rows,
                    value=1.0 if value else 0.0,
                    unit="value",
                    rule_type="sql",
                    source_path=c.rule.source_path,
                    method="scan",
                )
            value = 1 if value else 0
        if not isinstance(value, int | float | Decimal):
            return _error(c.rule, f"the query must return a number; it returned a {type(value).__name__}")
        if c.comparison is None:
            return _error(c.rule, "no operator given (mustBe, mustBeLessThan, ...) to compare the query's result")
        return _result(c, float(value), rows)


def _record(source: QualityDataSource, how: str) -> None:
    if isinstance(source, DirectParquetReader):
        source.record_read(how)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _narrowest(schema: pa.Schema) -> str:
    """The cheapest column to read when only the number of rows matters."""
    best, best_width = schema.names[0], 1 << 30
    for f in schema:
        try:
            width = f.type.bit_width
        except ValueError:
            continue
        if width < best_width:
            best, best_width = f.name, width
    return str(best)


def _prefix(rule: QualityRule) -> str:
    where = f" ({rule.source_path})" if rule.source_path else ""
    return f"quality rule {rule.name}{where}"


def _error(rule: QualityRule, reason: str) -> RuleResult:
    metric = (rule.metric or rule.rule) if (rule.type or "library") in ("library", CONSTRAINT_TYPE) else rule.type
    return RuleResult(
        name=rule.name,
        passed=None,
        metric=str(metric or rule.type),
        expected="",
        actual="",
        weight=rule_weight(rule),
        severity=rule_severity(rule),
        element=rule.element,
        error=f"{_prefix(rule)}: {reason}",
        rule_type=rule.type,
        source_path=rule.source_path,
    )


def _result(
    c: CompiledRule, value: float | None, rows: int | None, note: str | None = None, method: str = "scan"
) -> RuleResult:
    if value is None or c.comparison is None:
        return RuleResult(
            name=c.rule.name,
            passed=None,
            metric=c.metric,
            expected="",
            actual="",
            weight=rule_weight(c.rule),
            severity=rule_severity(c.rule),
            element=c.element,
            rows_checked=rows,
            note=note,
            unit=c.unit,
            rule_type=c.rule.type,
            source_path=c.rule.source_path,
        )
    return RuleResult(
        name=c.rule.name,
        passed=c.comparison.holds(value),
        metric=c.metric,
        expected=describe_expected(c.comparison, c.unit),
        actual=format_value(value, c.unit),
        weight=rule_weight(c.rule),
        severity=rule_severity(c.rule),
        element=c.element,
        rows_checked=rows,
        value=value,
        unit=c.unit,
        rule_type=c.rule.type,
        source_path=c.rule.source_path,
        method=method,
    )


def _engine_error(exc: BaseException, columns: Sequence[str], sensitive: dict[str, str]) -> str:
    """A DuckDB error fit for messages: first line, quoted fragments masked; only the class near PII."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    kind = text.split(":", 1)[0] if ":" in text else type(exc).__name__
    if kind in _QUERY_ERRORS:  # about the query's text, raised before any row is read
        return text[:300]
    touched = [c for c in columns if c in sensitive]
    if touched:
        return f"{kind} (details withheld: column {touched[0]!r} is classified {sensitive[touched[0]] or 'sensitive'})"
    known = set(columns) | {OBJECT}

    def mask(m: re.Match[str]) -> str:
        inner = m.group(0)[1:-1]
        return m.group(0) if inner in known else m.group(0)[0] + "…" + m.group(0)[-1]

    return _QUOTED.sub(mask, text)[:300]
