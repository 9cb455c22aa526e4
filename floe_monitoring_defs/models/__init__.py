"""Value objects shared by every part of the monitor: the spec's data model (`events`), what a check
evaluates to (`outcome`), availability pings and windows (`availability`) and SLA totals and
expectations (`sla`). The bottom layer: nothing here imports another part of the package.
"""

from floe_monitoring_defs.models.availability import AvailabilityWindow, PingResult, uptime_pct
from floe_monitoring_defs.models.commits import DataCommit
from floe_monitoring_defs.models.events import (
    KIND_NAME,
    SEVERITIES,
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    RecordedCheck,
    SLAStatus,
    ViolationSeverity,
    ViolationType,
    ensure_utc,
    utcnow,
)
from floe_monitoring_defs.models.outcome import CheckOutcome, Finding, error_outcome
from floe_monitoring_defs.models.sla import (
    DAY_MINUTES,
    Expectation,
    Key,
    Totals,
    compliance_pct,
    coverage_pct,
    expected_from_stored,
)

__all__ = [
    "DAY_MINUTES",
    "KIND_NAME",
    "SEVERITIES",
    "AvailabilityWindow",
    "CheckOutcome",
    "CheckResult",
    "CheckStatus",
    "ContractViolationEvent",
    "DataCommit",
    "Expectation",
    "Finding",
    "Key",
    "PingResult",
    "RecordedCheck",
    "SLAStatus",
    "Totals",
    "ViolationSeverity",
    "ViolationType",
    "compliance_pct",
    "coverage_pct",
    "ensure_utc",
    "error_outcome",
    "expected_from_stored",
    "uptime_pct",
    "utcnow",
]
