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


def total_of(items: Sequence[Totals]) -> Totals:
    out = Totals()
    for item in items:
        out = out + item
    return out


def compute_trend(values: Sequence[float | None], threshold: float = TREND_THRESHOLD) -> TrendDirection:
    """Least-squares slope over the points in order (None points dropped): >= +threshold improving,
    <= -threshold degrading, else stable; fewer than two points is stable (spec 9.8)."""
    ys = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(ys)
    if n < 2:
        return TrendDirection.STABLE
    mean_x = (n - 1) / 2.0
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(ys))
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
