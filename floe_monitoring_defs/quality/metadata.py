"""Metadata first: column constraints answered from the manifests, the engine only for what they cannot answer.

`run_rules` evaluates a table's rules (explicit ones and the column constraints of `quality.constraints`) in
their order. Before anything is scanned, when the source is a `MetadataReader` (Iceberg):

* `required`: each live data file's `null_value_counts` for the field. A field the Iceberg schema makes
  required cannot hold nulls (writers refuse them). Zero nulls in every file passes without opening a data
  file, whatever the field's nullability. A file whose count is missing, or whose count may include rows that
  are not violations (delete files apply to it; a nested field, whose count includes rows where its parent is
  absent; an array element), is scanned, for that column only; the other files' counts are added as they are.
* `range` (`minimum`, `maximum`, `exclusive*`, integer `format`): each file's lower / upper bounds. A file
  whose bounds lie inside the range is proven (deleted rows can only widen bounds, so this is sound with
  delete files too); floating-point files need a NaN count of 0 as well (NaN is outside every bound). Only
  the unproven files are scanned.

Each result says how it was found: `method: metadata` (no data file opened) or `scan`, and, when only some
files were read, which share in its `note`. Everything else goes to the engine in one call over the table,
plus one call per distinct set of files a pruned scan needs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from floe_monitoring_defs.contracts.model import MonitoredTable, QualityRule
from floe_monitoring_defs.quality.constraints import (
    CONSTRAINT_TYPE,
    bound_holds,
    parse_bound,
    split_path,
    temporal_kind,
    to_iceberg_single_value,
)
from floe_monitoring_defs.quality.engine import (
    MetadataReader,
    QualityDataSource,
    QualityEngine,
    RuleResult,
    rule_severity,
    rule_weight,
)
from floe_monitoring_defs.quality.operators import RuleError, describe_expected, format_value, parse_comparison
from floe_monitoring_defs.sources.base import ColumnInfo, FileMetrics, TableSchemaInfo

log = logging.getLogger(__name__)

_ZERO = parse_comparison({}, {"mustBe": 0})
_NUMERIC_ICEBERG = ("int", "long", "float", "double", "decimal")


@dataclass(frozen=True)
class _Partial:
    """A constraint the manifests answered for some files: `counted` violations there, `files` to scan."""

    counted: int
    files: frozenset[str]
    considered: int
    rows: int
    why: str


def not_checked_result(rule: QualityRule) -> RuleResult:
    """A constraint floe does not check: listed with the reason, neither passing nor failing."""
    return RuleResult(
        name=rule.name,
        passed=None,
        metric=rule.metric or CONSTRAINT_TYPE,
        expected="",
        actual="",
        weight=rule_weight(rule),
        severity=rule_severity(rule),
        element=rule.element,
        note=f"not checked: {rule.arguments.get('not_checked')}",
        rule_type=rule.type,
        source_path=rule.source_path,
    )


def _counted(rule: QualityRule, value: int, rows: int, method: str, note: str | None) -> RuleResult:
    return RuleResult(
        name=rule.name,
        passed=_ZERO.holds(float(value)),
        metric=rule.metric or CONSTRAINT_TYPE,
        expected=describe_expected(_ZERO, "rows"),
        actual=format_value(float(value), "rows"),
        weight=rule_weight(rule),
        severity=rule_severity(rule),
        element=rule.element,
        rows_checked=rows,
        note=note,
        value=float(value),
        unit="rows",
        rule_type=rule.type,
        source_path=rule.source_path,
        method=method,
    )


def _chain(info: TableSchemaInfo, path: str) -> list[ColumnInfo] | None:
    """The fields from the top-level column down to `path` ("tags[].code": tags, element, code)."""
    fields = info.by_name()
    tokens = [path] if path in fields else split_path(path)
    if not tokens or tokens[0] not in fields:
        return None
    chain = [fields[tokens[0]]]
    for tok in tokens[1:]:
        name = "element" if tok == "[]" else tok
        nxt = next((c for c in chain[-1].children if c.name == name), None)
        if nxt is None or (tok == "[]") != (chain[-1].kind == "list") or chain[-1].kind == "map":
            return None
        chain.append(nxt)
    return chain


def _required_plan(rule: QualityRule, chain: list[ColumnInfo], files: Sequence[FileMetrics]) -> RuleResult | _Partial:
    leaf = chain[-1]
    rows = sum(f.rows for f in files)
    if leaf.required:
        note = f"the Iceberg schema makes {leaf.column_path} required: no data file can hold a null"
        return _counted(rule, 0, rows, "metadata", note)
    # A count is the number of violations only for a top-level-like field: present parents, no array around.
    exact = all(c.required for c in chain[:-1]) and not any(c.kind == "list" for c in chain[:-1])
    counted, scan = 0, set()
    for f in files:
        n = f.null_counts.get(leaf.field_id)
        if n is None:
            scan.add(f.path)
        elif n and (f.has_deletes or not exact):
            scan.add(f.path)
        else:
            counted += n
    if not scan:
        return _counted(rule, counted, rows, "metadata", f"null counts of {len(files)} data files (manifests)")
    missing = sum(1 for f in files if leaf.field_id not in f.null_counts)
    why = "had no null count" if missing == len(scan) else "had no null count or a count that needs the rows"
    return _Partial(counted, frozenset(scan), len(files), rows, why)


def _range_plan(
    rule: QualityRule, chain: list[ColumnInfo], files: Sequence[FileMetrics]
) -> RuleResult | _Partial | None:
    leaf = chain[-1]
    itype = leaf.type.lower()
    base = itype.split("(", 1)[0]
    kind = "number" if base in _NUMERIC_ICEBERG else temporal_kind(itype)
    if kind is None:
        return None  # not provable from bounds (strings are truncated): the engine decides, or explains
    args = rule.arguments
    tz = args.get("timezone")
    try:
        limits: dict[bool, Any] = {
            side == "low": to_iceberg_single_value(
                parse_bound(args[side], kind, tz if isinstance(tz, str) else None), itype
            )
            for side in ("low", "high")
            if args.get(side) is not None
        }
    except RuleError:
        return None  # the engine reports the bad bound with the rule
    floating = base in ("float", "double")
    rows = sum(f.rows for f in files)
    scan = set()
    fid = leaf.field_id
    for f in files:
        if f.null_counts.get(fid) == f.rows:
            continue  # only nulls: nothing to be out of range
        if floating and f.nan_counts.get(fid) != 0:
            scan.add(f.path)  # NaN is in no bound: only a recorded count of 0 rules it out
            continue
        for low, limit in limits.items():
            bounds = f.lower if low else f.upper
            exclusive = bool(args.get("low_exclusive" if low else "high_exclusive"))
            if fid not in bounds or not bound_holds(bounds[fid], limit, low, exclusive):
                scan.add(f.path)
                break
    if not scan:
        return _counted(rule, 0, rows, "metadata", f"lower / upper bounds of {len(files)} data files lie in the range")
    return _Partial(0, frozenset(scan), len(files), rows, "had bounds that do not prove the range")


def run_rules(
    engine: QualityEngine, source: QualityDataSource, monitored: MonitoredTable, rules: Sequence[QualityRule]
) -> list[RuleResult]:
    """One result per rule, in order; constraints from the manifests where they can answer (see module doc)."""
    results: dict[int, RuleResult] = {}
    to_engine: list[int] = []
    pruned: dict[frozenset[str], list[tuple[int, _Partial]]] = {}
    metadata: list[tuple[int, list[ColumnInfo]]] = []
    reader = source if isinstance(source, MetadataReader) else None
    info = reader.schema_info() if reader is not None else None
    for i, rule in enumerate(rules):
        if rule.type == CONSTRAINT_TYPE and rule.arguments.get("not_checked"):
            results[i] = not_checked_result(rule)
            continue
        check = rule.arguments.get("check") if rule.type == CONSTRAINT_TYPE else None
        chain = (
            _chain(info, str(rule.arguments.get("path")))
            if info is not None and check in ("required", "range")
            else None
        )
        if chain is None:
            to_engine.append(i)  # the engine evaluates it (or explains why it cannot)
        else:
            metadata.append((i, chain))
    if metadata and reader is not None:
        null_ids = {chain[-1].field_id for _, chain in metadata}
        bound_ids = {chain[-1].field_id for i, chain in metadata if rules[i].arguments.get("check") == "range"}
        files = reader.file_metrics(null_ids, bound_ids)
        everything = frozenset(f.path for f in files)
        for i, chain in metadata:
            rule = rules[i]
            if rule.arguments.get("check") == "required":
                plan: RuleResult | _Partial | None = _required_plan(rule, chain, files)
            else:
                plan = _range_plan(rule, chain, files)
            if plan is None or (isinstance(plan, _Partial) and plan.files == everything and not plan.counted):
                to_engine.append(i)  # nothing to prune: one pass with the other rules
            elif isinstance(plan, RuleResult):
                results[i] = plan
            else:
                pruned.setdefault(plan.files, []).append((i, plan))
    to_engine.sort()
    if to_engine:
        for i, r in zip(to_engine, engine.run(source, monitored, [rules[i] for i in to_engine]), strict=True):
            results[i] = r
    for subset, items in pruned.items():
        assert reader is not None
        view = reader.restricted(subset)
        scanned = engine.run(view, monitored, [rules[i] for i, _ in items])
        for (i, plan), r in zip(items, scanned, strict=True):
            results[i] = _combine(rules[i], plan, r)
    return [results[i] for i in range(len(rules))]


def _combine(rule: QualityRule, plan: _Partial, scanned: RuleResult) -> RuleResult:
    """The manifests' count plus the count of the files scanned for the rest."""
    if scanned.value is None or scanned.passed is None:
        return scanned  # the scan errored: the engine's explanation stands
    note = (
        f"{len(plan.files)} of {plan.considered} data files {plan.why} and were scanned for this column; "
        "the others were answered from the manifests"
    )
    return _counted(rule, plan.counted + int(scanned.value), plan.rows, "scan", note)
