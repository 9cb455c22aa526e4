"""Severity rules (FR-024): INFO at 80 % of the SLA consumed, WARNING at 90 %, ERROR on breach,
CRITICAL when the same contract + check type failed more than `critical_count` times in the window.
"""

from __future__ import annotations

from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.models import ViolationSeverity


def consumption_severity(pct: float, thresholds: SeverityThresholds) -> ViolationSeverity | None:
    """Severity for `pct` % of an SLA consumed; None below the INFO threshold."""
    if pct > 100.0:
        return ViolationSeverity.ERROR
    if pct >= thresholds.warning_pct:
        return ViolationSeverity.WARNING
    if pct >= thresholds.info_pct:
        return ViolationSeverity.INFO
    return None


def escalate(severity: ViolationSeverity, prior_failures: int, thresholds: SeverityThresholds) -> ViolationSeverity:
    """CRITICAL for a failing violation when `critical_count` failures already happened in the window.

    "More than 3 in 24 h" (spec) = this failure is at least the 4th. A check run counts once however
    many findings it had, so one run with three drifts does not escalate the next one by itself.
    INFO is an early warning, not a failure, and never escalates.
    """
    if severity >= ViolationSeverity.WARNING and prior_failures >= thresholds.critical_count:
        return ViolationSeverity.CRITICAL
    return severity
