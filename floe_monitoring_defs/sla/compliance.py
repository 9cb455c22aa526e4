"""SLA compliance math (spec 9.8, made exact): pure functions over additive totals, no SQL, no Dagster.

`Totals` (models.sla) holds sums and counts only, so days add up exactly over any window: a window's
figures are derived from the sum of its days' totals, never from an average of daily percentages.

Choices (the spec leaves them open):
- compliance % = passed / (total - skipped) * 100. ERROR results (the check could not complete) count
  against compliance: an unmonitorable table is not a compliant one. SKIPPED results (e.g. the quality
  engine is not installed) said nothing about the data and are left out. No evaluated check: 0.0 (spec).
- overall compliance = the same ratio over the sums of every check type.
- coverage % = sum over days of min(executed, expected) / sum of expected * 100, where executed = every
  stored result (skipped ones too: the schedule did run) and expected = 1440 / interval per table; days
  without a known cadence are left out (None when none is known).
- uptime % = successful pings / graded pings, over the results' `ping_ok` evidence (availability's).
- MTTD = mean delay from the last PASS to the FAIL that follows it (same contract, type and table): the
  longest a problem can have gone unnoticed. MTTR = mean of incident resolved_at - created_at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from floe_monitoring_defs.models.sla import Totals
from floe_monitoring_defs.sla.model import ErrorBudget, TrendDirection

TREND_THRESHOLD = 2.0  # spec 9.8: slope per week, in percentage points
DEFAULT_TARGET_PCT = 99.0  # compliance target of check types whose contract names none
_SXX: dict[int, float] = {}  # sum of (x - mean x)^2 over 0..n-1, by n


def total_of(items: Sequence[Totals]) -> Totals:
    """The sum of `items` (what adding them up with `+` gives, in the same order), built once: the fields are
    summed as plain numbers rather than through a new `Totals` per addition."""
    if len(items) == 1:
        return items[0]
    total = passed = failed = error = skipped = quality_n = ping_n = ping_ok = covered = detections = 0
    duration = quality_sum = detection_seconds = 0.0
    quality_min: float | None = None
    quality_max: float | None = None
    expected: int | None = None
    violations: dict[str, int] = {}
    for t in items:
        total += t.total
        passed += t.passed
        failed += t.failed
        error += t.error
        skipped += t.skipped
        duration += t.duration_sum
        quality_n += t.quality_n
        quality_sum += t.quality_sum
        if t.quality_min is not None and (quality_min is None or t.quality_min < quality_min):
            quality_min = t.quality_min
        if t.quality_max is not None and (quality_max is None or t.quality_max > quality_max):
            quality_max = t.quality_max
        ping_n += t.ping_n
        ping_ok += t.ping_ok
        for severity, count in t.violations.items():
            violations[severity] = violations.get(severity, 0) + count
        if t.expected is not None:
            expected = t.expected if expected is None else expected + t.expected
        covered += t.covered
        detections += t.detections
        detection_seconds += t.detection_seconds
    return Totals(
        total=total,
        passed=passed,
        failed=failed,
        error=error,
        skipped=skipped,
        duration_sum=duration,
        quality_n=quality_n,
        quality_sum=quality_sum,
        quality_min=quality_min,
        quality_max=quality_max,
        ping_n=ping_n,
        ping_ok=ping_ok,
        violations=violations,
        expected=expected,
        covered=covered,
        detections=detections,
        detection_seconds=detection_seconds,
    )


def compute_trend(values: Sequence[float | None], threshold: float = TREND_THRESHOLD) -> TrendDirection:
    """Least-squares slope over the points in order (None points dropped): >= +threshold improving,
    <= -threshold degrading, else stable; fewer than two points is stable (spec 9.8)."""
    ys = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(ys)
    if n < 2:
        return TrendDirection.STABLE
    mean_x = (n - 1) / 2.0
    mean_y = sum(ys) / n
    sxx = _SXX.get(n)
    if sxx is None:
        sxx = _SXX[n] = sum((x - mean_x) ** 2 for x in range(n))
    sxy = 0.0
    for x, y in enumerate(ys):  # a loop, not a generator: a fleet report trends thousands of series
        sxy += (x - mean_x) * (y - mean_y)
    slope = sxy / sxx
    if slope >= threshold:
        return TrendDirection.IMPROVING
    if slope <= -threshold:
        return TrendDirection.DEGRADING
    return TrendDirection.STABLE


def error_budget(target_pct: float, sli_pct: float, sli: str = "compliance") -> ErrorBudget:
    """Budget = 100 - target; consumed = 100 - SLI; remaining = budget - consumed; burn = consumed / budget."""
    target = min(100.0, max(0.0, target_pct))
    level = min(100.0, max(0.0, sli_pct))
    budget = 100.0 - target
    consumed = 100.0 - level
    if budget > 0:
        burn: float | None = consumed / budget
    else:
        burn = 0.0 if consumed == 0 else None
    return ErrorBudget(
        target_pct=target,
        sli=sli,
        sli_pct=level,
        budget_pct=budget,
        consumed_pct=consumed,
        remaining_pct=budget - consumed,
        burn_rate=burn,
        exhausted=consumed > budget,
    )


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
