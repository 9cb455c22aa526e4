"""SLA value objects shared by the store (which sums and stores them) and the SLA reports (which read them).

`Totals` holds sums and counts only, so days add up exactly over any window: a window's figures are
derived from the sum of its days' totals, never from an average of daily percentages. `Expectation`
is what a contract's cadence owes for one check type. The choices behind each figure are documented
in `sla.compliance`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime

from floe_monitoring_defs.models.events import SEVERITIES, ensure_utc

DAY_MINUTES = 1440
Key = tuple[str, str]  # (contract name, check type value)


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


@dataclass(frozen=True)
class Expectation:
    """The cadence and target in force for one (contract, check type)."""

    interval_minutes: int | None  # None: not scheduled (on_demand mode, disabled), nothing is expected
    tables: int
    target_pct: float | None

    @property
    def per_day(self) -> int | None:
        if self.interval_minutes is None:
            return None
        return self.tables * (DAY_MINUTES // self.interval_minutes)

    def expected_between(self, start: datetime, end: datetime) -> int | None:
        """Checks the schedule owes in [start, end): ticks at multiples of the interval since midnight UTC."""
        if self.interval_minutes is None:
            return None
        step = self.interval_minutes * 60
        s, e = ensure_utc(start).timestamp(), ensure_utc(end).timestamp()
        if e <= s:
            return 0
        return self.tables * (math.ceil(e / step) - math.ceil(s / step))


def expected_from_stored(
    expected_per_day: int | None, interval_minutes: int | None, target_pct: float | None
) -> Expectation | None:
    """The expectation a stored aggregate row recorded (tables = expected per day / ticks per day)."""
    if expected_per_day is None or not interval_minutes or DAY_MINUTES % interval_minutes:
        return None
    tables = round(expected_per_day * interval_minutes / DAY_MINUTES)
    return Expectation(interval_minutes=interval_minutes, tables=tables, target_pct=target_pct)
