"""Runs checks for many (contract, table) targets: read the source, grade, escalate, persist.

Plain Python, no Dagster: the Dagster adapter calls `CheckRunner.run` once per step with every
selected target, so 1,000 checks share one process, one catalog client and one history query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from floe_monitoring_defs.checks.freshness import evaluate_freshness
from floe_monitoring_defs.checks.outcome import CheckOutcome, error_outcome
from floe_monitoring_defs.checks.schema_drift import evaluate_schema_drift
from floe_monitoring_defs.checks.severity import escalate
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    ViolationSeverity,
    ViolationType,
    utcnow,
)
from floe_monitoring_defs.sources.base import SourceError, TableNotFoundError, TableSource
from floe_monitoring_defs.telemetry.metrics import monitor_metrics

log = logging.getLogger(__name__)

Target = tuple[MonitoredContract, MonitoredTable]


class HistoryStore(Protocol):
    """The part of MonitoringStore the runner needs (kept narrow so tests can pass a real store only)."""

    def record_check(self, result: CheckResult, violations: Sequence[ContractViolationEvent], *,
                     table_name: str | None = None) -> list[str]: ...

    def count_failed_checks(self, contract_names: Sequence[str], check_type: ViolationType,
                            since: datetime) -> dict[str, int]: ...

    def schema_baseline(self, contract_name: str, table_name: str) -> dict[str, int]: ...

    def save_schema_baseline(self, contract_name: str, table_name: str, columns: dict[str, int],
                             recorded_at: datetime) -> None: ...


@dataclass(frozen=True)
class CheckRun:
    contract: MonitoredContract
    table: MonitoredTable
    outcome: CheckOutcome
    result: CheckResult
    violations: tuple[ContractViolationEvent, ...]
    violation_ids: tuple[str, ...]
    persisted: bool

    @property
    def max_severity(self) -> ViolationSeverity | None:
        return max((v.severity for v in self.violations), default=None, key=lambda s: s.rank)


class CheckRunner:
    def __init__(self, source: TableSource, store: HistoryStore | None, config: MonitoringConfig,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.source = source
        self.store = store
        self.config = config
        self.clock = clock

    def run(self, check_type: ViolationType, targets: Sequence[Target]) -> Iterator[CheckRun]:
        now = self.clock()
        prior = self._prior_failures(check_type, targets, now)
        for contract, table in targets:
            run = self.run_one(check_type, contract, table, prior.get(contract.name, 0))
            if run.result.status is CheckStatus.FAIL:
                prior[contract.name] = prior.get(contract.name, 0) + 1
            yield run

    def _config(self, contract: MonitoredContract) -> MonitoringConfig:
        return self.config.merged(contract.monitoring_overrides, f"{contract.source}: customProperties.floe.monitoring")

    def _prior_failures(self, check_type: ViolationType, targets: Sequence[Target], now: datetime) -> dict[str, int]:
        if self.store is None:
            return {}
        by_window: dict[int, list[str]] = {}
        for contract, _ in targets:
            hours = self._config(contract).severity_thresholds.critical_window_hours
            by_window.setdefault(hours, []).append(contract.name)
        counts: dict[str, int] = {}
        for hours, names in by_window.items():
            try:
                since = now - timedelta(hours=hours)
                counts.update(self.store.count_failed_checks(sorted(set(names)), check_type, since))
            except Exception as exc:  # degraded: history unavailable, checks still run
                log.error("cannot read violation history (%s); CRITICAL escalation is off for this run", exc)
        return counts

    def evaluate(self, check_type: ViolationType, contract: MonitoredContract, table: MonitoredTable,
                 config: MonitoringConfig) -> CheckOutcome:
        if check_type is ViolationType.FRESHNESS:
            return self._freshness(contract, table, config)
        if check_type is ViolationType.SCHEMA_DRIFT:
            return self._schema_drift(contract, table)
        return CheckOutcome(check_type, CheckStatus.SKIPPED, reason=f"{check_type.value} checks are not available")

    def _freshness(self, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig) -> CheckOutcome:
        sla = contract.freshness
        if sla is None:
            reason = "the contract has no freshness SLA"
            return CheckOutcome(ViolationType.FRESHNESS, CheckStatus.SKIPPED, reason=reason)
        try:
            reading = self.source.last_update(table.ref, table.freshness_column)
        except TableNotFoundError as exc:
            return error_outcome(ViolationType.FRESHNESS, str(exc), table=table.ref.identifier)
        col = table.column(table.freshness_column) if table.freshness_column else None
        return evaluate_freshness(
            reading, now=self.clock(), threshold=sla.threshold, threshold_text=sla.text,
            thresholds=config.severity_thresholds, tolerance_seconds=config.clock_skew_tolerance_seconds,
            hide_timestamp=bool(col and col.sensitive),
        )

    def _schema_drift(self, contract: MonitoredContract, table: MonitoredTable) -> CheckOutcome:
        try:
            actual = self.source.table_schema(table.ref)
        except TableNotFoundError:
            actual = None
        baseline: dict[str, int] = {}
        if self.store is not None:
            try:
                baseline = self.store.schema_baseline(contract.name, table.ref.identifier)
            except Exception as exc:
                log.error("cannot read the schema baseline of %s (%s); renames show as drop + add", contract.name, exc)
        outcome, new_ids = evaluate_schema_drift(table, actual, baseline)
        if new_ids and self.store is not None:
            try:
                self.store.save_schema_baseline(contract.name, table.ref.identifier, new_ids, self.clock())
            except Exception as exc:
                log.error("cannot save the schema baseline of %s: %s", contract.name, exc)
        return outcome

    @staticmethod
    def _record_metrics(contract: MonitoredContract, check_type: ViolationType, outcome: CheckOutcome,
                        violations: Sequence[ContractViolationEvent], duration: float) -> None:
        m = monitor_metrics()
        m.record_duration(contract.name, check_type.value, duration)
        for v in violations:  # INFO early warnings too: the severity label tells them apart
            m.record_violation(contract.name, check_type.value, v.severity.value)
        if outcome.measured_value is not None and outcome.status in (CheckStatus.PASS, CheckStatus.FAIL):
            m.set_gauge(check_type.value, contract.name, outcome.measured_value)

    def run_one(self, check_type: ViolationType, contract: MonitoredContract, table: MonitoredTable,
                prior_failures: int = 0) -> CheckRun:
        started = time.perf_counter()
        config = self._config(contract)
        try:
            outcome = self.evaluate(check_type, contract, table, config)
        except SourceError as exc:
            outcome = error_outcome(check_type, str(exc), table=table.ref.identifier)
        except Exception as exc:  # a bug or an unexpected library error must not stop the other checks
            log.exception("%s check of %s failed unexpectedly", check_type.value, contract.name)
            reason = f"unexpected {type(exc).__name__} while checking {table.ref.identifier}"
            outcome = error_outcome(check_type, reason)
        duration = time.perf_counter() - started
        now = self.clock()
        violations = tuple(
            ContractViolationEvent(
                contract_name=contract.name,
                contract_version=contract.version,
                violation_type=check_type,
                severity=escalate(f.severity, prior_failures, config.severity_thresholds)
                if outcome.status is CheckStatus.FAIL else f.severity,
                message=f.message,
                element=f.element,
                expected_value=f.expected,
                actual_value=f.actual,
                timestamp=now,
                affected_consumers=list(contract.consumers),
                check_duration_seconds=duration,
                metadata={**f.metadata, "drift": f.kind, "table": table.ref.identifier,
                          "prior_failures_in_window": str(prior_failures)},
            )
            for f in outcome.findings
        )
        worst = max(violations, key=lambda v: v.severity.rank, default=None)
        details = {**outcome.details, "table": table.ref.identifier}
        if outcome.reason:
            details["reason"] = outcome.reason
        result = CheckResult(
            contract_name=contract.name, check_type=check_type, status=outcome.status,
            duration_seconds=duration, timestamp=now, details=details,
            violation=worst if outcome.status is CheckStatus.FAIL else None,
        )
        self._record_metrics(contract, check_type, outcome, violations, duration)
        ids: list[str] = []
        persisted = False
        if self.store is not None:
            try:
                ids = self.store.record_check(result, violations, table_name=table.ref.identifier)
                persisted = True
            except Exception as exc:  # degraded mode (edge case 3): keep checking, say so loudly
                log.error("check result of %s not persisted: %s", contract.name, exc)
        return CheckRun(contract, table, outcome, result, violations, tuple(ids), persisted)
