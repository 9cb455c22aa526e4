"""Freshness: the age of the newest data against the contract's ISO-8601 threshold (FR-007..010).

The kind reads the table's last update from Iceberg metadata (`TableSource.last_update`: the manifests'
upper bounds of the contract's timestamp column, else the newest data-changing snapshot) and grades it
with the pure `evaluate_freshness`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, TableState, format_age, moment
from floe_monitoring_defs.checks.severity import consumption_severity
from floe_monitoring_defs.config import MonitoringConfig, SeverityThresholds
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    Finding,
    ViolationType,
    ensure_utc,
    error_outcome,
)
from floe_monitoring_defs.sources.base import FreshnessReading, TableNotFoundError
from floe_monitoring_defs.telemetry.metrics import GaugeSpec


def evaluate_freshness(
    reading: FreshnessReading,
    *,
    now: datetime,
    threshold: timedelta,
    threshold_text: str,
    thresholds: SeverityThresholds,
    tolerance_seconds: float,
    hide_timestamp: bool = False,
) -> CheckOutcome:
    """Grade one freshness reading.

    The clock-skew tolerance is subtracted from the age before grading, so a writer whose clock
    runs up to `tolerance_seconds` behind (or a future timestamp within it) never causes a breach.
    `hide_timestamp` keeps the value of a classified column out of every message.
    """
    source = f"max({reading.column})" if reading.column else "last data commit"
    base = {
        "method": reading.method,
        "threshold_seconds": threshold.total_seconds(),
        "threshold": threshold_text,
        "tolerance_seconds": tolerance_seconds,
    }
    if reading.column:
        base["column"] = reading.column
        base["files_considered"] = reading.files_considered
        base["files_scanned"] = reading.files_scanned
    # The table's state from its metadata (no data read), reported as an observation of the table's asset.
    if reading.current_snapshot_id is not None:
        base["snapshot_id"] = reading.current_snapshot_id
    if reading.total_records is not None:
        base["row_count"] = reading.total_records
    if reading.committed_at is not None:
        base["committed_at"] = ensure_utc(reading.committed_at).isoformat()
    if reading.last_update is None:
        return CheckOutcome(
            ViolationType.FRESHNESS,
            CheckStatus.ERROR,
            reason=f"cannot tell the age of the data: the table has no data yet ({source} is empty)",
            details={**base, "error": "no data"},
            threshold=threshold.total_seconds(),
        )
    last = ensure_utc(reading.last_update)
    raw_age = (ensure_utc(now) - last).total_seconds()
    age = max(0.0, raw_age)
    graded_age = max(0.0, raw_age - tolerance_seconds)
    limit = threshold.total_seconds()
    pct = graded_age / limit * 100.0
    details = {**base, "age_seconds": round(age, 3), "sla_consumed_pct": round(pct, 2)}
    if not hide_timestamp:
        details["last_update"] = last.isoformat()
    if raw_age < -tolerance_seconds:
        details["future_timestamp_seconds"] = round(-raw_age, 3)
    severity = consumption_severity(pct, thresholds)
    outcome_kw = {"details": details, "measured_value": age, "threshold": limit}
    if severity is None:
        return CheckOutcome(ViolationType.FRESHNESS, CheckStatus.PASS, **outcome_kw)  # type: ignore[arg-type]
    when = "" if hide_timestamp else f" (last update {last.strftime('%Y-%m-%dT%H:%M:%SZ')} from {source})"
    if pct > 100.0:
        message = f"Data is {format_age(age)} old{when}; the freshness SLA is {threshold_text}"
        kind = "stale"
    else:
        message = f"Data is {format_age(age)} old{when}: {pct:.0f}% of the {threshold_text} freshness SLA consumed"
        kind = "approaching_stale"
    finding = Finding(
        kind=kind,
        severity=severity,
        message=message,
        element=reading.column,
        expected=f"<= {threshold_text} ({int(limit)}s)",
        actual=f"{int(age)}s",
        metadata={
            "age_seconds": f"{age:.0f}",
            "threshold_seconds": f"{limit:.0f}",
            "sla_consumed_pct": f"{pct:.1f}",
            "method": reading.method,
        },
    )
    status = CheckStatus.PASS if severity.value == "info" else CheckStatus.FAIL
    return CheckOutcome(ViolationType.FRESHNESS, status, findings=(finding,), **outcome_kw)  # type: ignore[arg-type]


class FreshnessKind(CheckKind):
    """Checks contracts with a freshness SLA (`slaProperties` freshness / latency)."""

    name = ViolationType.FRESHNESS.value
    description = "Age of the newest data against the contract's freshness SLA"
    failure_label = "stale"
    gauge = GaugeSpec("floe_contract_freshness_seconds", "s", "Age of the newest data of a contract table")

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return contract.freshness is not None

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        if outcome.measured_value is None:
            return {}
        d = outcome.details
        out: Evidence = {
            "age_seconds": round(outcome.measured_value, 3),
            "threshold_seconds": outcome.threshold,
            "sla_consumed_pct": d.get("sla_consumed_pct"),
            "freshness_method": d.get("method"),
        }
        if (last := moment(d.get("last_update"))) is not None:
            out["last_update"] = last
        if d.get("snapshot_id") is not None:
            out["snapshot_id"] = str(d["snapshot_id"])  # an identifier (64-bit), not a quantity
        if d.get("row_count") is not None:
            out["row_count"] = d["row_count"]
        return out

    @classmethod
    def observation(cls, outcome: CheckOutcome) -> TableState | None:
        """The last update as the check derived it (the commit time of the newest data change when the timestamp
        column is classified, so that no value of it leaves), the current snapshot and its row count."""
        d = outcome.details
        if d.get("snapshot_id") is None and d.get("committed_at") is None:
            return None  # the table was not read (missing, unreachable)
        last = moment(d.get("last_update"))
        method = d.get("method")
        if last is None and outcome.measured_value is not None:  # a classified column: its value is not shown
            last, method = moment(d.get("committed_at")), "snapshot"
        row_count = d.get("row_count")
        return TableState(
            last_update=last,
            snapshot_id=d.get("snapshot_id"),
            row_count=row_count if isinstance(row_count, int) else None,
            method=str(method) if method else None,
        )

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        sla = contract.freshness
        if sla is None:
            return CheckOutcome(
                ViolationType.FRESHNESS, CheckStatus.SKIPPED, reason="the contract has no freshness SLA"
            )
        try:
            reading = ctx.source.last_update(table.ref, table.freshness_column)
        except TableNotFoundError as exc:
            return error_outcome(ViolationType.FRESHNESS, str(exc), table=table.ref.identifier)
        col = table.column(table.freshness_column) if table.freshness_column else None
        return evaluate_freshness(
            reading,
            now=ctx.clock(),
            threshold=sla.threshold,
            threshold_text=sla.text,
            thresholds=config.severity_thresholds,
            tolerance_seconds=config.clock_skew_tolerance_seconds,
            hide_timestamp=bool(col and col.sensitive),
        )
