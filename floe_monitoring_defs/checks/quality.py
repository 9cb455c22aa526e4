"""Quality: grade a quality engine's rule results into a weighted score and findings (FR-015..018).

The rules of a table are its explicit `quality` rules plus one rule per column constraint
(`required`, `unique`, the primary key, `logicalTypeOptions`; `quality.constraints`), answered from the
Iceberg manifests where they can be (`quality.metadata`) and by the engine otherwise; each rule's
`method` (metadata | scan) is in the rules table.

Score (0..1) = sum of the weights of the passed rules / sum of the weights of the evaluated rules.
A rule's weight is its own (`customProperties` `weight` / `floe.weight`, floe dialect `weight`),
else by severity: critical 3.0, error 2.0, warning 1.0, info 0.5 (severity defaults to error;
constraint rules take `column_constraints.severity`, default error). Rules that errored or cannot
run (`text`, `custom`, constraints floe does not check) are listed with the reason but neither pass
nor fail; a table with no rule that could run is SKIPPED with that reason, never PASS.

Findings: one `rule_failed` per failed rule (the rule's severity), plus one `score_below_threshold`
when the score is under the threshold: WARNING from `warning_pct` % of the threshold (90 % by
default), ERROR from 50 %, CRITICAL below, and never above the worst failed rule's severity
(`quality_score_severity_cap`, default on: one failed ERROR rule is an ERROR, not a CRITICAL). The
check FAILs when a finding is WARNING or above.

Messages carry counts, rates and the contract's own thresholds only, never a column's values
(FR-025). An engine that is missing or cannot start makes the check SKIPPED (never a violation); a
table that cannot be read makes it ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pyiceberg.table import Table

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, EvidenceTable, cell, scalar
from floe_monitoring_defs.config import ColumnConstraintConfig, MonitoringConfig, SeverityThresholds
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable, QualityRule
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    Finding,
    ViolationSeverity,
    ViolationType,
    error_outcome,
)
from floe_monitoring_defs.quality.constraints import constraint_rules, has_constraints
from floe_monitoring_defs.quality.engine import (
    QualityDataSource,
    QualityEngine,
    QualityEngineUnavailable,
    RuleResult,
)
from floe_monitoring_defs.quality.metadata import run_rules
from floe_monitoring_defs.quality.operators import format_number
from floe_monitoring_defs.quality.registry import load_engine
from floe_monitoring_defs.sources.base import SourceError, TableNotFoundError
from floe_monitoring_defs.telemetry.metrics import GaugeSpec, monitor_metrics

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.8
_ERROR_FRACTION = 0.5


def skipped_outcome(reason: str, **details: Any) -> CheckOutcome:
    """The quality check did not run (no engine, no rules): SKIPPED with the reason, no findings."""
    return CheckOutcome(
        ViolationType.QUALITY, CheckStatus.SKIPPED, reason=reason, details={"skipped": reason, **details}
    )


def score_severity(score: float, threshold: float, thresholds: SeverityThresholds) -> ViolationSeverity | None:
    """None at or above the threshold; WARNING from `warning_pct` % of it, ERROR from 50 %, else CRITICAL."""
    if score >= threshold:
        return None
    if score >= threshold * thresholds.warning_pct / 100.0:
        return ViolationSeverity.WARNING
    if score >= threshold * _ERROR_FRACTION:
        return ViolationSeverity.ERROR
    return ViolationSeverity.CRITICAL


def _where(r: RuleResult, table: MonitoredTable) -> str:
    return f"column {r.element}" if r.element else f"table {table.ref.identifier}"


def _rule_detail(r: RuleResult) -> dict[str, Any]:
    return {
        "rule": r.name,
        "column": r.element,
        "metric": r.metric,
        "type": r.rule_type,
        "status": r.status,
        "passed": r.passed,
        "expected": r.expected or None,
        "actual": r.actual or None,
        "weight": r.weight,
        "severity": r.severity.value,
        "rows_checked": r.rows_checked,
        "error": r.error,
        "note": r.note,
        "source_path": r.source_path or None,
        "value": r.value,
        "method": r.method,
    }


def evaluate_quality(
    table: MonitoredTable,
    results: Sequence[RuleResult],
    threshold: float,
    thresholds: SeverityThresholds,
    *,
    engine: str | None = None,
    columns_read: Sequence[str] = (),
    snapshot_id: int | None = None,
    severity_cap: bool = True,
) -> CheckOutcome:
    """Grade one table's rule results (pure)."""
    evaluated = [r for r in results if r.evaluated]
    errored = [r for r in results if r.status == "error"]
    rows = max((r.rows_checked for r in results if r.rows_checked is not None), default=None)
    details: dict[str, Any] = {
        "threshold": threshold,
        "rules": [_rule_detail(r) for r in results],
        "rules_evaluated": len(evaluated),
        "rules_failed": sum(1 for r in evaluated if r.passed is False),
        "rules_errored": len(errored),
        "rules_skipped": sum(1 for r in results if r.status == "skipped"),
        "rules_from_metadata": sum(1 for r in results if r.method == "metadata"),
        "rows_checked": rows,
        "columns_read": list(columns_read),
        "engine": engine,
    }
    if snapshot_id is not None:
        details["snapshot_id"] = snapshot_id
    if not results:
        return skipped_outcome("the contract has no quality rules for this table", **details)
    if not evaluated:
        if errored:
            reason = f"no quality rule could be evaluated: {errored[0].error}"
            if len(errored) > 1:
                reason += f" (and {len(errored) - 1} more)"
            return CheckOutcome(
                ViolationType.QUALITY,
                CheckStatus.ERROR,
                reason=reason,
                details={**details, "error": reason},
                threshold=threshold,
            )
        skipped = [r for r in results if r.status == "skipped"]
        reason = f"no quality rule could run: {skipped[0].name}: {skipped[0].note or 'not executable'}"
        if len(skipped) > 1:
            reason += f" (and {len(skipped) - 1} more not executable)"
        return skipped_outcome(reason, **details)

    total = sum(r.weight for r in evaluated)
    score = sum(r.weight for r in evaluated if r.passed) / total
    details["score"] = round(score, 6)
    findings: list[Finding] = []
    for r in evaluated:
        if r.passed:
            continue
        findings.append(
            Finding(
                kind="rule_failed",
                severity=r.severity,
                element=r.element,
                expected=r.expected,
                actual=r.actual,
                message=(
                    f"Quality rule {r.name} failed on {_where(r, table)}: expected {r.expected}, "
                    f"measured {r.actual}" + (f" over {r.rows_checked} rows" if r.rows_checked is not None else "")
                ),
                metadata={
                    "rule": r.name,
                    "metric": r.metric,
                    "weight": format_number(r.weight),
                    "rows_checked": "" if r.rows_checked is None else str(r.rows_checked),
                    "quality_score": f"{score:.4f}",
                    "source_path": r.source_path,
                },
            )
        )
    severity = score_severity(score, threshold, thresholds)
    worst = max((r.severity for r in evaluated if r.passed is False), default=None, key=lambda x: x.rank)
    if severity is not None and severity_cap and worst is not None and severity > worst:
        # The score summarises the failed rules; it must not say more than the worst of them does.
        details["score_severity_capped"] = f"{severity.value} -> {worst.value}"
        severity = worst
    if severity is not None:
        failed = len(findings)
        findings.append(
            Finding(
                kind="score_below_threshold",
                severity=severity,
                element=None,
                expected=f">= {threshold:.2f}",
                actual=f"{score:.2f}",
                message=(
                    f"Quality score {score:.2f} of table {table.ref.identifier} is below the threshold "
                    f"{threshold:.2f}: {failed} of {len(evaluated)} rules failed"
                ),
                metadata={
                    "quality_score": f"{score:.4f}",
                    "threshold": f"{threshold:.4f}",
                    "rules_evaluated": str(len(evaluated)),
                    "rules_failed": str(failed),
                    "rules_errored": str(len(errored)),
                },
            )
        )
    failing = any(f.severity >= ViolationSeverity.WARNING for f in findings)
    return CheckOutcome(
        ViolationType.QUALITY,
        CheckStatus.FAIL if failing else CheckStatus.PASS,
        findings=tuple(findings),
        details=details,
        measured_value=score,
        threshold=threshold,
    )


def run_quality(
    source_table: Table | QualityDataSource,
    monitored: MonitoredTable,
    engine: QualityEngine | str,
    threshold: float = DEFAULT_THRESHOLD,
    thresholds: SeverityThresholds | None = None,
    *,
    rules: Sequence[QualityRule] | None = None,
    constraints: ColumnConstraintConfig | None = None,
    severity_cap: bool = True,
) -> CheckOutcome:
    """Evaluate `monitored`'s quality rules and column constraints on `source_table` and grade them; never raises.

    `engine` is an engine or the name of one (loaded from `floe.quality_engines`). An engine that is
    missing or cannot start -> SKIPPED (logged as a warning); a table that cannot be read, or an
    engine that crashes -> ERROR; neither produces a violation. `constraints` (default: on, ERROR)
    says whether and at which severity the column constraints are added to the rules.
    """
    thresholds = thresholds or SeverityThresholds()
    constraints = constraints or ColumnConstraintConfig()
    todo = tuple(monitored.quality_rules if rules is None else rules)
    if constraints.enabled:
        todo += constraint_rules(monitored, constraints.severity.value)
    if not todo:
        return skipped_outcome("the contract has no quality rules or column constraints for this table")
    engine_name = engine if isinstance(engine, str) else getattr(engine, "name", type(engine).__name__)
    try:
        loaded = load_engine(engine) if isinstance(engine, str) else engine
    except QualityEngineUnavailable as exc:
        log.warning("quality check of %s skipped: %s", monitored.ref.identifier, exc)
        return skipped_outcome(str(exc), engine=engine_name)
    if isinstance(source_table, QualityDataSource):
        data: QualityDataSource = source_table
    else:
        from floe_monitoring_defs.quality.source import IcebergQualitySource

        try:
            data = IcebergQualitySource(source_table)
        except Exception as exc:
            reason = f"cannot read table {monitored.ref.identifier}: {type(exc).__name__}"
            return error_outcome(ViolationType.QUALITY, reason, table=monitored.ref.identifier, engine=engine_name)
    try:
        results = run_rules(loaded, data, monitored, todo)
    except QualityEngineUnavailable as exc:
        log.warning("quality check of %s skipped: %s", monitored.ref.identifier, exc)
        return skipped_outcome(str(exc), engine=engine_name)
    except SourceError as exc:
        return error_outcome(ViolationType.QUALITY, str(exc), table=monitored.ref.identifier, engine=engine_name)
    except Exception as exc:  # an engine bug must not fail the check as a violation
        log.exception("quality engine %s failed on %s", engine_name, monitored.ref.identifier)
        return error_outcome(
            ViolationType.QUALITY,
            f"quality engine {engine_name} failed unexpectedly: {type(exc).__name__}",
            table=monitored.ref.identifier,
            engine=engine_name,
        )
    outcome = evaluate_quality(
        monitored,
        results,
        threshold,
        thresholds,
        engine=engine_name,
        columns_read=data.columns_read,
        snapshot_id=data.snapshot_id,
        severity_cap=severity_cap,
    )
    reads = getattr(data, "reads", ())  # how the data was read (parquet-direct / arrow-scan and why)
    if reads:
        outcome.details["read"] = "; ".join(reads)
    return outcome


_QUALITY_EVIDENCE = ("score", "threshold", "rows_checked", "engine", "read")
_RULE_COLUMNS = (
    "rule",
    "column",
    "metric",
    "status",
    "method",
    "passed",
    "expected",
    "actual",
    "weight",
    "error",
    "note",
)


class QualityKind(CheckKind):
    """Checks contracts with quality rules or column constraints, through the configured `QualityEngine`."""

    name = ViolationType.QUALITY.value
    description = "The contract's quality rules and column constraints, weighted into a score against the threshold"
    failure_label = "failing quality rules"
    gauge = GaugeSpec("floe_contract_quality_score", "1", "Weighted quality score, 0..1")

    def __init__(self) -> None:
        self._engines: dict[str, QualityEngine | QualityEngineUnavailable] = {}

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return any(t.quality_rules or has_constraints(t) for t in contract.tables)

    @classmethod
    def applies_under(cls, contract: MonitoredContract, config: MonitoringConfig) -> bool:
        """With `column_constraints.enabled: false` constraints alone give no quality check."""
        constraints = config.column_constraints.enabled
        return any(t.quality_rules or (constraints and has_constraints(t)) for t in contract.tables)

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        d = outcome.details
        out: Evidence = {f"quality_{k}": scalar(d[k]) for k in _QUALITY_EVIDENCE if d.get(k) is not None}
        if d.get("columns_read") is not None:
            out["quality_columns_read"] = ", ".join(map(str, d["columns_read"]))
        rules = d.get("rules") or []
        if rules:
            out["rules"] = EvidenceTable(
                _RULE_COLUMNS, tuple({c: cell(r.get(c)) for c in _RULE_COLUMNS} for r in rules)
            )
        return out

    def _engine(self, name: str) -> QualityEngine | QualityEngineUnavailable:
        """One engine per run and name; a failure to start is remembered for the rest of the run."""
        if name not in self._engines:
            try:
                self._engines[name] = load_engine(name)
            except QualityEngineUnavailable as exc:
                log.warning("quality engine %r unavailable: %s; quality checks are SKIPPED", name, exc)
                monitor_metrics().engine_unavailable.add(1, {"engine": name})
                self._engines[name] = exc
        return self._engines[name]

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        constraints = config.column_constraints
        if not table.quality_rules and not (constraints.enabled and has_constraints(table)):
            return skipped_outcome("the table has no quality rules or column constraints")
        engine = self._engine(config.quality_engine)
        if isinstance(engine, QualityEngineUnavailable):
            return skipped_outcome(str(engine), engine=config.quality_engine)
        try:
            data = ctx.source.load_table(table.ref)
        except TableNotFoundError as exc:
            return error_outcome(ViolationType.QUALITY, str(exc), table=table.ref.identifier)
        return run_quality(
            data,
            table,
            engine,
            config.quality_threshold,
            config.severity_thresholds,
            constraints=constraints,
            severity_cap=config.quality_score_severity_cap,
        )
