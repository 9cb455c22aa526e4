"""Runs one check kind over many (contract, table) targets: evaluate, escalate, build the violation events.

Plain Python, no Dagster: `CheckRunner.run` is called once per step with every selected target, so 1,000
checks share one process, one catalog client and one history query. The runner knows no kind: it asks the
registry for the kind's class (one instance per run) and hands it a `CheckContext`. It writes nothing but
what kinds keep as history (pings, schema baselines): recording results, lineage and alert dispatch are
the pipeline's (`floe_monitoring_defs.pipeline`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.trace import Status, StatusCode

from floe_monitoring_defs.checks.context import CONTEXT_KEY, ContextBuilder, ContextProvider, bounded
from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Target
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.checks.severity import escalate
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    RecordedCheck,
    ViolationSeverity,
    ViolationType,
    error_outcome,
    utcnow,
)
from floe_monitoring_defs.sources.base import SourceError, TableSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.telemetry.custom import CustomMetrics
from floe_monitoring_defs.telemetry.metrics import monitor_metrics
from floe_monitoring_defs.telemetry.tracing import current_traceparent, tracer

log = logging.getLogger(__name__)

__all__ = ["CheckRun", "CheckRunner", "Target"]


@dataclass(frozen=True)
class CheckRun:
    """One check execution: what was checked, the outcome, the result and its violation events, and
    (once the pipeline recorded it) what the store wrote."""

    contract: MonitoredContract
    table: MonitoredTable
    outcome: CheckOutcome
    result: CheckResult
    violations: tuple[ContractViolationEvent, ...]
    recorded: RecordedCheck | None = None  # None: not recorded (yet, or the store was down)
    # The root-cause context its violations carry (checks/context.py); None without violations or when off.
    context: Mapping[str, Any] | None = None

    @property
    def persisted(self) -> bool:
        return self.recorded is not None

    @property
    def violation_ids(self) -> tuple[str, ...]:
        return self.recorded.violation_ids if self.recorded is not None else ()

    @property
    def outbox_ids(self) -> tuple[str, ...]:
        """The alerts this check put in the outbox (its violations, and a "resolved" notice if owed)."""
        return self.recorded.outbox_ids if self.recorded is not None else ()

    @property
    def max_severity(self) -> ViolationSeverity | None:
        return max((v.severity for v in self.violations), default=None, key=lambda s: s.rank)

    def description(self) -> str:
        """What the check found, led by its severity (what the Dagster UI lists a check result by):
        `CRITICAL: Column 'email' declared by the contract is missing from shop.orders`, each further finding
        with its own severity when it differs; `ERROR (check could not complete): ...`; `INFO: early warning: ...`
        on a passing check; `PASS: within contract`. An escalated CRITICAL says from what and why."""
        status, reason = self.result.status, self.outcome.reason
        if status is CheckStatus.FAIL and self.violations:
            pairs = list(zip(self.outcome.findings, self.violations, strict=True))
            failing = [(f, v) for f, v in pairs if v.severity >= ViolationSeverity.WARNING] or pairs
            failing.sort(key=lambda fv: -fv[1].severity.rank)  # stable: the check's order within a severity
            worst = failing[0][1].severity
            parts = [
                v.message if v.severity is worst else f"{v.message} ({v.severity.value.upper()})" for _, v in failing
            ]
            lead = worst.value.upper()
            escalated = [(f, v) for f, v in failing if v.severity is not f.severity]
            if escalated:
                was = max((f.severity for f, _ in escalated), key=lambda s: s.rank).value.upper()
                prior = escalated[0][1].metadata.get("prior_failures_in_window", "?")
                lead += f" (escalated from {was}: {prior} earlier failures of this check within the critical window)"
            return f"{lead}: " + "; ".join(parts)
        if status is CheckStatus.FAIL:
            return f"FAIL: {reason or 'no finding recorded'}"
        if status is CheckStatus.ERROR:
            return f"ERROR (check could not complete): {reason or 'no reason given'}"
        if status is CheckStatus.SKIPPED:
            return f"SKIPPED: {reason or 'not run'}"
        if self.violations:  # INFO early warnings on a passing check
            return "INFO: early warning: " + "; ".join(v.message for v in self.violations)
        return f"PASS: {reason}" if reason else "PASS: within contract"


class CheckRunner:
    def __init__(
        self,
        source: TableSource,
        store: MonitoringStore | None,
        config: MonitoringConfig,
        clock: Callable[[], datetime] = utcnow,
        kinds: Mapping[str, type[CheckKind]] | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.config = config
        self.clock = clock
        self.kinds = dict(kinds) if kinds is not None else check_kinds()
        self.custom_metrics = CustomMetrics(config.custom_metrics)  # registered once, fed on every run
        self.context = ContextBuilder(source, store, config.context, clock)

    def add_context_provider(self, provider: ContextProvider) -> None:
        """Add a part the core cannot read to every violation's context (the Dagster adapter's runs, upstream)."""
        self.context.providers.append(provider)

    def run(self, check_type: ViolationType | str, targets: Sequence[Target]) -> Iterator[CheckRun]:
        """Check every target with the kind `check_type`, in order (lazily: one check per item taken)."""
        name = ViolationType(check_type).value
        if name not in self.kinds:
            raise KeyError(f"no check kind {name!r} is installed (installed: {', '.join(sorted(self.kinds))})")
        kind = self.kinds[name]()
        ctx = CheckContext(self.source, self.store, self.clock, self._config)
        prior = self._prior_failures(ViolationType(name), targets, self.clock())
        kind.begin(ctx, targets)
        try:
            for contract, table in targets:
                run = self.run_one(kind, ctx, contract, table, prior.get(contract.name, 0))
                if run.result.status is CheckStatus.FAIL:
                    prior[contract.name] = prior.get(contract.name, 0) + 1
                yield run
        finally:
            try:
                kind.end(ctx)
            except Exception:  # what a kind buffers is history; losing it must not fail the checks already run
                log.exception("the %s check kind failed to finish its run", name)

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
                counts.update(self.store.results.count_failed_checks(sorted(set(names)), check_type, since))
            except Exception as exc:  # degraded: history unavailable, checks still run
                log.error("cannot read violation history (%s); CRITICAL escalation is off for this run", exc)
        return counts

    def _record_metrics(
        self,
        kind: CheckKind,
        contract: MonitoredContract,
        table: MonitoredTable,
        outcome: CheckOutcome,
        violations: Sequence[ContractViolationEvent],
        duration: float,
    ) -> None:
        m = monitor_metrics()
        m.record_duration(contract.name, kind.name, duration)
        for v in violations:  # INFO early warnings too: the severity label tells them apart
            m.record_violation(contract.name, kind.name, v.severity.value)
        graded = outcome.status in (CheckStatus.PASS, CheckStatus.FAIL)
        if kind.gauge is not None and outcome.measured_value is not None and graded:
            m.set_gauge(kind.gauge, contract.name, outcome.measured_value)
        labels = {
            "contract": contract.name,
            "contract_version": contract.version,
            "table": table.ref.identifier,
            "check_type": kind.name,
            "domain": contract.domain or "",
        }
        self.custom_metrics.record(kind.name, outcome.details, labels)

    def run_one(
        self,
        kind: CheckKind,
        ctx: CheckContext,
        contract: MonitoredContract,
        table: MonitoredTable,
        prior_failures: int = 0,
    ) -> CheckRun:
        """One check execution inside its own span (FR-034); violations carry the span's traceparent."""
        attrs = {
            "floe.contract.name": contract.name,
            "floe.contract.version": contract.version,
            "floe.check.type": kind.name,
            "floe.table": table.ref.identifier,
        }
        with tracer().start_as_current_span(f"floe.check.{kind.name}", attributes=attrs) as span:
            run = self._run_one(kind, ctx, contract, table, prior_failures)
            span.set_attribute("floe.check.status", run.result.status.value)
            span.set_attribute("floe.check.duration_ms", round(run.result.duration_seconds * 1000))
            if run.max_severity is not None:
                span.set_attribute("floe.violation.severity", run.max_severity.value)
                span.set_attribute("floe.violation.type", kind.name)
            if run.result.status is CheckStatus.ERROR:
                span.set_status(Status(StatusCode.ERROR, str(run.outcome.reason or "check error")[:200]))
            return run

    def _run_one(
        self,
        kind: CheckKind,
        ctx: CheckContext,
        contract: MonitoredContract,
        table: MonitoredTable,
        prior_failures: int,
    ) -> CheckRun:
        check_type = ViolationType(kind.name)
        reads_began = time.monotonic()  # tables loaded from here on are the ones this check read
        started = time.perf_counter()
        config = self._config(contract)
        try:
            outcome = kind.evaluate(ctx, contract, table, config)
        except SourceError as exc:
            outcome = error_outcome(check_type, str(exc), table=table.ref.identifier)
        except Exception as exc:  # a bug or an unexpected library error must not stop the other checks
            log.exception("%s check of %s failed unexpectedly", kind.name, contract.name)
            reason = f"unexpected {type(exc).__name__} while checking {table.ref.identifier}"
            outcome = error_outcome(check_type, reason)
        duration = time.perf_counter() - started
        now = self.clock()
        trace_meta = {"traceparent": tp} if (tp := current_traceparent()) else {}
        context: dict[str, Any] | None = None
        if outcome.findings and config.context.enabled:
            try:
                context = self.context.build(kind.name, contract, table, outcome.status, reads_began, config.context)
                trace_meta[CONTEXT_KEY] = bounded(context, config.context.max_bytes)
            except Exception:  # the context explains a violation; it must never stop one from being reported
                log.exception("cannot build the context of the %s check of %s", kind.name, contract.name)
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
        self._record_metrics(kind, contract, table, outcome, violations, duration)
        return CheckRun(contract, table, outcome, result, violations, context=context)
