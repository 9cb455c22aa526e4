"""The SLA compliance report (spec 7.7, extended with what US6-1..3 ask for).

`SLAComplianceReport` and `CheckTypeSummary` keep every field of the spec model under its name and type, but
for one deliberate change: a compliance % with nothing evaluated (no check ran, or every one was skipped) is
None, "no data", where the spec says 0.0, so a period before monitoring began never reads as 0 % compliant
(issue 14). The additions (uptime, freshness compliance, quality scores and trend, violations by type and severity,
weekly buckets, error budgets, MTTD / MTTR, coverage) come after them. All frozen, unknown fields
rejected; `model_dump(mode="json")` is the JSON of `floe sla report --format json`.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from floe_monitoring_defs.models import ViolationType, ensure_utc

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TrendDirection(str, Enum):
    """Direction of the least-squares slope of weekly values (spec 9.8)."""

    IMPROVING = "improving"
    DEGRADING = "degrading"
    STABLE = "stable"


class ReportWindow(str, Enum):
    """The report windows of `floe sla report --window` and their length in whole UTC days."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"

    @property
    def days(self) -> int:
        return {ReportWindow.DAILY: 1, ReportWindow.WEEKLY: 7, ReportWindow.MONTHLY: 30}[self]


class ErrorBudget(BaseModel):
    """The error budget of one check type over the report period.

    `sli_pct` is the measured level: uptime % for availability (when pings were graded), compliance % for
    the other types. budget = 100 - target; consumed = 100 - SLI; remaining = budget - consumed (negative
    when overspent); burn_rate = consumed / budget (1.0 spends exactly the budget over the period; None
    when the target is 100 % and anything was consumed).
    """

    model_config = _FROZEN

    target_pct: float = Field(ge=0, le=100)
    sli: str  # "uptime" | "compliance"
    sli_pct: float = Field(ge=0, le=100)
    budget_pct: float = Field(ge=0, le=100)
    consumed_pct: float = Field(ge=0, le=100)
    remaining_pct: float
    burn_rate: float | None = Field(default=None, ge=0)
    exhausted: bool


class WeeklyBucket(BaseModel):
    """One of the four 7-day buckets before the report's day, computed on its own."""

    model_config = _FROZEN

    # Aware datetimes (checked in pydantic-core, not a Python validator: a fleet report holds thousands).
    start: AwareDatetime
    end: AwareDatetime
    total_checks: int = Field(ge=0)
    passed_checks: int = Field(ge=0)
    evaluated_checks: int = Field(ge=0)  # total - skipped: the denominator of compliance
    compliance_pct: float | None = Field(default=None, ge=0, le=100)  # None: nothing evaluated that week
    violation_count: int = Field(0, ge=0)
    quality_score_avg: float | None = None
    uptime_pct: float | None = Field(default=None, ge=0, le=100)


class CheckTypeSummary(BaseModel):
    """One check type of one contract over the period (spec 7.7 fields first)."""

    model_config = _FROZEN

    check_type: ViolationType
    total_checks: int = Field(ge=0)
    passed_checks: int = Field(ge=0)
    failed_checks: int = Field(ge=0)
    error_checks: int = Field(ge=0)
    compliance_pct: float | None = Field(ge=0, le=100)  # None: nothing evaluated ("no data")
    avg_duration_seconds: float = Field(ge=0)
    violation_count: int = Field(ge=0)
    trend: TrendDirection = TrendDirection.STABLE
    # -- additions -----------------------------------------------------------------------------------
    skipped_checks: int = Field(0, ge=0)
    expected_checks: int | None = Field(default=None, ge=0)
    monitoring_coverage_pct: float | None = Field(default=None, ge=0, le=100)
    violations_by_severity: dict[str, int] = Field(default_factory=dict)
    uptime_pct: float | None = Field(default=None, ge=0, le=100)
    quality_score_avg: float | None = None
    quality_score_min: float | None = None
    quality_score_max: float | None = None
    error_budget: ErrorBudget | None = None
    mttd_seconds: float | None = Field(default=None, ge=0)
    detections: int = Field(0, ge=0)
    mttr_seconds: float | None = Field(default=None, ge=0)
    incidents_resolved: int = Field(0, ge=0)
    weekly: list[WeeklyBucket] = Field(default_factory=list)


class ResponsePromise(BaseModel):
    """An ODCS promise about the response to problems (`timeToDetect`, `timeToNotify`, `timeToRepair`) against
    what the monitor's own history measured over the period: mean detection delay (MTTD), mean time from
    detection to the first delivered alert (MTTN), mean incident resolution (MTTR)."""

    model_config = _FROZEN

    promise: str  # timeToDetect | timeToNotify | timeToRepair
    target_seconds: float = Field(ge=0)
    measured_seconds: float | None = Field(default=None, ge=0)  # None: nothing to measure in the period
    samples: int = Field(0, ge=0)
    met: bool | None = None  # None when nothing was measured


class SLAComplianceReport(BaseModel):
    """SLA compliance of one contract over a window (spec 7.7 fields first)."""

    model_config = _FROZEN

    contract_name: str
    period_start: datetime
    period_end: datetime
    overall_compliance_pct: float | None = Field(ge=0, le=100)  # None: nothing evaluated ("no data")
    check_summaries: list[CheckTypeSummary]
    total_violations: int = Field(ge=0)
    total_checks_executed: int = Field(ge=0)
    # Spec: "% of expected checks that executed". None when no cadence is known for the period.
    monitoring_coverage_pct: float | None = Field(default=None, ge=0, le=100)
    generated_at: datetime
    # -- additions -----------------------------------------------------------------------------------
    window: str
    expected_checks: int | None = Field(default=None, ge=0)
    uptime_pct: float | None = Field(default=None, ge=0, le=100)
    freshness_compliance_pct: float | None = Field(default=None, ge=0, le=100)
    quality_score_avg: float | None = None
    quality_trend: TrendDirection = TrendDirection.STABLE
    trend: TrendDirection = TrendDirection.STABLE
    violations_by_type: dict[str, int] = Field(default_factory=dict)
    violations_by_severity: dict[str, int] = Field(default_factory=dict)
    weekly: list[WeeklyBucket] = Field(default_factory=list)
    mttd_seconds: float | None = Field(default=None, ge=0)
    mttr_seconds: float | None = Field(default=None, ge=0)
    mttn_seconds: float | None = Field(default=None, ge=0)  # detection -> first delivered alert
    notifications: int = Field(0, ge=0)
    response_promises: list[ResponsePromise] = Field(default_factory=list)
    days_from_aggregates: int = Field(0, ge=0)
    days_from_raw_rows: int = Field(0, ge=0)  # today (partial) and any day not aggregated yet

    @field_validator("period_start", "period_end", "generated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value)
