"""Check results, their violations, and the SLA status they roll up to (spec 8.1)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
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


@dataclass(frozen=True)
class CheckRecord:
    """One check's record as `record_check` takes it: what `record_checks` writes a page of."""

    result: CheckResult
    violations: Sequence[ContractViolationEvent]
    table_name: str | None = None
    sla: SLAUpdate | None = None
    violation_ids: Sequence[str] | None = None
    recorded_at: datetime | None = None
    # The contract's own alert settings (`AlertSettings` as JSON), written with each of its alerts; None: global.
    alert_settings: Mapping[str, Any] | None = None


# At most this many (contract, check type) keys per grouped SLA statement: its keys are a UNION ALL of one
# SELECT per key, and SQLite allows 500 terms in a compound SELECT by default.
SLA_GROUP_SIZE = 200

_FAILING = (CheckStatus.FAIL.value, CheckStatus.ERROR.value)


def _violation_row(violation_id: str, event_: ContractViolationEvent, check_result_id: str) -> dict[str, Any]:
    return {
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
        "check_result_id": check_result_id,
        "check_duration_seconds": event_.check_duration_seconds,
        "metadata": dict(event_.metadata),
    }


def _previous_result(with_table: bool) -> sa.Select[Any]:
    """The newest result of (contract, check type[, table]) at or before a time, bound by name: built once."""
    c = t.contract_check_results.c
    query = (
        sa.select(c.status, c.violation, c.checked_at)
        .where(
            c.contract_name == sa.bindparam("contract_name"),
            c.check_type == sa.bindparam("check_type"),
            c.checked_at <= sa.bindparam("at", type_=t.UTCDateTime()),
        )
        .order_by(c.checked_at.desc())
        .limit(1)
    )
    return query.where(c.table_name == sa.bindparam("table_name")) if with_table else query


_PREVIOUS_RESULT = {True: _previous_result(True), False: _previous_result(False)}


@functools.lru_cache(maxsize=32)
def _grouped_sla_query(keys: int, dialect: str) -> sa.Select[Any]:
    """The SLA inputs of `keys` (contract, check type, window start) triples in one statement: the per-key
    subqueries of `_refresh_sla`, correlated to a derived table of the keys. Built once per (size, dialect) and
    bound by name (`n0`, `t0`, `w0`, ...), so SQLAlchemy's compiled cache serves every page of that size."""

    def param(name: str, type_: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
        bound = sa.bindparam(name, type_=type_)
        # PostgreSQL cannot infer the type of a bare parameter in a SELECT list; SQLite must not CAST (a
        # CAST to DATETIME gives numeric affinity, and its datetimes are text).
        return sa.cast(bound, type_) if dialect == "postgresql" else bound

    rows = [
        sa.select(
            param(f"n{i}", sa.String()).label("contract_name"),
            param(f"t{i}", sa.String()).label("check_type"),
            param(f"w{i}", t.UTCDateTime()).label("window_start"),
        )
        for i in range(keys)
    ]
    k = (sa.union_all(*rows) if keys > 1 else rows[0]).subquery("k")

    def results(
        *where: Callable[[NamedFromClause], sa.ColumnElement[bool]],
        value: Callable[[NamedFromClause], sa.ColumnElement[Any]] | None = None,
    ) -> sa.ScalarSelect[Any]:
        a = t.contract_check_results.alias()
        col = sa.func.count() if value is None else value(a)
        return (
            sa.select(col)
            .select_from(a)
            .where(a.c.contract_name == k.c.contract_name, a.c.check_type == k.c.check_type, *(w(a) for w in where))
            .correlate(k)
            .scalar_subquery()
        )

    last_pass = results(lambda a: a.c.status == CheckStatus.PASS.value, value=lambda a: sa.func.max(a.c.checked_at))
    v = t.contract_violations.alias()
    return sa.select(
        k.c.contract_name,
        k.c.check_type,
        results(lambda a: a.c.checked_at >= k.c.window_start, lambda a: a.c.status != CheckStatus.SKIPPED.value).label(
            "total"
        ),
        results(lambda a: a.c.checked_at >= k.c.window_start, lambda a: a.c.status == CheckStatus.PASS.value).label(
            "passed"
        ),
        results(
            lambda a: a.c.status.in_(_FAILING), lambda a: sa.or_(last_pass.is_(None), a.c.checked_at > last_pass)
        ).label("streak"),
        results(value=lambda a: sa.func.max(a.c.checked_at)).label("last_check"),
        sa.select(sa.func.count())
        .select_from(v)
        .where(
            v.c.contract_name == k.c.contract_name,
            v.c.violation_type == k.c.check_type,
            v.c.severity != ViolationSeverity.INFO.value,
            v.c.detected_at >= k.c.window_start,
        )
        .correlate(k)
        .scalar_subquery()
        .label("violations"),
    )


@dataclass(frozen=True)
class CheckHistory:
    """The stored history of one check (contract, check type, table), before the current result."""

    last_pass: datetime | None
    episode_started: datetime | None  # the first failing result after the last pass (None: none stored)
    failures_24h: int
    failures_7d: int
    statuses_24h: tuple[str, ...]  # oldest first, skipped results left out


@functools.cache
def _check_history_statements(with_table: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The two statements of `ResultsRepository.check_history`, built once and bound by name (SQLAlchemy's compiled
    cache then serves every call: building them per violation cost more than running them)."""
    c = t.contract_check_results.c
    key = [c.contract_name == sa.bindparam("contract_name"), c.check_type == sa.bindparam("check_type")]
    if with_table:
        key.append(c.table_name == sa.bindparam("table_name"))
    fail = CheckStatus.FAIL.value
    last_pass = (
        sa.select(c.checked_at).where(*key, c.status == CheckStatus.PASS.value).order_by(c.checked_at.desc()).limit(1)
    ).scalar_subquery()
    episode = (
        sa.select(c.checked_at)
        .where(
            *key,
            c.status.in_((fail, CheckStatus.ERROR.value)),
            sa.or_(last_pass.is_(None), c.checked_at > last_pass),
        )
        .order_by(c.checked_at)
        .limit(1)
    ).scalar_subquery()

    def failures(since: str) -> sa.ScalarSelect[int]:
        at = sa.bindparam(since, type_=t.UTCDateTime())
        return sa.select(sa.func.count()).where(*key, c.status == fail, c.checked_at >= at).scalar_subquery()

    summary = sa.select(last_pass, episode, failures("day"), failures("week"))
    statuses = (
        sa.select(c.status)
        .where(*key, c.checked_at >= sa.bindparam("day", type_=t.UTCDateTime()), c.status != CheckStatus.SKIPPED.value)
        .order_by(c.checked_at.desc())
        .limit(500)
    )
    return summary, statuses


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
        alert_settings: Mapping[str, Any] | None = None,
    ) -> RecordedCheck:
        """Store a check result, its violations and their alerts in one transaction; returns what it wrote.

        `violation_ids` (one per violation; new ids when None) and `recorded_at` (the rows' `created_at`; now when
        None) let a record spooled while the store was down (store/spool.py) enter it as it was first written.

        The violations (and a "resolved" notice when the check passes right after failing on the same
        table) enter the alert outbox in the same transaction, so a detected violation cannot be lost
        before it is routed, whatever happens to this process afterwards. With `sla`, the SLA status of
        (contract, check type) is recomputed from the history, this result included, in that transaction.
        """
        check_row, ids, violation_rows, alerts = self._rows(
            CheckRecord(result, violations, table_name, sla, violation_ids, recorded_at, alert_settings)
        )
        # An alert's id is its violation's id: the stable idempotency key receivers can dedup on.
        with self._db.transaction("recording a check result", write=True) as conn:
            if result.status is CheckStatus.PASS:
                resolved = self._resolution_of(conn, result, table_name)
                if resolved is not None:
                    alerts.append(NewAlert(new_id(), "resolved", resolved, alert_settings))
            conn.execute(t.contract_check_results.insert(), check_row)
            if violation_rows:
                conn.execute(t.contract_violations.insert(), violation_rows)
            outbox_ids = self._outbox.add(conn, alerts, recorded_at or self._db.clock())
            if sla is not None:
                self._refresh_sla(conn, result.contract_name, result.check_type, result.timestamp, sla)
        return RecordedCheck(result.id, tuple(ids), tuple(outbox_ids))

    def record_checks(self, records: Sequence[CheckRecord]) -> list[RecordedCheck]:
        """`record_check` for a page of records in ONE transaction: all or nothing, same rows.

        What it writes equals what `record_check` called once per record, in order, writes: the "resolved"
        notice of a passing record is looked up before anything of the page is inserted unless an earlier record
        of the page has the same (contract, check type, table) (then it is looked up after those are written, as
        the sequential path would), and the SLA status of each (contract, check type) is recomputed once, from
        the history with the whole page in it, for its last record of the page (what the sequential path's last
        refresh of that key computes, the earlier ones being overwritten). A failure rolls the whole page back.
        """
        if not records:
            return []
        with self._db.transaction("recording check results", write=True) as conn:
            seen: set[tuple[str, str, str | None]] = set()
            check_rows: list[dict[str, Any]] = []
            violation_rows: list[dict[str, Any]] = []
            alert_rows: list[NewAlert] = []
            alert_times: list[datetime] = []
            out: list[RecordedCheck] = []
            for record in records:
                # Ids and times are drawn in the order `record_check` draws them (violation ids, then the
                # check row's and the alerts' clock readings), so an injected id or clock source sees the same.
                check_row, ids, v_rows, alerts = self._rows(record)
                result = record.result
                key = (result.contract_name, result.check_type.value, record.table_name)
                if result.status is CheckStatus.PASS:
                    if key in seen:  # the sequential path would see the page's earlier rows of this key
                        self._insert_rows(conn, check_rows, violation_rows, alert_rows, alert_times)
                        check_rows, violation_rows, alert_rows, alert_times = [], [], [], []
                    resolved = self._resolution_of(conn, result, record.table_name)
                    if resolved is not None:
                        alerts.append(NewAlert(new_id(), "resolved", resolved, record.alert_settings))
                seen.add(key)
                check_rows.append(check_row)
                violation_rows.extend(v_rows)
                now = record.recorded_at or self._db.clock()
                alert_rows.extend(alerts)
                alert_times.extend(now for _ in alerts)
                out.append(RecordedCheck(result.id, tuple(ids), tuple(a.id for a in alerts)))
            self._insert_rows(conn, check_rows, violation_rows, alert_rows, alert_times)
            last: dict[tuple[str, str], CheckRecord] = {}
            for record in records:
                if record.sla is not None:
                    key2 = (record.result.contract_name, record.result.check_type.value)
                    last.pop(key2, None)  # re-inserted: the order of the keys is that of their last records
                    last[key2] = record
            self._refresh_sla_many(conn, list(last.values()))
        return out

    def _rows(self, record: CheckRecord) -> tuple[dict[str, Any], list[str], list[dict[str, Any]], list[NewAlert]]:
        """The check row, violation ids, violation rows and alerts of one record (as `record_check` builds them)."""
        result, violations = record.result, record.violations
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
            "created_at": record.recorded_at or self._db.clock(),
            "table_name": record.table_name,
        }
        given = record.violation_ids
        ids = list(given) if given is not None else [new_id() for _ in violations]
        if len(ids) != len(violations):
            raise ValueError(f"{len(ids)} violation ids for {len(violations)} violations")
        rows = [_violation_row(i, e, result.id) for i, e in zip(ids, violations, strict=True)]
        alerts = [NewAlert(i, "violation", e, record.alert_settings) for i, e in zip(ids, violations, strict=True)]
        return check_row, ids, rows, alerts

    def _insert_rows(
        self,
        conn: Connection,
        check_rows: list[dict[str, Any]],
        violation_rows: list[dict[str, Any]],
        alerts: list[NewAlert],
        times: list[datetime],
    ) -> None:
        """One multi-row INSERT per table (executemany), in the order `record_check` writes them."""
        if check_rows:
            conn.execute(t.contract_check_results.insert(), check_rows)
        if violation_rows:
            conn.execute(t.contract_violations.insert(), violation_rows)
        if alerts:
            self._outbox.add_many(conn, list(zip(alerts, times, strict=True)))

    def _refresh_sla_many(self, conn: Connection, records: Sequence[CheckRecord]) -> None:
        """`_refresh_sla` of each record's (contract, check type) as of its result: one grouped read and one
        executemany upsert per `SLA_GROUP_SIZE` keys."""
        for start in range(0, len(records), SLA_GROUP_SIZE):
            group = records[start : start + SLA_GROUP_SIZE]
            params: dict[str, Any] = {}
            starts: dict[tuple[str, str], datetime] = {}
            for i, record in enumerate(group):
                assert record.sla is not None
                window_start = ensure_utc(record.result.timestamp) - timedelta(hours=record.sla.window_hours)
                ctype = record.result.check_type.value
                params.update({f"n{i}": record.result.contract_name, f"t{i}": ctype, f"w{i}": window_start})
                starts[(record.result.contract_name, ctype)] = window_start
            found = {
                (row.contract_name, row.check_type): row
                for row in conn.execute(_grouped_sla_query(len(group), self._db.dialect), params)
            }
            upserts: list[dict[str, Any]] = []
            stmt: Insert | None = None
            for record in group:
                assert record.sla is not None
                key = (record.result.contract_name, record.result.check_type.value)
                row = found[key]
                total, passed = int(row.total or 0), int(row.passed or 0)
                status = SLAStatus(
                    contract_name=key[0],
                    check_type=record.result.check_type,
                    current_value=record.sla.current_value,
                    threshold=record.sla.threshold,
                    compliance_pct=100.0 if total == 0 else min(100.0, passed / total * 100.0),
                    last_check_time=row.last_check,
                    consecutive_failures=int(row.streak or 0),
                    violation_count_24h=int(row.violations or 0),
                    window_start=starts[key],
                )
                stmt, values = self._sla_status_upsert(status)
                upserts.append(values)
            if stmt is not None:
                conn.execute(stmt, upserts)

    def _resolution_of(
        self, conn: Connection, result: CheckResult, table_name: str | None
    ) -> ContractViolationEvent | None:
        """The "resolved" notice owed when a check passes right after failing (same contract, type, table)."""
        params = {"contract_name": result.contract_name, "check_type": result.check_type.value, "at": result.timestamp}
        if table_name is not None:
            params["table_name"] = table_name
        previous = conn.execute(_PREVIOUS_RESULT[table_name is not None], params).first()
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

    def latest_by_check_type(
        self, table_name: str, *, contract_names: Sequence[str] = (), since: datetime, scan: int = 200
    ) -> list[dict[str, Any]]:
        """The latest non-skipped result of each check type on a table since `since` (at most `scan` results read,
        newest first): `check_type`, `status`, `checked_at`, `severity` (the stored violation's, None on a pass).
        With `contract_names` the read uses the contract index; without, it selects by table and time alone."""
        c = t.contract_check_results.c
        query = (
            sa.select(c.check_type, c.status, c.checked_at, c.violation)
            .where(c.table_name == table_name, c.checked_at >= since, c.status != CheckStatus.SKIPPED.value)
            .order_by(c.checked_at.desc())
            .limit(scan)
        )
        if contract_names:
            query = query.where(c.contract_name.in_(list(contract_names)))
        latest: dict[str, dict[str, Any]] = {}
        with self._db.transaction("reading a table's latest check status") as conn:
            for row in conn.execute(query).mappings():
                if row["check_type"] in latest:
                    continue
                violation = row["violation"] if isinstance(row["violation"], Mapping) else {}
                passed = row["status"] == CheckStatus.PASS.value
                latest[row["check_type"]] = {
                    "check_type": row["check_type"],
                    "status": row["status"],
                    "checked_at": ensure_utc(row["checked_at"]),
                    "severity": None if passed else violation.get("severity"),
                }
        return list(latest.values())

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

    def check_history(self, contract_name: str, check_type: str, table_name: str | None, now: datetime) -> CheckHistory:
        """The stored history of one check before the current result, for a violation's root-cause context (FR-047):
        two indexed reads (`idx_check_results_key`) of `contract_check_results`, bounded in rows: the last pass,
        the episode's first failure and the failure counts in one statement, the last 24 h of statuses in another."""
        summary, statuses = _check_history_statements(table_name is not None)
        params: dict[str, Any] = {
            "contract_name": contract_name,
            "check_type": check_type,
            "day": now - timedelta(hours=24),
            "week": now - timedelta(days=7),
        }
        if table_name is not None:
            params["table_name"] = table_name
        with self._db.transaction("reading check history for a violation's context") as conn:
            row = conn.execute(summary, params).one()
            recent = tuple(reversed(list(conn.execute(statuses, params).scalars())))
        last, began = row[0], row[1]
        return CheckHistory(
            last_pass=ensure_utc(last) if last is not None else None,
            episode_started=ensure_utc(began) if began is not None else None,
            failures_24h=int(row[2] or 0),
            failures_7d=int(row[3] or 0),
            statuses_24h=recent,
        )
