"""Schema drift: the contract's columns against the Iceberg schema (FR-011..013).

One finding per drift. Iceberg field ids tell a rename from a drop + add: the id a contract column
had is taken from the contract (`floe.iceberg_field_id`) or from the baseline the monitor records the
first time it sees the column. Iceberg's safe promotions (int -> long, float -> double, widening a
decimal's precision) are compatible. Severities (DESIGN): removed CRITICAL, type change ERROR,
rename ERROR, added WARNING, optional -> required WARNING, required -> optional ERROR, primary key
changed ERROR, missing table ERROR.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
    if logical in _LOGICAL_FAMILIES:
        return ExpectedType(_LOGICAL_FAMILIES[logical], logical)
    return None


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


def evaluate_schema_drift(
    table: MonitoredTable,
    actual: TableSchemaInfo | None,
    baseline: Mapping[str, int] | None = None,
) -> tuple[CheckOutcome, dict[str, int]]:
    """Compare; returns the outcome and the (column -> field id) pairs to add to the baseline."""
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

    by_name = actual.by_name()
    by_id = actual.by_id()
    known_ids = dict(baseline or {})
    for col in table.columns:
        if col.field_id is not None:
            known_ids[col.physical_name] = col.field_id
    contract_names = {c.physical_name for c in table.columns}
    findings: list[Finding] = []
    matched: dict[str, ColumnInfo] = {}
    renamed_to: set[str] = set()
    new_baseline: dict[str, int] = {}

    for col in table.columns:
        name = col.physical_name
        if name in by_name:
            matched[name] = by_name[name]
            if name not in (baseline or {}):
                new_baseline[name] = by_name[name].field_id
            continue
        fid = known_ids.get(name)
        target = by_id.get(fid) if fid is not None else None
        if target is not None and target.name not in contract_names:
            renamed_to.add(target.name)
            matched[name] = target
            findings.append(
                Finding(
                    kind="column_renamed",
                    severity=S.ERROR,
                    element=name,
                    message=f"Column {name!r} of {ident} was renamed to {target.name!r} (Iceberg field id {fid})",
                    expected=name,
                    actual=target.name,
                    metadata={"field_id": str(fid)},
                )
            )
            continue
        findings.append(
            Finding(
                kind="column_removed",
                severity=S.CRITICAL,
                element=name,
                message=f"Column {name!r} declared by the contract is missing from {ident}",
                expected=f"{name} ({_describe(col)})",
                actual="missing",
            )
        )

    for a in actual.columns:
        if a.name not in contract_names and a.name not in renamed_to:
            findings.append(
                Finding(
                    kind="column_added",
                    severity=S.WARNING,
                    element=a.name,
                    message=(
                        f"Column {a.name!r} ({a.type}, {_nullability(a.required)}) in {ident} is not in the contract"
                    ),
                    expected="not declared",
                    actual=f"{a.type}, {_nullability(a.required)}",
                    metadata={"field_id": str(a.field_id)},
                )
            )

    for col in table.columns:
        info = matched.get(col.physical_name)
        if info is None:
            continue
        exp = expected_type(col)
        if exp is not None and not type_compatible(exp, info.type):
            findings.append(
                Finding(
                    kind="type_changed",
                    severity=S.ERROR,
                    element=col.physical_name,
                    message=f"Column {col.physical_name!r} of {ident} is {info.type}; the contract says {exp.text}",
                    expected=exp.text,
                    actual=info.type,
                )
            )
        if col.required != info.required:
            tightened = info.required and not col.required
            findings.append(
                Finding(
                    kind="nullability_changed",
                    severity=S.WARNING if tightened else S.ERROR,
                    element=col.physical_name,
                    message=(
                        f"Column {col.physical_name!r} of {ident} is {_nullability(info.required)}; "
                        f"the contract says {_nullability(col.required)}"
                    ),
                    expected=_nullability(col.required),
                    actual=_nullability(info.required),
                )
            )

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
    status = CheckStatus.FAIL if findings else CheckStatus.PASS
    return CheckOutcome(
        ViolationType.SCHEMA_DRIFT,
        status,
        tuple(findings),
        details=details,
        measured_value=float(len(findings)),
        threshold=0.0,
    ), new_baseline


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
        outcome, new_ids = evaluate_schema_drift(table, actual, baseline)
        if new_ids and ctx.store is not None:
            try:
                ctx.store.baselines.save(contract.name, ident, new_ids, ctx.clock())
            except Exception as exc:
                log.error("cannot save the schema baseline of %s: %s", contract.name, exc)
        return outcome
