"""Schema drift: the contract's columns against the Iceberg schema (FR-011..013).

One finding per drift. Iceberg field ids tell a rename from a drop + add: the id a contract column
had is taken from the contract (`icebergFieldId` / `floe.iceberg_field_id`) or from the baseline the
monitor records the first time it sees the column. Iceberg's safe promotions (int -> long, float ->
double, widening a decimal's precision at the same scale) are compatible; a decimal's precision and
scale come from the `physicalType` (`DECIMAL(12,2)`) or `logicalTypeOptions` `precision` / `scale`.

Nested properties (`logicalType: object` with `properties`, `array` with `items`) are compared with
the Iceberg struct / list fields level by level, by name and then by field id, and every finding names
the path: `address.city`, `tags[]`, `tags[].code`. An object without `properties` (or an array without
`items`) is compared by its type only.

Severities (DESIGN): removed CRITICAL, type change ERROR, rename ERROR, added WARNING, optional in the
contract but required in the table WARNING, primary key changed ERROR, missing table ERROR. A column the
contract declares `required` whose Iceberg field is optional (Spark and dbt write every field optional)
is not a drift of the data: `required_not_enforced`, INFO by default (`schema_drift.unenforced_required:
info | warning | off`); the quality check verifies the promise from the data. INFO findings alone pass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, EvidenceTable
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import ExpectedColumn, MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    Finding,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.sources.base import ColumnInfo, TableNotFoundError, TableSchemaInfo

log = logging.getLogger(__name__)

S = ViolationSeverity

_PHYSICAL = [
    (re.compile(r"^(VAR)?CHAR|^N?VARCHAR|^STRING$|^TEXT$|^CHARACTER"), "string"),
    (re.compile(r"^(INT|INTEGER|INT4|SMALLINT|TINYINT|INT2)$"), "int"),
    (re.compile(r"^(BIGINT|LONG|INT8|INT64)$"), "long"),
    (re.compile(r"^(FLOAT|REAL|FLOAT4|FLOAT32)$"), "float"),
    (re.compile(r"^(DOUBLE|DOUBLE PRECISION|FLOAT8|FLOAT64)$"), "double"),
    (re.compile(r"^(BOOLEAN|BOOL)$"), "boolean"),
    (re.compile(r"^DATE$"), "date"),
    (re.compile(r"^TIME$"), "time"),
    (re.compile(r"^(TIMESTAMPTZ|TIMESTAMP WITH TIME ZONE|TIMESTAMP_LTZ|TIMESTAMP_TZ)$"), "timestamptz"),
    (re.compile(r"^(TIMESTAMP|DATETIME|TIMESTAMP_NTZ|TIMESTAMP WITHOUT TIME ZONE)$"), "timestamp"),
    (re.compile(r"^UUID$"), "uuid"),
    (re.compile(r"^(BINARY|VARBINARY|BYTES|BLOB)$"), "binary"),
]
_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC|NUMBER)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_ICEBERG_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_LOGICAL_FAMILIES: dict[str, tuple[str, ...]] = {
    "string": ("string", "uuid"),
    "integer": ("int", "long"),
    "number": ("float", "double", "decimal"),
    "boolean": ("boolean",),
    "date": ("date",),
    "time": ("time",),
    "timestamp": ("timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns"),
    "array": ("list",),
    "object": ("struct", "map"),
    "map": ("map",),
}
# Safe promotions, as the Iceberg spec allows them for schema evolution.
_PROMOTIONS = {"int": ("long",), "float": ("double",)}


@dataclass(frozen=True)
class ExpectedType:
    family: tuple[str, ...]  # acceptable Iceberg base types
    text: str  # how the contract spelled it
    decimal: tuple[int, int | None] | None = None


def expected_type(col: ExpectedColumn) -> ExpectedType | None:
    """The Iceberg types a contract column accepts; None when the contract names no type."""
    phys = (col.physical_type or "").strip().upper()
    if phys:
        m = _DECIMAL.match(phys)
        if m:
            precision = (int(m.group(1)), int(m.group(2)) if m.group(2) else 0) if m.group(1) else None
            return ExpectedType(("decimal",), col.physical_type or "", precision)
        base = re.sub(r"\s*\(.*\)$", "", phys)
        for pattern, iceberg in _PHYSICAL:
            if pattern.match(base):
                family = (iceberg, *_PROMOTIONS.get(iceberg, ()))
                if iceberg == "timestamp":  # TIMESTAMP without a zone accepts both, as engines write either
                    family = ("timestamp", "timestamptz")
                return ExpectedType(family, col.physical_type or "")
    logical = (col.logical_type or "").lower()
    opts = col.logical_type_options or {}
    precision, scale = opts.get("precision"), opts.get("scale")
    if logical == "number" and _whole(precision) and (scale is None or _whole(scale)):
        assert isinstance(precision, int)
        digits = (precision, scale if isinstance(scale, int) else 0)
        return ExpectedType(("decimal",), f"decimal({digits[0]}, {digits[1]})", digits)
    if logical == "timestamp" and isinstance(opts.get("timezone"), bool):
        zoned = ("timestamptz", "timestamptz_ns") if opts["timezone"] else ("timestamp", "timestamp_ns")
        return ExpectedType(zoned, f"timestamp ({'with' if opts['timezone'] else 'without'} time zone)")
    if logical in _LOGICAL_FAMILIES:
        return ExpectedType(_LOGICAL_FAMILIES[logical], logical)
    return None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _base(iceberg_type: str) -> str:
    t = iceberg_type.lower()
    for prefix in ("decimal", "list", "struct", "map", "fixed"):
        if t.startswith(prefix):
            return prefix
    return t


def type_compatible(exp: ExpectedType, actual: str) -> bool:
    base = _base(actual)
    if base not in exp.family:
        return False
    if base == "decimal" and exp.decimal is not None:
        m = _ICEBERG_DECIMAL.match(actual.lower())
        if not m:
            return False
        p, s = int(m.group(1)), int(m.group(2))
        # Widening precision at the same scale is a safe Iceberg promotion; anything else is a change.
        return s == (exp.decimal[1] or 0) and p >= exp.decimal[0]
    return True


def _nullability(required: bool) -> str:
    return "required" if required else "optional"


Unenforced = Literal["info", "warning", "off"]


@dataclass
class _Comparison:
    """One comparison of a contract's columns with an Iceberg schema, level by level (nested fields too)."""

    ident: str
    baseline: Mapping[str, int]
    unenforced: Unenforced
    findings: list[Finding] = field(default_factory=list)
    new_baseline: dict[str, int] = field(default_factory=dict)

    def fields(
        self,
        expected: Sequence[ExpectedColumn],
        actual: Sequence[ColumnInfo],
        parent: str | None,
        required_names: frozenset[str] = frozenset(),
    ) -> dict[str, ColumnInfo]:
        """Compare one level (the table's columns, or a struct's fields); returns contract name -> field."""
        by_name = {a.name: a for a in actual}
        by_id = {a.field_id: a for a in actual}
        names = {c.physical_name for c in expected}
        matched: dict[str, ColumnInfo] = {}
        renamed_to: set[str] = set()
        for col in expected:
            name, path = col.physical_name, _join(parent, col.physical_name)
            if name in by_name:
                matched[name] = by_name[name]
                if path not in self.baseline:
                    self.new_baseline[path] = by_name[name].field_id
                continue
            fid = col.field_id if col.field_id is not None else self.baseline.get(path)
            target = by_id.get(fid) if fid is not None else None
            if target is not None and target.name not in names:
                renamed_to.add(target.name)
                matched[name] = target
                self.add(
                    "column_renamed",
                    S.ERROR,
                    path,
                    f"Column {path!r} of {self.ident} was renamed to {_join(parent, target.name)!r} "
                    f"(Iceberg field id {fid})",
                    path,
                    _join(parent, target.name),
                    {"field_id": str(fid)},
                )
                continue
            self.add(
                "column_removed",
                S.CRITICAL,
                path,
                f"Column {path!r} declared by the contract is missing from {self.ident}",
                f"{path} ({_describe(col)})",
                "missing",
            )
        for a in actual:
            if a.name not in names and a.name not in renamed_to:
                path = a.column_path
                self.add(
                    "column_added",
                    S.WARNING,
                    path,
                    f"Column {path!r} ({a.type}, {_nullability(a.required)}) in {self.ident} is not in the contract",
                    "not declared",
                    f"{a.type}, {_nullability(a.required)}",
                    {"field_id": str(a.field_id)},
                )
        for col in expected:
            info = matched.get(col.physical_name)
            if info is not None:
                required = col.required or col.physical_name in required_names
                self.field(col, info, _join(parent, col.physical_name), required)
        return matched

    def field(self, col: ExpectedColumn, info: ColumnInfo, path: str, required: bool | None) -> None:
        """Type and nullability of one matched field, then what is nested in it.

        `required` None: the contract says nothing about the field's nullability (an array's element
        without `required`), so only a promise the table does not enforce could be reported, not this.
        """
        exp = expected_type(col)
        if exp is not None and not type_compatible(exp, info.type):
            self.add(
                "type_changed",
                S.ERROR,
                path,
                f"Column {path!r} of {self.ident} is {info.type}; the contract says {exp.text}",
                exp.text,
                info.type,
            )
        if required and not info.required:
            severity = {"info": S.INFO, "warning": S.WARNING}.get(self.unenforced)
            if severity is not None:
                self.add(
                    "required_not_enforced",
                    severity,
                    path,
                    f"Column {path!r} of {self.ident} is optional in the Iceberg schema; the contract says "
                    "required. The table does not enforce it; the quality check verifies it from the data",
                    "required",
                    "optional",
                )
        elif required is False and info.required:
            self.add(
                "nullability_changed",
                S.WARNING,
                path,
                f"Column {path!r} of {self.ident} is required; the contract says optional",
                "optional",
                "required",
            )
        if col.children and info.kind == "struct":
            listed = col.logical_type_options.get("required")
            names = frozenset(str(n) for n in listed) if isinstance(listed, list) else frozenset()
            self.fields(col.children, info.children, path, names)
        if col.items is not None and info.kind == "list":
            self.field(col.items, info.children[0], f"{path}[]", True if col.items.required else None)

    def add(
        self,
        kind: str,
        severity: ViolationSeverity,
        element: str,
        message: str,
        expected: str,
        actual: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.findings.append(
            Finding(
                kind=kind,
                severity=severity,
                element=element,
                message=message,
                expected=expected,
                actual=actual,
                metadata=metadata or {},
            )
        )


def _join(parent: str | None, name: str) -> str:
    return name if parent is None else f"{parent}.{name}"


def evaluate_schema_drift(
    table: MonitoredTable,
    actual: TableSchemaInfo | None,
    baseline: Mapping[str, int] | None = None,
    *,
    unenforced_required: Unenforced = "info",
) -> tuple[CheckOutcome, dict[str, int]]:
    """Compare; returns the outcome and the (column path -> field id) pairs to add to the baseline.

    `unenforced_required`: the severity of a `required` column whose Iceberg field is optional (`off`: none).
    The check FAILs on a finding of WARNING or above; INFO findings alone pass, carried as early notes.
    """
    ident = table.ref.identifier
    if actual is None:
        finding = Finding(
            kind="table_missing",
            severity=S.ERROR,
            message=f"Table {ident} does not exist in the catalog",
            expected=f"table {ident}",
            actual="missing",
        )
        return CheckOutcome(
            ViolationType.SCHEMA_DRIFT,
            CheckStatus.FAIL,
            (finding,),
            details={"table": ident, "drifts": [_row(finding)]},
        ), {}

    cmp = _Comparison(ident, dict(baseline or {}), unenforced_required)
    matched = cmp.fields(table.columns, actual.columns, None)
    findings = cmp.findings

    declared_pk = tuple(sorted(table.primary_key))
    actual_pk = tuple(sorted(_rename_back(actual.identifier_fields, matched)))
    pk_note = None
    if actual.identifier_fields and declared_pk != actual_pk:
        findings.append(
            Finding(
                kind="primary_key_changed",
                severity=S.ERROR,
                element=",".join(declared_pk) or None,
                message=(
                    f"Identifier fields of {ident} are [{', '.join(actual.identifier_fields)}]; "
                    f"the contract's primary key is [{', '.join(declared_pk)}]"
                ),
                expected=",".join(declared_pk) or "none",
                actual=",".join(actual.identifier_fields),
            )
        )
    elif declared_pk and not actual.identifier_fields:
        pk_note = "the table declares no identifier fields; primary key not compared"

    details: dict[str, object] = {
        "table": ident,
        "schema_id": actual.schema_id,
        "contract_columns": len(table.columns),
        "table_columns": len(actual.columns),
        "drifts": [_row(f) for f in findings],
    }
    if pk_note:
        details["primary_key"] = pk_note
    failing = any(f.severity >= S.WARNING for f in findings)
    return CheckOutcome(
        ViolationType.SCHEMA_DRIFT,
        CheckStatus.FAIL if failing else CheckStatus.PASS,
        tuple(findings),
        details=details,
        measured_value=float(sum(1 for f in findings if f.severity >= S.WARNING)),
        threshold=0.0,
    ), cmp.new_baseline


def _rename_back(identifier_fields: tuple[str, ...], matched: Mapping[str, ColumnInfo]) -> list[str]:
    """Identifier fields in contract names, so a rename is reported once, not also as a key change."""
    back = {info.name: name for name, info in matched.items()}
    return [back.get(f, f) for f in identifier_fields]


def _describe(col: ExpectedColumn) -> str:
    t = col.physical_type or col.logical_type or "untyped"
    return f"{t}, {_nullability(col.required)}"


def _row(f: Finding) -> dict[str, str | None]:
    return {
        "drift": f.kind,
        "column": f.element,
        "expected": f.expected,
        "actual": f.actual,
        "severity": f.severity.value,
    }


_DRIFT_COLUMNS = ("drift", "column", "expected", "actual", "severity")


class SchemaDriftKind(CheckKind):
    """Checks every contract: its columns, types, nullability and key against the Iceberg schema."""

    name = ViolationType.SCHEMA_DRIFT.value
    description = "Iceberg schema against the contract's columns, types, nullability and key"
    failure_label = "drifted"

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        if not outcome.findings:
            return {}
        rows = tuple(
            {
                "drift": f.kind,
                "column": f.element or "",
                "expected": f.expected or "",
                "actual": f.actual or "",
                "severity": v.severity.value,
            }
            for f, v in zip(outcome.findings, violations, strict=True)
        )
        return {"drift": EvidenceTable(_DRIFT_COLUMNS, rows)}

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        try:
            actual: TableSchemaInfo | None = ctx.source.table_schema(table.ref)
        except TableNotFoundError:
            actual = None
        ident = table.ref.identifier
        baseline: dict[str, int] = {}
        if ctx.store is not None:
            try:
                baseline = ctx.store.baselines.get(contract.name, ident)
            except Exception as exc:
                log.error("cannot read the schema baseline of %s (%s); renames show as drop + add", contract.name, exc)
        outcome, new_ids = evaluate_schema_drift(
            table, actual, baseline, unenforced_required=config.schema_drift.unenforced_required
        )
        if new_ids and ctx.store is not None:
            try:
                ctx.store.baselines.save(contract.name, ident, new_ids, ctx.clock())
            except Exception as exc:
                log.error("cannot save the schema baseline of %s: %s", contract.name, exc)
        return outcome
