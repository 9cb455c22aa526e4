"""SLA compliance: daily aggregates, compliance windows, weekly trends, error budgets, MTTD / MTTR.

Pure math and models live here (`compliance`, `build`, `expected`, `model`, `render`); the SQL is in
`store.aggregates`; `report.SLAReporter` joins the two. No Dagster imports.
"""

from floe_monitoring_defs.sla.compliance import (
    DEFAULT_TARGET_PCT,
    TREND_THRESHOLD,
    Totals,
    compliance_pct,
    compute_trend,
    coverage_pct,
    error_budget,
)
from floe_monitoring_defs.sla.expected import Expectation, expectations_for
from floe_monitoring_defs.sla.model import (
    CheckTypeSummary,
    ErrorBudget,
    ReportWindow,
    SLAComplianceReport,
    TrendDirection,
    WeeklyBucket,
)

__all__ = [
    "DEFAULT_TARGET_PCT",
    "TREND_THRESHOLD",
    "CheckTypeSummary",
    "ErrorBudget",
    "Expectation",
    "ReportWindow",
    "SLAComplianceReport",
    "Totals",
    "TrendDirection",
    "WeeklyBucket",
    "compliance_pct",
    "compute_trend",
    "coverage_pct",
    "error_budget",
    "expectations_for",
]
