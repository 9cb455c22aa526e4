"""SLA compliance: daily aggregates, compliance windows, weekly trends, error budgets, MTTD / MTTR.

Pure math and models live here (`compliance`, `build`, `model`, `render`); the totals and expectations they
work on are shared models (`models.sla`); the SQL is in `store.aggregates`; `report.SLAReporter` joins the
two. `monitored` reads when monitoring began (the first day with check results) and `settings` where the
`contract_sla_daily` partitions start. A leaf over the store: nothing in the core imports this package. No
Dagster imports.
"""

from floe_monitoring_defs.models.sla import Expectation, Totals, compliance_pct, coverage_pct
from floe_monitoring_defs.sla.compliance import DEFAULT_TARGET_PCT, TREND_THRESHOLD, compute_trend, error_budget
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
]
