"""SLA compliance math (spec 9.8, made exact): pure functions over additive totals, no SQL, no Dagster.

`Totals` holds sums and counts only, so days add up exactly over any window: a window's figures are
derived from the sum of its days' totals, never from an average of daily percentages.

Choices (the spec leaves them open):
- compliance % = passed / (total - skipped) * 100. ERROR results (the check could not complete) count
  against compliance: an unmonitorable table is not a compliant one. SKIPPED results (e.g. the quality
  engine is not installed) said nothing about the data and are left out. No evaluated check: 0.0 (spec).
- overall compliance = the same ratio over the sums of every check type.
- coverage % = sum over days of min(executed, expected) / sum of expected * 100, where executed = every
  stored result (skipped ones too: the schedule did run) and expected = 1440 / interval per table; days
  without a known cadence are left out (None when none is known).
- uptime % = successful pings / graded pings, over the availability results' `ping_ok`.
- MTTD = mean delay from the last PASS to the FAIL that follows it (same contract, type and table): the
  longest a problem can have gone unnoticed. MTTR = mean of incident resolved_at - created_at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from floe_monitoring_defs.sla.model import SEVERITIES, ErrorBudget, TrendDirection

TREND_THRESHOLD = 2.0  # spec 9.8: slope per week, in percentage points
DEFAULT_TARGET_PCT = 99.0  # compliance target of check types whose contract names none


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(slots=True)
class Totals:
    """Counts and sums of one (contract, check type) over some period; `+` combines two periods.

    Treated as a value (every operation returns a new one); not frozen only because a frozen dataclass
    is several times slower to build, and a fleet report adds up tens of thousands of these.
    """

    total: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0
    duration_sum: float = 0.0
    quality_n: int = 0
    quality_sum: float = 0.0
    quality_min: float | None = None
    quality_max: float | None = None
    ping_n: int = 0
    ping_ok: int = 0
    violations: dict[str, int] = field(default_factory=dict)  # severity -> count
    expected: int | None = None  # sum of expected checks over the days whose cadence is known
    covered: int = 0  # sum over those days of min(executed, expected)
    detections: int = 0
    detection_seconds: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        if not isinstance(other, Totals):
            return NotImplemented
        a, b = self.violations, other.violations
        return Totals(
            total=self.total + other.total,
            passed=self.passed + other.passed,
            failed=self.failed + other.failed,
            error=self.error + other.error,
            skipped=self.skipped + other.skipped,
            duration_sum=self.duration_sum + other.duration_sum,
            quality_n=self.quality_n + other.quality_n,
            quality_sum=self.quality_sum + other.quality_sum,
            quality_min=_min(self.quality_min, other.quality_min),
            quality_max=_max(self.quality_max, other.quality_max),
            ping_n=self.ping_n + other.ping_n,
            ping_ok=self.ping_ok + other.ping_ok,
            violations={s: a.get(s, 0) + b.get(s, 0) for s in {*a, *b}} if a and b else dict(a or b),
            expected=None
            if self.expected is None and other.expected is None
            else (self.expected or 0) + (other.expected or 0),
            covered=self.covered + other.covered,
            detections=self.detections + other.detections,
            detection_seconds=self.detection_seconds + other.detection_seconds,
        )

    def with_expected(self, expected: int | None) -> Totals:
        """These totals over one day (or one raw range) whose cadence expected `expected` checks."""
        if expected is None:
            return replace(self, expected=None, covered=0)
        return replace(self, expected=expected, covered=min(self.total, expected))

    @property
    def evaluated(self) -> int:
        return self.total - self.skipped

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())

    @property
    def compliance_pct(self) -> float:
        return compliance_pct(self.passed, self.total, self.skipped)

    @property
    def avg_duration_seconds(self) -> float:
        return self.duration_sum / self.total if self.total else 0.0

    @property
    def quality_avg(self) -> float | None:
        return self.quality_sum / self.quality_n if self.quality_n else None

    @property
    def uptime_pct(self) -> float | None:
        return self.ping_ok / self.ping_n * 100.0 if self.ping_n else None

    @property
    def coverage_pct(self) -> float | None:
        return coverage_pct(self.covered, self.expected)

    @property
    def mttd_seconds(self) -> float | None:
        return self.detection_seconds / self.detections if self.detections else None

    def by_severity(self) -> dict[str, int]:
        return {s: int(self.violations.get(s, 0)) for s in SEVERITIES}


def total_of(items: Sequence[Totals]) -> Totals:
    out = Totals()
    for item in items:
        out = out + item
    return out


def compliance_pct(passed: int, total: int, skipped: int = 0) -> float:
    """passed / (total - skipped) * 100; 0.0 when nothing was evaluated (spec 9.8)."""
    evaluated = total - skipped
    if evaluated <= 0:
        return 0.0
    return min(100.0, max(0.0, passed / evaluated * 100.0))


def coverage_pct(covered: int, expected: int | None) -> float | None:
    """min(100, executed / expected * 100) with `covered` already capped per day; None without a cadence."""
    if not expected:
        return None
    return min(100.0, covered / expected * 100.0)


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
