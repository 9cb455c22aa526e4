"""Lifecycle (ODCS `endOfSupport` / `endOfLife`): the data product's end dates, as `deprecation` violations.

INFO from `notice` (30 days) before the first of the two dates; WARNING from endOfSupport (the product is no
longer supported: consumers should move); ERROR from endOfLife (it is retired: whoever still reads it is
reading data nobody stands behind). Dates are whole UTC days; a date is reached at its midnight. Pure
calendar: no table is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, moment
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import LifecycleSLA, MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    Finding,
    ViolationSeverity,
    ViolationType,
    ensure_utc,
)

KIND = ViolationType.DEPRECATION


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def evaluate_lifecycle(sla: LifecycleSLA, *, now: datetime, contract: str) -> CheckOutcome:
    """Grade today against the contract's end-of-support and end-of-life dates (pure)."""
    now = ensure_utc(now)
    details: dict[str, object] = {"method": "calendar"}
    if sla.end_of_support:
        details["end_of_support"] = sla.end_of_support.isoformat()
    if sla.end_of_life:
        details["end_of_life"] = sla.end_of_life.isoformat()
    finding: Finding | None = None
    if sla.end_of_life and now >= _midnight(sla.end_of_life):
        finding = Finding(
            kind="end_of_life",
            severity=ViolationSeverity.ERROR,
            message=f"Contract {contract} reached its end of life on {sla.end_of_life.isoformat()}: it is retired",
            expected=f"before {sla.end_of_life.isoformat()}",
            actual=now.date().isoformat(),
        )
    elif sla.end_of_support and now >= _midnight(sla.end_of_support):
        until = f"; end of life {sla.end_of_life.isoformat()}" if sla.end_of_life else ""
        finding = Finding(
            kind="end_of_support",
            severity=ViolationSeverity.WARNING,
            message=f"Contract {contract} is past its end of support ({sla.end_of_support.isoformat()}){until}",
            expected=f"before {sla.end_of_support.isoformat()}",
            actual=now.date().isoformat(),
        )
    else:
        dates = [d for d in (sla.end_of_support, sla.end_of_life) if d is not None]
        first = min(dates) if dates else None
        if first is not None and now >= _midnight(first) - sla.notice:
            days = (_midnight(first) - now).days + 1
            which = "end of support" if first == sla.end_of_support else "end of life"
            finding = Finding(
                kind="end_approaching",
                severity=ViolationSeverity.INFO,
                message=f"Contract {contract} reaches its {which} on {first.isoformat()} (in {days} days)",
                expected=f"{which} after {first.isoformat()}",
                actual=now.date().isoformat(),
            )
    if finding is None:
        return CheckOutcome(KIND, CheckStatus.PASS, details=details)
    status = CheckStatus.PASS if finding.severity is ViolationSeverity.INFO else CheckStatus.FAIL
    return CheckOutcome(KIND, status, findings=(finding,), details=details)


class DeprecationKind(CheckKind):
    """Checks contracts with an `endOfSupport` or `endOfLife` SLA."""

    name = KIND.value
    description = "The contract's end-of-support and end-of-life dates"
    failure_label = "deprecated"
    default_minutes = 1440

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        lc = contract.lifecycle
        return lc is not None and (lc.end_of_support is not None or lc.end_of_life is not None)

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        d = outcome.details
        # the dates as timestamps of their UTC midnight, when they take effect
        return {k: moment(d[k]) or d[k] for k in ("end_of_support", "end_of_life") if d.get(k) is not None}

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        if contract.lifecycle is None:
            return CheckOutcome(KIND, CheckStatus.SKIPPED, reason="the contract has no endOfSupport / endOfLife")
        return evaluate_lifecycle(contract.lifecycle, now=ctx.clock(), contract=contract.name)
