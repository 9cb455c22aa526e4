"""Retention (ODCS `retention`): data is kept as long as promised.

Once the table is at least as old as the retention period, its data must still reach back that far: the
oldest value of the SLA's `element` (a timestamp or date column; min over the manifests' lower bounds, a
scan only of files without one) is no newer than `now - period`. Without an element, the oldest snapshot
still readable stands in (snapshot expiry must not outrun the promise). A table younger than the period
passes with a note: nothing can have been deleted early yet. A shortfall within the clock-skew tolerance
passes. The finding is ERROR: data promised to be there is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, format_age, moment
from floe_monitoring_defs.config import MonitoringConfig
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
from floe_monitoring_defs.sources.base import SourceError, TableNotFoundError

KIND = ViolationType("retention")


def evaluate_retention(
    oldest: history.OldestReading,
    born: datetime | None,
    *,
    now: datetime,
    period: timedelta,
    period_text: str,
    element: str | None,
    tolerance_seconds: float,
    hide_values: bool = False,
) -> CheckOutcome:
    """Grade how far back the data reaches against the promised retention (pure)."""
    now = ensure_utc(now)
    what = f"min({element})" if element else "the oldest readable snapshot"
    details: dict[str, object] = {
        "period_seconds": period.total_seconds(),
        "period": period_text,
        "method": oldest.method,
        "element": element,
        "files_considered": oldest.files_considered,
        "files_scanned": oldest.files_scanned,
    }
    if born is None or oldest.oldest is None:
        return CheckOutcome(KIND, CheckStatus.PASS, details={**details, "note": "the table holds no data yet"})
    age = (now - ensure_utc(born)).total_seconds()
    reach = (now - ensure_utc(oldest.oldest)).total_seconds()
    details.update({"table_age_seconds": round(age, 3), "reaches_back_seconds": round(max(0.0, reach), 3)})
    if not hide_values:
        details["oldest"] = ensure_utc(oldest.oldest).isoformat()
    limit = period.total_seconds()
    if age < limit:
        note = f"the table is {format_age(age)} old, younger than the {period_text} retention: nothing is due yet"
        return CheckOutcome(
            KIND, CheckStatus.PASS, details={**details, "note": note}, measured_value=reach, threshold=limit
        )
    if reach + tolerance_seconds >= limit:
        return CheckOutcome(KIND, CheckStatus.PASS, details=details, measured_value=reach, threshold=limit)
    finding = Finding(
        kind="retention_shortfall",
        severity=ViolationSeverity.ERROR,
        element=element,
        message=(
            f"Data reaches back only {format_age(max(0.0, reach))} ({what}); the contract promises "
            f"{period_text} of retention and the table is {format_age(age)} old"
        ),
        expected=f">= {period_text} ({int(limit)}s) of history",
        actual=f"{int(max(0.0, reach))}s",
        metadata={
            "reaches_back_seconds": f"{max(0.0, reach):.0f}",
            "period_seconds": f"{limit:.0f}",
            "method": oldest.method,
        },
    )
    return CheckOutcome(
        KIND, CheckStatus.FAIL, findings=(finding,), details=details, measured_value=reach, threshold=limit
    )


class RetentionKind(CheckKind):
    """Checks contracts with a `retention` SLA."""

    name = KIND.value
    description = "How far back the data reaches (oldest value from manifest lower bounds) against the retention"
    failure_label = "retention shortfall"
    default_minutes = 360

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return contract.retention is not None

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        d = outcome.details
        keys = (
            "reaches_back_seconds",
            "period_seconds",
            "table_age_seconds",
            "oldest",
            "method",
            "files_scanned",
            "note",
        )
        out: Evidence = {f"retention_{k}": d[k] for k in keys if d.get(k) is not None}
        if (oldest := moment(d.get("oldest"))) is not None:
            out["retention_oldest"] = oldest  # a point in time: shown as a timestamp
        return out

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        sla = contract.retention
        if sla is None:
            return CheckOutcome(KIND, CheckStatus.SKIPPED, reason="the contract has no retention SLA")
        column, other = _column_of(sla.element, contract, table)
        if other is not None:
            reason = f"the retention SLA's element names table {other}"
            return CheckOutcome(KIND, CheckStatus.SKIPPED, reason=reason, details={"skipped": reason})
        try:
            loaded = ctx.source.load_table(table.ref)
            oldest = history.oldest_value(loaded, column)
            born = history.table_born(loaded)
        except TableNotFoundError as exc:
            return error_outcome(KIND, str(exc), table=table.ref.identifier)
        except SourceError as exc:
            return error_outcome(KIND, str(exc), table=table.ref.identifier)
        col = table.column(column) if column else None
        return evaluate_retention(
            oldest,
            born,
            now=ctx.clock(),
            period=sla.period,
            period_text=sla.text,
            element=column,
            tolerance_seconds=config.clock_skew_tolerance_seconds,
            hide_values=bool(col and col.sensitive),
        )


def _column_of(
    element: str | None, contract: MonitoredContract, table: MonitoredTable
) -> tuple[str | None, str | None]:
    """(column of this table the SLA element names, or the other table it names instead).

    ODCS elements are `table.column` or `column`; a prefix that is not one of the contract's tables is part of
    the column's own (nested) path.
    """
    if not element or "." not in element:
        return element, None
    prefix, col = element.split(".", 1)
    names = {t.schema_name for t in contract.tables} | {t.ref.name for t in contract.tables}
    if prefix not in names:
        return element, None
    if prefix in (table.schema_name, table.ref.name):
        return col, None
    return None, prefix
