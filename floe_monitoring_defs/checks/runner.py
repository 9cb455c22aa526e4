"""Runs checks for many (contract, table) targets: read the source, grade, escalate, persist.

Plain Python, no Dagster: the Dagster adapter calls `CheckRunner.run` once per step with every
selected target, so 1,000 checks share one process, one catalog client and one history query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from opentelemetry.trace import Status, StatusCode

from floe_monitoring_defs.checks.availability import (
    AvailabilityWindow,
    PingResult,
    evaluate_availability,
    ping_table,
)
from floe_monitoring_defs.checks.freshness import evaluate_freshness
from floe_monitoring_defs.checks.outcome import CheckOutcome, error_outcome
from floe_monitoring_defs.checks.quality import run_quality, skipped_outcome
from floe_monitoring_defs.checks.schema_drift import evaluate_schema_drift
from floe_monitoring_defs.checks.severity import escalate
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    SLAStatus,
    ViolationSeverity,
    ViolationType,
    utcnow,
)
from floe_monitoring_defs.quality import QualityEngine, QualityEngineUnavailable, load_engine
from floe_monitoring_defs.sources.base import SourceError, TableNotFoundError, TableSource
from floe_monitoring_defs.telemetry.custom import CustomMetrics
from floe_monitoring_defs.telemetry.metrics import monitor_metrics
from floe_monitoring_defs.telemetry.tracing import current_traceparent, tracer

log = logging.getLogger(__name__)

Target = tuple[MonitoredContract, MonitoredTable]


AVAILABILITY_WINDOW_HOURS = 24  # the rolling window of uptime and SLA status (FR-020)
AVAILABILITY_WINDOW = timedelta(hours=AVAILABILITY_WINDOW_HOURS)
MAX_PARALLEL_PINGS = 16


class HistoryStore(Protocol):
    """The part of MonitoringStore the runner needs (kept narrow so tests can pass a real store only)."""

    def record_check(
        self,
        result: CheckResult,
        violations: Sequence[ContractViolationEvent],
        *,
        table_name: str | None = None,
        enqueued: list[str] | None = None,
    ) -> list[str]: ...

    def count_failed_checks(
        self, contract_names: Sequence[str], check_type: ViolationType, since: datetime
    ) -> dict[str, int]: ...

    def schema_baseline(self, contract_name: str, table_name: str) -> dict[str, int]: ...

    def record_ping(self, contract_name: str, table_name: str, ping: PingResult) -> None: ...

    def availability_window(self, contract_name: str, table_name: str, since: datetime) -> AvailabilityWindow: ...

    def refresh_sla_status(
        self,
        contract_name: str,
        check_type: ViolationType,
        now: datetime,
        current_value: float,
        threshold: float,
        window_hours: int = 24,
    ) -> SLAStatus: ...

    def save_schema_baseline(
        self, contract_name: str, table_name: str, columns: dict[str, int], recorded_at: datetime
    ) -> None: ...


@dataclass(frozen=True)
class CheckRun:
    contract: MonitoredContract
    table: MonitoredTable
    outcome: CheckOutcome
    result: CheckResult
    violations: tuple[ContractViolationEvent, ...]
    violation_ids: tuple[str, ...]
    persisted: bool
    alerts_enqueued: int = 0  # outbox entries this check created (violations + a "resolved" notice)

    @property
    def max_severity(self) -> ViolationSeverity | None:
        return max((v.severity for v in self.violations), default=None, key=lambda s: s.rank)


class CheckRunner:
    def __init__(
        self,
        source: TableSource,
        store: HistoryStore | None,
        config: MonitoringConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.source = source
        self.store = store
        self.config = config
        self.clock = clock
        self._pings: dict[tuple[str, str], PingResult] = {}
        self._engines: dict[str, QualityEngine | QualityEngineUnavailable] = {}
        self.custom_metrics = CustomMetrics(config.custom_metrics)  # registered once, fed on every run

    def run(self, check_type: ViolationType, targets: Sequence[Target]) -> Iterator[CheckRun]:
        now = self.clock()
        prior = self._prior_failures(check_type, targets, now)
        if check_type is ViolationType.AVAILABILITY:
            self._pings = self._ping_all(targets)
        self._engines = {}
        for contract, table in targets:
            run = self.run_one(check_type, contract, table, prior.get(contract.name, 0))
            if run.result.status is CheckStatus.FAIL:
                prior[contract.name] = prior.get(contract.name, 0) + 1
            yield run

    def _ping_all(self, targets: Sequence[Target]) -> dict[tuple[str, str], PingResult]:
        """Ping every table at once: a hung catalog then costs one timeout per run, not one per table."""
        todo = [(c, t) for c, t in targets if c.availability is not None]
        if not todo:
            return {}
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PINGS, len(todo)), thread_name_prefix="floe-ping") as pool:
            futures = {
                (c.name, t.ref.identifier): pool.submit(
                    ping_table, self.source, t.ref, float(self._config(c).check_timeout_seconds), self.clock
                )
                for c, t in todo
            }
            return {key: f.result() for key, f in futures.items()}

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

    def evaluate(
        self, check_type: ViolationType, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        if check_type is ViolationType.FRESHNESS:
            return self._freshness(contract, table, config)
        if check_type is ViolationType.SCHEMA_DRIFT:
            return self._schema_drift(contract, table)
        if check_type is ViolationType.AVAILABILITY:
            return self._availability(contract, table, config)
        if check_type is ViolationType.QUALITY:
            return self._quality(contract, table, config)
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
            reading,
            now=self.clock(),
            threshold=sla.threshold,
            threshold_text=sla.text,
            thresholds=config.severity_thresholds,
            tolerance_seconds=config.clock_skew_tolerance_seconds,
            hide_timestamp=bool(col and col.sensitive),
        )

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

    def _quality(self, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig) -> CheckOutcome:
        if not table.quality_rules:
            return skipped_outcome("the table has no quality rules")
        engine = self._engine(config.quality_engine)
        if isinstance(engine, QualityEngineUnavailable):
            return skipped_outcome(str(engine), engine=config.quality_engine)
        try:
            data = self.source.load_table(table.ref)
        except TableNotFoundError as exc:
            return error_outcome(ViolationType.QUALITY, str(exc), table=table.ref.identifier)
        return run_quality(data, table, engine, config.quality_threshold, config.severity_thresholds)

    def _availability(
        self, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        sla = contract.availability
        if sla is None:
            reason = "the contract has no availability SLA"
            return CheckOutcome(ViolationType.AVAILABILITY, CheckStatus.SKIPPED, reason=reason)
        ident = table.ref.identifier
        ping = self._pings.pop((contract.name, ident), None) or ping_table(
            self.source, table.ref, float(config.check_timeout_seconds), self.clock
        )
        window = AvailabilityWindow.of_single_ping(ping)
        if self.store is not None:
            try:
                self.store.record_ping(contract.name, ident, ping)
                window = self.store.availability_window(contract.name, ident, self.clock() - AVAILABILITY_WINDOW)
            except Exception as exc:  # degraded: grade this ping alone, say so
                log.error("availability history of %s unavailable (%s); grading this ping alone", contract.name, exc)
        outcome = evaluate_availability(ping, window, sla.target_pct, sla.text, config.severity_thresholds, table=ident)
        if outcome.details.get("recovered"):
            log.info(
                "%s (%s) recovered after %s failed pings",
                contract.name,
                ident,
                outcome.details.get("recovered_after_failures"),
            )
        return outcome

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
    def _record_metrics(
        contract: MonitoredContract,
        check_type: ViolationType,
        outcome: CheckOutcome,
        violations: Sequence[ContractViolationEvent],
        duration: float,
    ) -> None:
        m = monitor_metrics()
        m.record_duration(contract.name, check_type.value, duration)
        for v in violations:  # INFO early warnings too: the severity label tells them apart
            m.record_violation(contract.name, check_type.value, v.severity.value)
        if outcome.measured_value is not None and outcome.status in (CheckStatus.PASS, CheckStatus.FAIL):
            m.set_gauge(check_type.value, contract.name, outcome.measured_value)

    def run_one(
        self, check_type: ViolationType, contract: MonitoredContract, table: MonitoredTable, prior_failures: int = 0
    ) -> CheckRun:
        """One check execution inside its own span (FR-034); violations carry the span's traceparent."""
        attrs = {
            "floe.contract.name": contract.name,
            "floe.contract.version": contract.version,
            "floe.check.type": check_type.value,
            "floe.table": table.ref.identifier,
        }
        with tracer().start_as_current_span(f"floe.check.{check_type.value}", attributes=attrs) as span:
            run = self._run_one(check_type, contract, table, prior_failures)
            span.set_attribute("floe.check.status", run.result.status.value)
            span.set_attribute("floe.check.duration_ms", round(run.result.duration_seconds * 1000))
            if run.max_severity is not None:
                span.set_attribute("floe.violation.severity", run.max_severity.value)
                span.set_attribute("floe.violation.type", check_type.value)
            if run.result.status is CheckStatus.ERROR:
                span.set_status(Status(StatusCode.ERROR, str(run.outcome.reason or "check error")[:200]))
            return run

    def _run_one(
        self, check_type: ViolationType, contract: MonitoredContract, table: MonitoredTable, prior_failures: int
    ) -> CheckRun:
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
        trace_meta = {"traceparent": tp} if (tp := current_traceparent()) else {}
        violations = tuple(
            ContractViolationEvent(
                contract_name=contract.name,
                contract_version=contract.version,
                violation_type=check_type,
                severity=escalate(f.severity, prior_failures, config.severity_thresholds)
                if outcome.status is CheckStatus.FAIL
                else f.severity,
                message=f.message,
                element=f.element,
                expected_value=f.expected,
                actual_value=f.actual,
                timestamp=now,
                affected_consumers=list(contract.consumers),
                check_duration_seconds=duration,
                metadata={
                    **f.metadata,
                    "drift": f.kind,
                    "table": table.ref.identifier,
                    "prior_failures_in_window": str(prior_failures),
                    **trace_meta,
                },
            )
            for f in outcome.findings
        )
        worst = max(violations, key=lambda v: v.severity.rank, default=None)
        details = {**outcome.details, "table": table.ref.identifier}
        if outcome.reason:
            details["reason"] = outcome.reason
        result = CheckResult(
            contract_name=contract.name,
            check_type=check_type,
            status=outcome.status,
            duration_seconds=duration,
            timestamp=now,
            details=details,
            violation=worst if outcome.status is CheckStatus.FAIL else None,
        )
        self._record_metrics(contract, check_type, outcome, violations, duration)
        self.custom_metrics.record(
            check_type.value,
            outcome.details,
            {
                "contract": contract.name,
                "contract_version": contract.version,
                "table": table.ref.identifier,
                "check_type": check_type.value,
                "domain": contract.domain or "",
            },
        )
        ids: list[str] = []
        enqueued: list[str] = []
        persisted = False
        if self.store is not None:
            try:
                ids = self.store.record_check(result, violations, table_name=table.ref.identifier, enqueued=enqueued)
                persisted = True
                self.store.refresh_sla_status(
                    contract.name,
                    check_type,
                    now,
                    current_value=outcome.measured_value or 0.0,
                    threshold=outcome.threshold or 0.0,
                    window_hours=AVAILABILITY_WINDOW_HOURS,
                )
            except Exception as exc:  # degraded mode (edge case 3): keep checking, say so loudly
                log.error(
                    "check result of %s not %s: %s",
                    contract.name,
                    "reflected in contract_sla_status" if persisted else "persisted",
                    exc,
                )
        return CheckRun(contract, table, outcome, result, violations, tuple(ids), persisted, len(enqueued))
