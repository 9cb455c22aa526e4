"""Text rendering of `SLAComplianceReport`: the exact 80-column layout of spec section 10, then the extras.

Everything up to the closing `=` rule is the spec's table, character for character, except that a compliance
with nothing evaluated reads `no data` (right-aligned in the same columns) where the spec would print 0.0%;
the sections after it (details, error budgets, violations by severity, MTTD / MTTR, the weekly trend) stay within 80
columns too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from floe_monitoring_defs.models import SEVERITIES
from floe_monitoring_defs.sla.model import SLAComplianceReport

WIDTH = 80
RULE = "=" * WIDTH
LINE = "-" * WIDTH
NA = "-"
NO_DATA = "no data"  # a compliance % with nothing evaluated: never shown as 0.0%


def _pct(value: float | None, digits: int = 1) -> str:
    return NA if value is None else f"{value:.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def _compliance(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.1f}%"


def format_duration(seconds: float | None) -> str:
    """`45s`, `12m 30s`, `3h 05m`, `2d 4h`; `-` for None."""
    if seconds is None:
        return NA
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def format_spec_table(report: SLAComplianceReport) -> list[str]:
    """The spec's table (section 10), line by line."""
    coverage = NA if report.monitoring_coverage_pct is None else f"{report.monitoring_coverage_pct:.1f}%"
    lines = [
        RULE,
        f"SLA COMPLIANCE REPORT: {report.contract_name}",
        RULE,
        f"Period: {report.period_start.isoformat()} to {report.period_end.isoformat()}",
        f"Generated: {report.generated_at.isoformat()}",
        "",
        f"Overall Compliance: {_compliance(report.overall_compliance_pct)}",
        f"Total Violations: {report.total_violations}",
        f"Total Checks Executed: {report.total_checks_executed}",
        f"Monitoring Coverage: {coverage}",
        "",
        "CHECK TYPE SUMMARY",
        LINE,
        "Check Type              Total     Pass     Fail   Compliance        Trend",
        LINE,
    ]
    for s in report.check_summaries:
        lines.append(
            f"{s.check_type.value:<20} {s.total_checks:>8} {s.passed_checks:>8} {s.failed_checks:>8} "
            f"{_compliance(s.compliance_pct):>12} {s.trend.value:>12}"
        )
    lines.append(RULE)
    return lines


def format_extras(report: SLAComplianceReport) -> list[str]:
    """Details below the spec table: coverage, uptime, quality, budgets, severities, MTTD / MTTR, weeks."""
    lines = [
        "",
        f"Uptime (availability): {_pct(report.uptime_pct, 2)}",
        f"Freshness Compliance: {_pct(report.freshness_compliance_pct)}",
        f"Quality Score (avg): {_num(report.quality_score_avg)}   trend: {report.quality_trend.value}",
        f"Expected Checks: {NA if report.expected_checks is None else report.expected_checks}",
        f"Sources: {report.days_from_aggregates} day(s) from daily aggregates, "
        f"{report.days_from_raw_rows} period(s) from raw rows",
        "",
        "DETAILS",
        LINE,
        f"{'Check Type':<20} {'Error':>6} {'Skipped':>8} {'Expected':>9} {'Coverage':>9} {'Uptime':>9} {'Quality':>9}",
        LINE,
    ]
    for s in report.check_summaries:
        expected = NA if s.expected_checks is None else str(s.expected_checks)
        lines.append(
            f"{s.check_type.value:<20} {s.error_checks:>6} {s.skipped_checks:>8} {expected:>9} "
            f"{_pct(s.monitoring_coverage_pct):>9} {_pct(s.uptime_pct, 2):>9} "
            f"{_num(s.quality_score_avg):>9}"
        )
    lines += [
        "",
        "ERROR BUDGET (budget = 100 - target; burn rate 1.0 spends it exactly)",
        LINE,
        f"{'Check Type':<20} {'Target':>8} {'SLI':>8} {'Budget':>8} {'Consumed':>8} {'Left':>8} {'Burn':>10}",
        LINE,
    ]
    for s in report.check_summaries:
        b = s.error_budget
        if b is None:
            lines.append(f"{s.check_type.value:<20} {'(nothing evaluated)':>55}")
            continue
        burn = "n/a" if b.burn_rate is None else f"{b.burn_rate:.2f}"
        lines.append(
            f"{s.check_type.value:<20} {_pct(b.target_pct, 2):>8} {_pct(b.sli_pct, 2):>8} "
            f"{_pct(b.budget_pct, 2):>8} {_pct(b.consumed_pct, 2):>8} {_pct(b.remaining_pct, 2):>8} "
            f"{burn + (' !' if b.exhausted else ''):>10}"
        )
    lines += [
        "",
        "VIOLATIONS BY TYPE AND SEVERITY",
        LINE,
        f"{'Check Type':<20}" + "".join(f" {s.capitalize():>9}" for s in SEVERITIES) + f" {'Total':>9}",
        LINE,
    ]
    for s in report.check_summaries:
        sev = s.violations_by_severity
        lines.append(
            f"{s.check_type.value:<20}"
            + "".join(f" {sev.get(x, 0):>9}" for x in SEVERITIES)
            + f" {s.violation_count:>9}"
        )
    totals = report.violations_by_severity
    lines.append(
        f"{'all':<20}" + "".join(f" {totals.get(x, 0):>9}" for x in SEVERITIES) + f" {report.total_violations:>9}"
    )
    detections = sum(s.detections for s in report.check_summaries)
    resolved = sum(s.incidents_resolved for s in report.check_summaries)
    lines += [
        "",
        f"MTTD (last pass -> detected failure): {format_duration(report.mttd_seconds)} ({detections} detections)",
        f"MTTR (incident opened -> resolved):   {format_duration(report.mttr_seconds)} ({resolved} incidents)",
        f"MTTN (detected -> first delivery):    {format_duration(report.mttn_seconds)} "
        f"({report.notifications} alerts delivered)",
    ]
    for p in report.response_promises:
        verdict = "not measured" if p.met is None else "met" if p.met else "MISSED"
        lines.append(
            f"{p.promise + ' promise':<22}{format_duration(p.target_seconds):>10}   measured "
            f"{format_duration(p.measured_seconds):>10} over {p.samples}: {verdict}"
        )
    lines += _weekly(report)
    lines.append(RULE)
    return lines


def _weekly(report: SLAComplianceReport) -> list[str]:
    if not report.weekly:
        return []
    lines = [
        "",
        "WEEKLY TREND (4 whole weeks before today, each computed on its own)",
        LINE,
        f"{'Week':<24} {'Checks':>8} {'Compliance':>11} {'Violations':>11} {'Quality':>9} {'Uptime':>9}",
        LINE,
    ]
    for w in report.weekly:
        label = f"{w.start.date().isoformat()}..{(w.end - timedelta(days=1)).date().isoformat()}"
        lines.append(
            f"{label:<24} {w.total_checks:>8} {_pct(w.compliance_pct):>11} {w.violation_count:>11} "
            f"{_num(w.quality_score_avg):>9} {_pct(w.uptime_pct, 2):>9}"
        )
    lines.append(f"Trend: {report.trend.value}   quality trend: {report.quality_trend.value}")
    return lines


def format_report(report: SLAComplianceReport, *, extras: bool = True) -> str:
    """The spec table, then (by default) the extra sections."""
    lines = format_spec_table(report)
    if extras:
        lines += format_extras(report)
    return "\n".join(lines)


def format_reports(reports: Sequence[SLAComplianceReport], *, extras: bool = True) -> str:
    return "\n\n".join(format_report(r, extras=extras) for r in reports)
