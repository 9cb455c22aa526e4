"""Assemble `SLAComplianceReport`s from per-(contract, check type) totals: pure, no SQL, no Dagster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from floe_monitoring_defs.contracts.model import ResponseSLA
from floe_monitoring_defs.models import Totals, ViolationType, compliance_pct
from floe_monitoring_defs.sla.compliance import DEFAULT_TARGET_PCT, compute_trend, error_budget, mean, total_of
from floe_monitoring_defs.sla.model import (
    CheckTypeSummary,
    ErrorBudget,
    ResponsePromise,
    SLAComplianceReport,
    WeeklyBucket,
)

# The spec's types in their declared order; a plugin kind's type after them, by name.
_ORDER = {t.value: i for i, t in enumerate(ViolationType)}


@dataclass(frozen=True)
class ContractPeriod:
    """Everything one contract's report is computed from, by check type value."""

    contract_name: str
    window: str
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    totals: Mapping[str, Totals]
    weeks: Sequence[tuple[datetime, datetime, Mapping[str, Totals]]]  # four buckets, oldest first
    targets: Mapping[str, float]
    resolutions: Mapping[str, Sequence[float]]  # incident resolution seconds
    notifications: Mapping[str, Sequence[float]] = field(default_factory=dict)  # detection -> first delivery
    response: ResponseSLA | None = None  # the contract's timeToDetect / timeToNotify / timeToRepair
    days_from_aggregates: int = 0
    days_from_raw_rows: int = 0
    default_target_pct: float = DEFAULT_TARGET_PCT


_EMPTY = Totals()


def _compliance(passed: int, evaluated: int) -> float | None:
    """compliance % of `passed` out of `evaluated`; None ("no data") when nothing was evaluated."""
    return None if evaluated == 0 else compliance_pct(passed, evaluated)


def _bucket(start: datetime, end: datetime, tot: Totals) -> WeeklyBucket:
    # Fields read once and figures computed inline (not through `Totals` properties): a fleet report builds
    # tens of thousands of these.
    evaluated = tot.total - tot.skipped
    qn, pn = tot.quality_n, tot.ping_n
    return WeeklyBucket(
        start=start,
        end=end,
        total_checks=tot.total,
        passed_checks=tot.passed,
        evaluated_checks=evaluated,
        compliance_pct=_compliance(tot.passed, evaluated),
        violation_count=sum(tot.violations.values()),
        quality_score_avg=tot.quality_sum / qn if qn else None,
        uptime_pct=tot.ping_ok / pn * 100.0 if pn else None,
    )


def _budget(target: float, compliance: float | None, uptime: float | None) -> ErrorBudget | None:
    if uptime is not None:  # a kind that pings (availability): its SLI is the uptime
        return error_budget(target, uptime, "uptime")
    if compliance is not None:
        return error_budget(target, compliance, "compliance")
    return None


def _ordered(types: set[str]) -> list[str]:
    return sorted(types, key=lambda v: (_ORDER.get(v, len(_ORDER)), v))


def build_report(p: ContractPeriod) -> SLAComplianceReport:
    """The report of one contract: spec 7.7 figures plus uptime, quality, budgets, MTTD / MTTR, weeks."""
    types = _ordered(set(p.totals))
    summaries: list[CheckTypeSummary] = []
    for ctype in types:
        tot = p.totals[ctype]
        weekly = [_bucket(s, e, week.get(ctype, _EMPTY)) for s, e, week in p.weeks]
        resolved = p.resolutions.get(ctype, ())
        compliance = _compliance(tot.passed, tot.total - tot.skipped)
        uptime = tot.uptime_pct
        summaries.append(
            CheckTypeSummary(
                check_type=ViolationType(ctype),
                total_checks=tot.total,
                passed_checks=tot.passed,
                failed_checks=tot.failed,
                error_checks=tot.error,
                compliance_pct=compliance,
                avg_duration_seconds=tot.avg_duration_seconds,
                violation_count=tot.violation_count,
                trend=compute_trend([w.compliance_pct for w in weekly]),
                skipped_checks=tot.skipped,
                expected_checks=tot.expected,
                monitoring_coverage_pct=tot.coverage_pct,
                violations_by_severity=tot.by_severity(),
                uptime_pct=uptime,
                quality_score_avg=tot.quality_avg,
                quality_score_min=tot.quality_min,
                quality_score_max=tot.quality_max,
                error_budget=_budget(p.targets.get(ctype, p.default_target_pct), compliance, uptime),
                mttd_seconds=tot.mttd_seconds,
                detections=tot.detections,
                mttr_seconds=mean(resolved),
                incidents_resolved=len(resolved),
                weekly=weekly,
            )
        )
    overall = total_of([p.totals[c] for c in types])
    weeks = [_bucket(s, e, total_of(list(week.values()))) for s, e, week in p.weeks]
    freshness = p.totals.get(ViolationType.FRESHNESS.value)
    quality_weekly = [None if w.quality_score_avg is None else w.quality_score_avg * 100.0 for w in weeks]
    all_resolved = [s for ctype in p.resolutions for s in p.resolutions[ctype]]
    all_notified = [s for ctype in p.notifications for s in p.notifications[ctype]]
    return SLAComplianceReport(
        contract_name=p.contract_name,
        period_start=p.period_start,
        period_end=p.period_end,
        overall_compliance_pct=_compliance(overall.passed, overall.evaluated),
        check_summaries=summaries,
        total_violations=overall.violation_count,
        total_checks_executed=overall.total,
        monitoring_coverage_pct=overall.coverage_pct,
        generated_at=p.generated_at,
        window=p.window,
        expected_checks=overall.expected,
        uptime_pct=overall.uptime_pct,
        freshness_compliance_pct=None if freshness is None else _compliance(freshness.passed, freshness.evaluated),
        quality_score_avg=overall.quality_avg,
        # Scores are 0..1: trended in percentage points so the spec's +-2.0 threshold means the same.
        quality_trend=compute_trend(quality_weekly),
        trend=compute_trend([w.compliance_pct for w in weeks]),
        violations_by_type={c: p.totals[c].violation_count for c in types},
        violations_by_severity=overall.by_severity(),
        weekly=weeks,
        mttd_seconds=overall.mttd_seconds,
        mttr_seconds=mean(all_resolved),
        mttn_seconds=mean(all_notified),
        notifications=len(all_notified),
        response_promises=_promises(p.response, overall, all_notified, all_resolved),
        days_from_aggregates=p.days_from_aggregates,
        days_from_raw_rows=p.days_from_raw_rows,
    )


def _promises(
    response: ResponseSLA | None, overall: Totals, notified: Sequence[float], resolved: Sequence[float]
) -> list[ResponsePromise]:
    """Each response promise of the contract against the mean the period measured (met: mean <= target)."""
    if response is None:
        return []
    measured = (
        ("timeToDetect", response.time_to_detect, overall.mttd_seconds, overall.detections),
        ("timeToNotify", response.time_to_notify, mean(notified), len(notified)),
        ("timeToRepair", response.time_to_repair, mean(resolved), len(resolved)),
    )
    return [
        ResponsePromise(
            promise=name,
            target_seconds=target.total_seconds(),
            measured_seconds=value,
            samples=samples,
            met=None if value is None else value <= target.total_seconds(),
        )
        for name, target, value, samples in measured
        if target is not None
    ]
