"""Check results, their violations, and the SLA status they roll up to (spec 8.1)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import NamedFromClause

from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    RecordedCheck,
    SLAStatus,
    ViolationSeverity,
    ViolationType,
    ensure_utc,
)
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database, new_id
from floe_monitoring_defs.store.outbox import NewAlert, OutboxRepository

SLA_WINDOW_HOURS = 24  # the rolling window of `contract_sla_status` (FR-020)


@dataclass(frozen=True)
class StoredViolation:
    """A violation as stored: its stable id, the check result it came from, and the event."""

    id: str
    check_result_id: str | None
    event: ContractViolationEvent


@dataclass(frozen=True)
class SLAUpdate:
    """What a check measured, for the SLA status its result refreshes (`current_value`, `threshold`)."""

    current_value: float
    threshold: float
    window_hours: int = SLA_WINDOW_HOURS


class ResultsRepository:
    """`contract_check_results`, `contract_violations` and `contract_sla_status`."""

    def __init__(self, db: Database, outbox: OutboxRepository) -> None:
        self._db = db
        self._outbox = outbox

    # -- recording ---------------------------------------------------------------------------------

    def record_check(
        self,
        result: CheckResult,
        violations: Sequence[ContractViolationEvent],
        *,
        table_name: str | None = None,
        sla: SLAUpdate | None = None,
        violation_ids: Sequence[str] | None = None,
        recorded_at: datetime | None = None,
    ) -> RecordedCheck:
        """Store a check result, its violations and their alerts in one transaction; returns what it wrote.

        `violation_ids` (one per violation; new ids when None) and `recorded_at` (the rows' `created_at`; now when
        None) let a record spooled while the store was down (store/spool.py) enter it as it was first written.

        The violations (and a "resolved" notice when the check passes right after failing on the same
        table) enter the alert outbox in the same transaction, so a detected violation cannot be lost
        before it is routed, whatever happens to this process afterwards. With `sla`, the SLA status of
        (contract, check type) is recomputed from the history, this result included, in that transaction.
        """
        dumped = result.model_dump(mode="json")
        check_row = {
            "id": result.id,
            "contract_name": result.contract_name,
            "check_type": result.check_type.value,
            "status": result.status.value,
            "duration_seconds": result.duration_seconds,
            "checked_at": result.timestamp,
            "details": dumped["details"],
            "violation": dumped["violation"],
            "created_at": recorded_at or self._db.clock(),
            "table_name": table_name,
        }
        ids = list(violation_ids) if violation_ids is not None else [new_id() for _ in violations]
        if len(ids) != len(violations):
            raise ValueError(f"{len(ids)} violation ids for {len(violations)} violations")
        violation_rows = [
            {
                "id": violation_id,
                "contract_name": event_.contract_name,
                "contract_version": event_.contract_version,
                "violation_type": event_.violation_type.value,
                "severity": event_.severity.value,
                "message": event_.message,
                "element": event_.element,
                "expected_value": event_.expected_value,
                "actual_value": event_.actual_value,
                "affected_consumers": list(event_.affected_consumers),
                "detected_at": event_.timestamp,
                "check_result_id": result.id,
                "check_duration_seconds": event_.check_duration_seconds,
                "metadata": dict(event_.metadata),
            }
            for violation_id, event_ in zip(ids, violations, strict=True)
        ]
        # An alert's id is its violation's id: the stable idempotency key receivers can dedup on.
        alerts = [
            NewAlert(violation_id, "violation", event_) for violation_id, event_ in zip(ids, violations, strict=True)
        ]
        with self._db.transaction("recording a check result", write=True) as conn:
            if result.status is CheckStatus.PASS:
                resolved = self._resolution_of(conn, result, table_name)
                if resolved is not None:
                    alerts.append(NewAlert(new_id(), "resolved", resolved))
            conn.execute(t.contract_check_results.insert(), check_row)
            if violation_rows:
                conn.execute(t.contract_violations.insert(), violation_rows)
            outbox_ids = self._outbox.add(conn, alerts, recorded_at or self._db.clock())
            if sla is not None:
                self._refresh_sla(conn, result.contract_name, result.check_type, result.timestamp, sla)
        return RecordedCheck(result.id, tuple(ids), tuple(outbox_ids))

    def _resolution_of(
        self, conn: Connection, result: CheckResult, table_name: str | None
    ) -> ContractViolationEvent | None:
        """The "resolved" notice owed when a check passes right after failing (same contract, type, table)."""
        c = t.contract_check_results.c
        query = (
            sa.select(c.status, c.violation, c.checked_at)
            .where(
                c.contract_name == result.contract_name,
                c.check_type == result.check_type.value,
                c.checked_at <= result.timestamp,
            )
            .order_by(c.checked_at.desc())
            .limit(1)
        )
        if table_name is not None:
            query = query.where(c.table_name == table_name)
        previous = conn.execute(query).first()
        if previous is None or previous.status != CheckStatus.FAIL.value or not previous.violation:
            return None
        last = ContractViolationEvent.model_validate(previous.violation)
        where = f" of {table_name}" if table_name else ""
        return last.model_copy(
            update={
                "message": f"Resolved: the {result.check_type.value} check{where} passes again",
                "timestamp": result.timestamp,
                "check_duration_seconds": result.duration_seconds,
                "element": None,
                "expected_value": None,
                "actual_value": None,
                "metadata": {
                    **last.metadata,
                    "started_at": last.timestamp.isoformat(),
                    "resolved_by_check_result_id": result.id,
                },
            }
        )

    def count_failed_checks(
        self, contract_names: Sequence[str], check_type: ViolationType, since: datetime
    ) -> dict[str, int]:
        """Failed check results per contract at or after `since` (0 for contracts without any)."""
        names = list(dict.fromkeys(contract_names))
        if not names:
            return {}
        c = t.contract_check_results.c
        query = (
            sa.select(c.contract_name, sa.func.count())
            .where(
                c.contract_name.in_(names),
                c.check_type == ViolationType(check_type).value,
                c.status == CheckStatus.FAIL.value,
                c.checked_at >= since,
            )
            .group_by(c.contract_name)
        )
        counts = dict.fromkeys(names, 0)
        with self._db.transaction("counting failed checks") as conn:
            for name, count in conn.execute(query):
                counts[name] = int(count)
        return counts

    def check_results(
        self,
        *,
        contract_name: str | None = None,
        check_type: ViolationType | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[CheckResult]:
        """Stored check results, newest first."""
        c = t.contract_check_results.c
        query = sa.select(t.contract_check_results).order_by(c.checked_at.desc(), c.id.desc()).limit(limit)
        if contract_name is not None:
            query = query.where(c.contract_name == contract_name)
        if check_type is not None:
            query = query.where(c.check_type == ViolationType(check_type).value)
        if since is not None:
            query = query.where(c.checked_at >= since)
        with self._db.transaction("reading check results") as conn:
            rows = conn.execute(query).mappings().all()
        return [
            CheckResult(
                id=row["id"],
                contract_name=row["contract_name"],
                check_type=ViolationType(row["check_type"]),
                status=CheckStatus(row["status"]),
                duration_seconds=row["duration_seconds"],
                timestamp=row["checked_at"],
                details=row["details"] or {},
                violation=(
                    None if row["violation"] is None else ContractViolationEvent.model_validate(row["violation"])
                ),
            )
            for row in rows
        ]

    def violations(
        self,
        *,
        contract_name: str | None = None,
        violation_type: ViolationType | None = None,
        severity: ViolationSeverity | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[StoredViolation]:
        """Stored violations, newest first."""
        c = t.contract_violations.c
        query = sa.select(t.contract_violations).order_by(c.detected_at.desc(), c.id.desc()).limit(limit)
        if contract_name is not None:
            query = query.where(c.contract_name == contract_name)
        if violation_type is not None:
            query = query.where(c.violation_type == ViolationType(violation_type).value)
        if severity is not None:
            query = query.where(c.severity == ViolationSeverity(severity).value)
        if since is not None:
            query = query.where(c.detected_at >= since)
        with self._db.transaction("reading violations") as conn:
            rows = conn.execute(query).mappings().all()
        return [
            StoredViolation(
                id=row["id"],
                check_result_id=row["check_result_id"],
                event=ContractViolationEvent(
                    contract_name=row["contract_name"],
                    contract_version=row["contract_version"],
                    violation_type=ViolationType(row["violation_type"]),
                    severity=ViolationSeverity(row["severity"]),
                    message=row["message"],
                    element=row["element"],
                    expected_value=row["expected_value"],
                    actual_value=row["actual_value"],
                    timestamp=row["detected_at"],
                    affected_consumers=row["affected_consumers"] or [],
                    check_duration_seconds=row["check_duration_seconds"],
                    metadata=row["metadata"] or {},
                ),
            )
            for row in rows
        ]

    # -- SLA status --------------------------------------------------------------------------------

    def _sla_status_upsert(self, status: SLAStatus) -> tuple[Insert, dict[str, Any]]:
        values = {
            "contract_name": status.contract_name,
            "check_type": ViolationType(status.check_type).value,
            "current_value": status.current_value,
            "threshold": status.threshold,
            "compliance_pct": status.compliance_pct,
            "last_check_time": status.last_check_time,
            "consecutive_failures": status.consecutive_failures,
            "violation_count_24h": status.violation_count_24h,
            "window_start": status.window_start,
            "updated_at": self._db.clock(),
        }
        keys = ("contract_name", "check_type")
        return self._db.upsert(t.contract_sla_status, keys, [k for k in values if k not in keys]), values

    def upsert_sla_status(self, status: SLAStatus) -> None:
        """Insert or replace the SLA state of (contract, check type)."""
        stmt, values = self._sla_status_upsert(status)
        with self._db.transaction("saving the SLA status", write=True) as conn:
            conn.execute(stmt, values)

    def refresh_sla_status(
        self,
        contract_name: str,
        check_type: ViolationType,
        now: datetime,
        current_value: float,
        threshold: float,
        window_hours: int = SLA_WINDOW_HOURS,
    ) -> SLAStatus:
        """Recompute the SLA state of (contract, check type) from the stored history, save and return it."""
        update = SLAUpdate(current_value, threshold, window_hours)
        with self._db.transaction("refreshing the SLA status", write=True) as conn:
            return self._refresh_sla(conn, contract_name, check_type, now, update)

    def _refresh_sla(
        self, conn: Connection, contract_name: str, check_type: ViolationType, now: datetime, sla: SLAUpdate
    ) -> SLAStatus:
        """Recompute and save the SLA state of (contract, check type), inside the caller's transaction.

        Over the rolling window `[now - window_hours, ...)`: `compliance_pct` = passed / total results
        (SKIPPED results did not run and count neither way; 100.0 without results) and
        `violation_count_24h` = violations of this type above INFO. `consecutive_failures` = FAIL and
        ERROR results after the newest PASS, over the whole stored history; `last_check_time` = the
        newest result. One read and one upsert.
        """
        ctype = ViolationType(check_type).value
        window_start = ensure_utc(now) - timedelta(hours=sla.window_hours)

        def count_results(make: Callable[[NamedFromClause], list[sa.ColumnElement[bool]]]) -> sa.ScalarSelect[int]:
            a = t.contract_check_results.alias()
            return (
                sa.select(sa.func.count())
                .select_from(a)
                .where(a.c.contract_name == contract_name, a.c.check_type == ctype, *make(a))
                .scalar_subquery()
            )

        def newest_result(*statuses: str) -> sa.ScalarSelect[datetime]:
            a = t.contract_check_results.alias()
            where = [a.c.contract_name == contract_name, a.c.check_type == ctype]
            if statuses:
                where.append(a.c.status.in_(statuses))
            return sa.select(sa.func.max(a.c.checked_at)).where(*where).scalar_subquery()

        last_pass = newest_result(CheckStatus.PASS.value)
        failing = (CheckStatus.FAIL.value, CheckStatus.ERROR.value)
        v = t.contract_violations.alias()
        query = sa.select(
            count_results(lambda a: [a.c.checked_at >= window_start, a.c.status != CheckStatus.SKIPPED.value]).label(
                "total"
            ),
            count_results(lambda a: [a.c.checked_at >= window_start, a.c.status == CheckStatus.PASS.value]).label(
                "passed"
            ),
            count_results(
                lambda a: [a.c.status.in_(failing), sa.or_(last_pass.is_(None), a.c.checked_at > last_pass)]
            ).label("streak"),
            newest_result().label("last_check"),
            sa.select(sa.func.count())
            .select_from(v)
            .where(
                v.c.contract_name == contract_name,
                v.c.violation_type == ctype,
                v.c.severity != ViolationSeverity.INFO.value,
                v.c.detected_at >= window_start,
            )
            .scalar_subquery()
            .label("violations"),
        )
        row = conn.execute(query).one()
        total, passed = int(row.total or 0), int(row.passed or 0)
        status = SLAStatus(
            contract_name=contract_name,
            check_type=ViolationType(check_type),
            current_value=sla.current_value,
            threshold=sla.threshold,
            compliance_pct=100.0 if total == 0 else min(100.0, passed / total * 100.0),
            last_check_time=row.last_check,
            consecutive_failures=int(row.streak or 0),
            violation_count_24h=int(row.violations or 0),
            window_start=window_start,
        )
        stmt, values = self._sla_status_upsert(status)
        conn.execute(stmt, values)
        return status

    def sla_status(self, contract_name: str, check_type: ViolationType) -> SLAStatus | None:
        """The stored SLA state of (contract, check type), or None."""
        c = t.contract_sla_status.c
        query = sa.select(t.contract_sla_status).where(
            c.contract_name == contract_name, c.check_type == ViolationType(check_type).value
        )
        with self._db.transaction("reading the SLA status") as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return SLAStatus(
            contract_name=row["contract_name"],
            check_type=ViolationType(row["check_type"]),
            current_value=row["current_value"],
            threshold=row["threshold"],
            compliance_pct=row["compliance_pct"],
            last_check_time=row["last_check_time"],
            consecutive_failures=row["consecutive_failures"],
            violation_count_24h=row["violation_count_24h"],
            window_start=row["window_start"],
        )
