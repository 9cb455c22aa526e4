"""What a check kind's evaluation returns, before the runner adds contract metadata, escalation and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from floe_monitoring_defs.models.events import CheckStatus, ViolationSeverity, ViolationType


@dataclass(frozen=True)
class Finding:
    """One violation as a check sees it: one per drift, one per breached SLA."""

    kind: str  # "stale", "column_added", "type_changed", ...
    severity: ViolationSeverity
    message: str
    element: str | None = None
    expected: str | None = None
    actual: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckOutcome:
    check_type: ViolationType
    status: CheckStatus
    findings: tuple[Finding, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why ERROR / SKIPPED
    measured_value: float | None = None  # age in seconds, uptime %, score
    threshold: float | None = None

    @property
    def max_severity(self) -> ViolationSeverity | None:
        return max((f.severity for f in self.findings), default=None, key=lambda s: s.rank)

    @property
    def failing(self) -> tuple[Finding, ...]:
        """Findings that fail the check (WARNING and above); INFO is an early warning only."""
        return tuple(f for f in self.findings if f.severity >= ViolationSeverity.WARNING)


def error_outcome(check_type: ViolationType, reason: str, **details: Any) -> CheckOutcome:
    return CheckOutcome(check_type, CheckStatus.ERROR, reason=reason, details={"error": reason, **details})
