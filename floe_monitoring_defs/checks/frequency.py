"""Frequency (ODCS `frequency`): the table is updated as often as promised.

The newest data-changing snapshot on the table's current ancestry (compactions do not count) must be no
older than the frequency plus the clock-skew tolerance. Graded like freshness: INFO at `info_pct` % of the
interval consumed, WARNING at `warning_pct` %, ERROR past it. Snapshot metadata only: no data file is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, format_age, moment
from floe_monitoring_defs.checks.severity import consumption_severity
from floe_monitoring_defs.config import MonitoringConfig, SeverityThresholds
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    Finding,
    ViolationSeverity,
    ViolationType,
    ensure_utc,
    error_outcome,
)
from floe_monitoring_defs.sources.base import TableNotFoundError

KIND = ViolationType("frequency")


def evaluate_frequency(
    last_commit: datetime | None,
    *,
    now: datetime,
    interval: timedelta,
    interval_text: str,
    thresholds: SeverityThresholds,
    tolerance_seconds: float,
) -> CheckOutcome:
    """Grade the time since the newest data-changing commit against the promised update interval (pure)."""
    limit = interval.total_seconds()
    base = {
        "interval_seconds": limit,
        "interval": interval_text,
        "tolerance_seconds": tolerance_seconds,
        "method": "snapshot",
    }
    if last_commit is None:
        reason = "the table has no data-changing snapshot yet: it has never been updated"
        return CheckOutcome(KIND, CheckStatus.ERROR, reason=reason, details={**base, "error": "no data"})
    last = ensure_utc(last_commit)
    since = max(0.0, (ensure_utc(now) - last).total_seconds())
    graded = max(0.0, since - tolerance_seconds)
    pct = graded / limit * 100.0
    details = {
        **base,
        "since_update_seconds": round(since, 3),
        "interval_consumed_pct": round(pct, 2),
        "last_update": last.isoformat(),
    }
    severity = consumption_severity(pct, thresholds)
    outcome_kw = {"details": details, "measured_value": since, "threshold": limit}
    if severity is None:
        return CheckOutcome(KIND, CheckStatus.PASS, **outcome_kw)  # type: ignore[arg-type]
    when = last.strftime("%Y-%m-%dT%H:%M:%SZ")
    if pct > 100.0:
        message = (
            f"No data-changing commit for {format_age(since)} (last at {when}); the table promises an "
            f"update every {interval_text}"
        )
        kind = "not_updated"
    else:
        message = (
            f"No data-changing commit for {format_age(since)} (last at {when}): {pct:.0f}% of the "
            f"{interval_text} update frequency consumed"
        )
        kind = "update_due"
    finding = Finding(
        kind=kind,
        severity=severity,
        message=message,
        expected=f"an update every {interval_text}",
        actual=f"{int(since)}s since the last update",
        metadata={"since_update_seconds": f"{since:.0f}", "interval_seconds": f"{limit:.0f}"},
    )
    status = CheckStatus.PASS if severity is ViolationSeverity.INFO else CheckStatus.FAIL
    return CheckOutcome(KIND, status, findings=(finding,), **outcome_kw)  # type: ignore[arg-type]


class FrequencyKind(CheckKind):
    """Checks contracts with a `frequency` SLA."""

    name = KIND.value
    description = "Time since the newest data-changing snapshot against the contract's update frequency"
    failure_label = "not updated"
    default_minutes = 15

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return contract.frequency is not None

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        d = outcome.details
        keys = ("since_update_seconds", "interval_seconds", "interval_consumed_pct", "method")
        out: Evidence = {k: d[k] for k in keys if d.get(k) is not None}
        if (last := moment(d.get("last_update"))) is not None:
            out["last_update"] = last
        return out

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        sla = contract.frequency
        if sla is None:
            return CheckOutcome(KIND, CheckStatus.SKIPPED, reason="the contract has no frequency SLA")
        try:
            reading = ctx.source.last_update(table.ref, None)  # the newest data-changing snapshot
        except TableNotFoundError as exc:
            return error_outcome(KIND, str(exc), table=table.ref.identifier)
        return evaluate_frequency(
            reading.last_update,
            now=ctx.clock(),
            interval=sla.interval,
            interval_text=sla.text,
            thresholds=config.severity_thresholds,
            tolerance_seconds=config.clock_skew_tolerance_seconds,
        )
