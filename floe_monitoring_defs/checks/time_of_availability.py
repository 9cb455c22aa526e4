"""Time of availability (ODCS `timeOfAvailability`): the day's data is there by a daily deadline.

The deadline is a time of day in the contract's time zone (UTC unless it says otherwise). At each deadline a
data-changing snapshot must exist since the previous deadline: when the last deadline passed without one,
the check is ERROR (the table existed before the window began; a table created inside it is judged from its
first full window on). Between deadlines the wait for the next delivery is graded like freshness: INFO at
`info_pct` % of the day to the next deadline consumed without new data, WARNING at `warning_pct` %.
Snapshot metadata only: no data file is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, moment
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
from floe_monitoring_defs.sources import history
from floe_monitoring_defs.sources.base import TableNotFoundError

KIND = ViolationType("time_of_availability")


def deadlines(now: datetime, at: time, zone: ZoneInfo) -> tuple[datetime, datetime, datetime]:
    """(previous, last, next) deadlines around `now`: `last` is the newest one at or before `now` (UTC)."""
    local = ensure_utc(now).astimezone(zone)

    def on(day_offset: int) -> datetime:
        day = local.date() + timedelta(days=day_offset)
        return datetime.combine(day, at, tzinfo=zone).astimezone(ensure_utc(now).tzinfo)

    today = on(0)
    last_offset = 0 if today <= ensure_utc(now) else -1
    return on(last_offset - 1), on(last_offset), on(last_offset + 1)


def evaluate_time_of_availability(
    commits: Sequence[datetime],
    born: datetime | None,
    *,
    now: datetime,
    at: time,
    zone: ZoneInfo,
    text: str,
    thresholds: SeverityThresholds,
    tolerance_seconds: float,
) -> CheckOutcome:
    """Grade the deliveries (data-changing commit times) against the daily deadline (pure)."""
    now = ensure_utc(now)
    previous, last, following = deadlines(now, at, zone)
    slack = timedelta(seconds=tolerance_seconds)
    delivered_for_last = [c for c in commits if previous < ensure_utc(c) <= last + slack]
    since_last = [c for c in commits if ensure_utc(c) > last]
    details: dict[str, object] = {
        "deadline": text,
        "last_deadline": last.isoformat(),
        "next_deadline": following.isoformat(),
        "delivered_for_last_deadline": bool(delivered_for_last),
        "delivered_since_last_deadline": bool(since_last),
        "method": "snapshot",
    }
    if commits:
        details["last_update"] = max(ensure_utc(c) for c in commits).isoformat()
    due = born is not None and ensure_utc(born) <= previous
    if due and not delivered_for_last:
        finding = Finding(
            kind="missed_deadline",
            severity=ViolationSeverity.ERROR,
            message=(
                f"No new data between the deadlines {previous:%Y-%m-%d %H:%M} and {last:%Y-%m-%d %H:%M} UTC; "
                f"the contract promises the day's data by {text}"
            ),
            expected=f"a data-changing commit by {last.isoformat()}",
            actual="none since " + previous.isoformat(),
            metadata={"last_deadline": last.isoformat()},
        )
        return CheckOutcome(KIND, CheckStatus.FAIL, findings=(finding,), details=details)
    if since_last:
        return CheckOutcome(KIND, CheckStatus.PASS, details=details)
    window = (following - last).total_seconds()
    pct = (now - last).total_seconds() / window * 100.0
    details["day_consumed_pct"] = round(pct, 2)
    severity = consumption_severity(pct, thresholds)
    if severity is None or severity is ViolationSeverity.ERROR:  # ERROR only once the deadline has passed
        return CheckOutcome(KIND, CheckStatus.PASS, details=details)
    finding = Finding(
        kind="deadline_approaching",
        severity=severity,
        message=(
            f"No new data yet for the {following:%Y-%m-%d %H:%M} UTC deadline ({text}): {pct:.0f}% of the "
            "time to it has passed"
        ),
        expected=f"a data-changing commit by {following.isoformat()}",
        actual="none since " + last.isoformat(),
        metadata={"next_deadline": following.isoformat(), "day_consumed_pct": f"{pct:.1f}"},
    )
    status = CheckStatus.PASS if severity is ViolationSeverity.INFO else CheckStatus.FAIL
    return CheckOutcome(KIND, status, findings=(finding,), details=details)


class TimeOfAvailabilityKind(CheckKind):
    """Checks contracts with a `timeOfAvailability` SLA."""

    name = KIND.value
    description = "A data-changing snapshot since the previous daily deadline, by the contract's time of availability"
    failure_label = "late"
    default_minutes = 15

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return contract.time_of_availability is not None

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        d = outcome.details
        keys = (
            "last_deadline",
            "next_deadline",
            "delivered_for_last_deadline",
            "delivered_since_last_deadline",
            "last_update",
            "day_consumed_pct",
        )
        times = ("last_deadline", "next_deadline", "last_update")  # shown as timestamps
        return {k: (moment(d[k]) or d[k]) if k in times else d[k] for k in keys if d.get(k) is not None}

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        sla = contract.time_of_availability
        if sla is None:
            return CheckOutcome(KIND, CheckStatus.SKIPPED, reason="the contract has no timeOfAvailability SLA")
        try:
            zone = ZoneInfo(sla.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return error_outcome(KIND, f"unknown time zone {sla.timezone!r} in the timeOfAvailability SLA")
        try:
            loaded = ctx.source.load_table(table.ref)
        except TableNotFoundError as exc:
            return error_outcome(KIND, str(exc), table=table.ref.identifier)
        return evaluate_time_of_availability(
            history.data_commits(loaded),
            history.table_born(loaded),
            now=ctx.clock(),
            at=sla.time_of_day,
            zone=zone,
            text=sla.text,
            thresholds=config.severity_thresholds,
            tolerance_seconds=config.clock_skew_tolerance_seconds,
        )
