"""`MonitoringStore`: the monitor's persistence (check results, violations, SLA state, registrations).

One SQLAlchemy Engine per store, synchronous Core statements, SQLite or PostgreSQL. The schema is
created and upgraded by the Alembic migrations on first use (`auto_migrate`). Every database error is
raised as `StoreError`, whose message names the database URL with its password masked.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from pydantic_core import to_jsonable_python
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import NamedFromClause

from floe_monitoring_defs.checks.availability import AvailabilityWindow, PingResult, uptime_pct
from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    SLAStatus,
    ViolationSeverity,
    ViolationType,
    ensure_utc,
    utcnow,
)
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.migrations import alembic_config, head_revision

DB_URL_ENV = "FLOE_MONITORING_DB_URL"
DB_FILE_NAME = "floe_monitoring.db"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# Key of the PostgreSQL advisory lock held while migrating ("floe" in ASCII).
_PG_MIGRATION_LOCK_KEY = 0x666C6F65
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_PG_CONNECT_TIMEOUT_SECONDS = 10
# Execution option naming the statement that opens a SQLite transaction (see `_install_sqlite_hooks`).
_SQLITE_BEGIN_OPTION = "floe_sqlite_begin"


class StoreError(RuntimeError):
    """The monitoring store failed; the message names the database URL with the password masked."""


def mask_url(url: str) -> str:
    """`url` with its password (and any `password=` query value) replaced by `***`."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        shown = re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&;\s]*", r"\1***", shown)


def normalize_db_url(url: str) -> str:
    """Pin plain `postgresql://` / `postgres://` URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    url = url.strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def default_db_url(environ: Mapping[str, str] | None = None) -> str:
    """`$FLOE_MONITORING_DB_URL`, else a SQLite file in `$DAGSTER_HOME`, else in `./.floe/`.

    The directory of the SQLite file is created if missing; the returned path is absolute.
    """
    env = os.environ if environ is None else environ
    url = (env.get(DB_URL_ENV) or "").strip()
    if url:
        return normalize_db_url(url)
    home = (env.get("DAGSTER_HOME") or "").strip()
    directory = Path(home).expanduser() if home else Path(".floe")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the monitoring store directory {directory}: {exc.strerror}") from None
    return f"sqlite:///{(directory / DB_FILE_NAME).resolve()}"


def _new_id() -> str:
    return str(uuid.uuid4())


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


@dataclass(frozen=True)
class StoredViolation:
    """A violation as stored: its stable id, the check result it came from, and the event."""

    id: str
    check_result_id: str | None
    event: ContractViolationEvent


class MonitoringStore:
    """Synchronous repository over the monitoring tables; safe to share between threads."""

    url_display: str
    dialect: str

    def __init__(
        self,
        url: str,
        *,
        auto_migrate: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._url = normalize_db_url(url)
        self.url_display = mask_url(self._url)
        self._auto_migrate = auto_migrate
        self._clock = clock
        self._secrets: tuple[str, ...] = ()
        self._ready = False
        self._ready_lock = threading.Lock()
        self._engine = self._create_engine()
        self.dialect = self._engine.dialect.name

    @classmethod
    def from_env(cls) -> MonitoringStore:
        """The store at `default_db_url()`."""
        return cls(default_db_url())

    def __repr__(self) -> str:
        return f"MonitoringStore({self.url_display!r})"

    # -- engine and transactions -------------------------------------------------------------------

    def _create_engine(self) -> Engine:
        try:
            parsed = make_url(self._url)
        except ArgumentError:
            raise StoreError(f"not a valid database URL: {self.url_display}") from None
        in_query = parsed.query.get("password", ())
        secrets = [parsed.password, *((in_query,) if isinstance(in_query, str) else in_query)]
        self._secrets = tuple(s for s in secrets if isinstance(s, str) and s)
        backend = parsed.get_backend_name()
        if backend not in SUPPORTED_DIALECTS:
            raise StoreError(f"unsupported database {backend!r} in {self.url_display}: use sqlite or postgresql")
        kwargs: dict[str, Any] = {}
        if backend == "postgresql":
            kwargs["pool_pre_ping"] = True
            if parsed.get_driver_name() == "psycopg2" and "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": _PG_CONNECT_TIMEOUT_SECONDS}
        try:
            engine = sa.create_engine(parsed, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise StoreError(f"cannot create a database engine for {self.url_display}: {self._scrub(exc)}") from None
        if backend == "sqlite":
            _install_sqlite_hooks(engine)
        return engine

    def _scrub(self, value: object) -> str:
        text = _one_line(value)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, what: str, exc: BaseException) -> StoreError:
        detail: object = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            detail = exc.orig
        return StoreError(f"monitoring store {self.url_display}: {what} failed: {self._scrub(detail)}")

    @contextmanager
    def _connect(self, what: str, *, write: bool = False) -> Iterator[Connection]:
        """One transaction, committed on success; database errors become `StoreError`."""
        try:
            with self._engine.connect() as conn:
                if write:
                    # SQLite: take the write lock up front (waits busy_timeout) instead of failing
                    # on a lock upgrade; PostgreSQL ignores the option.
                    conn.execution_options(**{_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise self._error(what, exc) from None

    @contextmanager
    def _transaction(self, what: str, *, write: bool = False) -> Iterator[Connection]:
        self._ensure_ready()
        with self._connect(what, write=write) as conn:
            yield conn

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            if self._auto_migrate and self.current_revision() != head_revision():
                self.upgrade()
            self._ready = True

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _upsert(self, table: sa.Table, keys: Sequence[str], update: Sequence[str]) -> Insert:
        stmt = self._insert(table)
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
        )

    def _insert_missing(self, table: sa.Table, keys: Sequence[str]) -> Insert:
        return self._insert(table).on_conflict_do_nothing(index_elements=list(keys))

    # -- schema -----------------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Run the Alembic migrations up to head (a no-op when already there)."""
        try:
            with self._connect("migrating the schema", write=True) as conn:
                if self.dialect == "postgresql":
                    # Serialise concurrent migrators; released at commit.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY})
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(
                f"monitoring store {self.url_display}: migrating the schema failed: {self._scrub(exc)}"
            ) from None

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at; None for an empty database."""
        with self._connect("reading the schema revision") as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def ping(self) -> None:
        """Raise `StoreError` unless the database answers `SELECT 1`."""
        with self._connect("connecting") as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        self._engine.dispose()

    # -- check results and violations --------------------------------------------------------------

    def record_check(
        self,
        result: CheckResult,
        violations: Sequence[ContractViolationEvent],
        *,
        table_name: str | None = None,
        enqueued: list[str] | None = None,
    ) -> list[str]:
        """Store a check result and its violations in one transaction; returns the violation ids.

        The violations (and a "resolved" notice when the check passes right after failing) enter the
        alert outbox in the same transaction; their outbox ids are appended to `enqueued` if given.
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
            "created_at": self._clock(),
            "table_name": table_name,
        }
        ids = [_new_id() for _ in violations]
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
        # The outbox rows go in with the check result: a detected violation cannot be lost before
        # it is routed, whatever happens to this process afterwards.
        now = self._clock()
        outbox_rows = [
            {
                "id": violation_id,
                "kind": "violation",
                "contract_name": event_.contract_name,
                "violation_type": event_.violation_type.value,
                "severity": event_.severity.value,
                "event": event_.model_dump(mode="json"),
                "created_at": now,
                "state": "pending",
                "reason": None,
                "routed_at": None,
            }
            for violation_id, event_ in zip(ids, violations, strict=True)
        ]
        with self._transaction("recording a check result", write=True) as conn:
            if result.status is CheckStatus.PASS:
                resolved = self._resolution_of(conn, result, table_name)
                if resolved is not None:
                    outbox_rows.append(
                        {
                            "id": _new_id(),
                            "kind": "resolved",
                            "contract_name": result.contract_name,
                            "violation_type": result.check_type.value,
                            "severity": resolved.severity.value,
                            "event": resolved.model_dump(mode="json"),
                            "created_at": now,
                            "state": "pending",
                            "reason": None,
                            "routed_at": None,
                        }
                    )
            conn.execute(t.contract_check_results.insert(), check_row)
            if violation_rows:
                conn.execute(t.contract_violations.insert(), violation_rows)
            if outbox_rows:
                conn.execute(t.alert_outbox.insert(), outbox_rows)
        if enqueued is not None:
            enqueued.extend(str(row["id"]) for row in outbox_rows)
        return ids

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
        with self._transaction("counting failed checks") as conn:
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
        with self._transaction("reading check results") as conn:
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
        with self._transaction("reading violations") as conn:
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
            "updated_at": self._clock(),
        }
        keys = ("contract_name", "check_type")
        return self._upsert(t.contract_sla_status, keys, [k for k in values if k not in keys]), values

    def upsert_sla_status(self, status: SLAStatus) -> None:
        """Insert or replace the SLA state of (contract, check type)."""
        stmt, values = self._sla_status_upsert(status)
        with self._transaction("saving the SLA status", write=True) as conn:
            conn.execute(stmt, values)

    def refresh_sla_status(
        self,
        contract_name: str,
        check_type: ViolationType,
        now: datetime,
        current_value: float,
        threshold: float,
        window_hours: int = 24,
    ) -> SLAStatus:
        """Recompute the SLA state of (contract, check type) from the stored history, save and return it.

        Over the rolling window `[now - window_hours, ...)`: `compliance_pct` = passed / total results
        (SKIPPED results did not run and count neither way; 100.0 without results) and
        `violation_count_24h` = violations of this type above INFO. `consecutive_failures` = FAIL and
        ERROR results after the newest PASS, over the whole stored history; `last_check_time` = the
        newest result. One read and one upsert, in one transaction.
        """
        ctype = ViolationType(check_type).value
        window_start = ensure_utc(now) - timedelta(hours=window_hours)

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
        with self._transaction("refreshing the SLA status", write=True) as conn:
            row = conn.execute(query).one()
            total, passed = int(row.total or 0), int(row.passed or 0)
            status = SLAStatus(
                contract_name=contract_name,
                check_type=ViolationType(check_type),
                current_value=current_value,
                threshold=threshold,
                compliance_pct=100.0 if total == 0 else min(100.0, passed / total * 100.0),
                last_check_time=row.last_check,
                consecutive_failures=int(row.streak or 0),
                violation_count_24h=int(row.violations or 0),
                window_start=window_start,
            )
            stmt, values = self._sla_status_upsert(status)
            conn.execute(stmt, values)
        return status

    # -- availability pings ------------------------------------------------------------------------

    def record_ping(self, contract_name: str, table_name: str, ping: PingResult) -> None:
        """Store one availability ping (its reason cut to the column's 64 characters)."""
        row = {
            "id": _new_id(),
            "contract_name": contract_name,
            "table_name": table_name,
            "checked_at": ping.checked_at,
            "ok": bool(ping.ok),
            "latency_ms": float(ping.latency_ms),
            "reason": None if ping.reason is None else ping.reason[: t.REASON_LENGTH],
            "message": ping.message,
        }
        with self._transaction("recording an availability ping", write=True) as conn:
            conn.execute(t.contract_availability_pings.insert(), row)

    def availability_window(self, contract_name: str, table_name: str, since: datetime) -> AvailabilityWindow:
        """Uptime of a contract table over the pings at or after `since`, plus its failure streak.

        Two queries in one transaction: the newest two pings, then one statement of scalar subqueries
        (window counts, the streak after the newest success, the newest failure, and the streak the
        newest ping ended). See `AvailabilityWindow` for what each field counts.
        """
        since = ensure_utc(since)

        def pings(*conds: sa.ColumnElement[bool]) -> tuple[NamedFromClause, list[sa.ColumnElement[bool]]]:
            a = t.contract_availability_pings.alias()
            return a, [a.c.contract_name == contract_name, a.c.table_name == table_name, *conds]

        def count(make: Callable[[NamedFromClause], list[sa.ColumnElement[bool]]]) -> sa.ScalarSelect[int]:
            a, where = pings()
            return sa.select(sa.func.count()).select_from(a).where(*where, *make(a)).scalar_subquery()

        def newest_ok_at(before: datetime | None = None) -> sa.ScalarSelect[datetime]:
            a, where = pings()
            if before is not None:
                where.append(a.c.checked_at < before)
            return sa.select(sa.func.max(a.c.checked_at)).where(*where, a.c.ok.is_(True)).scalar_subquery()

        newest, newest_where = pings()
        latest_query = (
            sa.select(newest.c.ok, newest.c.checked_at)
            .where(*newest_where)
            .order_by(newest.c.checked_at.desc(), newest.c.id.desc())
            .limit(2)
        )
        with self._transaction("reading availability pings") as conn:
            latest = conn.execute(latest_query).all()
            if not latest:
                return AvailabilityWindow(
                    since=since,
                    total=0,
                    ok=0,
                    uptime_pct=100.0,
                    consecutive_failures=0,
                    last_failure_at=None,
                    last_failure_reason=None,
                    latest_ok=None,
                    previous_ok=None,
                )
            latest_ok, latest_at = bool(latest[0].ok), latest[0].checked_at
            previous_ok = bool(latest[1].ok) if len(latest) > 1 else None
            last_ok = newest_ok_at()
            prev_ok = newest_ok_at(before=latest_at)
            fail, fail_where = pings()
            fail_where.append(fail.c.ok.is_(False))
            newest_failure = (
                sa.select(fail.c.checked_at, fail.c.reason)
                .where(*fail_where)
                .order_by(fail.c.checked_at.desc(), fail.c.id.desc())
                .limit(1)
            )
            query = sa.select(
                count(lambda a: [a.c.checked_at >= since]).label("total"),
                count(lambda a: [a.c.checked_at >= since, a.c.ok.is_(True)]).label("ok"),
                count(lambda a: [a.c.ok.is_(False), sa.or_(last_ok.is_(None), a.c.checked_at > last_ok)]).label(
                    "streak"
                ),
                count(
                    lambda a: [
                        a.c.ok.is_(False),
                        a.c.checked_at < latest_at,
                        sa.or_(prev_ok.is_(None), a.c.checked_at > prev_ok),
                    ]
                ).label("ended_streak"),
                newest_failure.with_only_columns(fail.c.checked_at).scalar_subquery().label("failure_at"),
                newest_failure.with_only_columns(fail.c.reason).scalar_subquery().label("failure_reason"),
            )
            row = conn.execute(query).one()
        total, ok = int(row.total or 0), int(row.ok or 0)
        return AvailabilityWindow(
            since=since,
            total=total,
            ok=ok,
            uptime_pct=uptime_pct(total, ok),
            consecutive_failures=int(row.streak or 0),
            last_failure_at=row.failure_at,
            last_failure_reason=row.failure_reason,
            latest_ok=latest_ok,
            previous_ok=previous_ok,
            recovered_after_failures=int(row.ended_streak or 0) if latest_ok else 0,
        )

    def sla_status(self, contract_name: str, check_type: ViolationType) -> SLAStatus | None:
        """The stored SLA state of (contract, check type), or None."""
        c = t.contract_sla_status.c
        query = sa.select(t.contract_sla_status).where(
            c.contract_name == contract_name, c.check_type == ViolationType(check_type).value
        )
        with self._transaction("reading the SLA status") as conn:
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

    # -- schema baselines --------------------------------------------------------------------------

    def schema_baseline(self, contract_name: str, table_name: str) -> dict[str, int]:
        """Column name -> Iceberg field id first recorded for this contract table."""
        c = t.contract_schema_baselines.c
        query = sa.select(c.column_name, c.field_id).where(c.contract_name == contract_name, c.table_name == table_name)
        with self._transaction("reading the schema baseline") as conn:
            return {name: int(field_id) for name, field_id in conn.execute(query)}

    def save_schema_baseline(
        self, contract_name: str, table_name: str, columns: Mapping[str, int], recorded_at: datetime
    ) -> None:
        """Record the field ids of columns not yet in the baseline; existing mappings are kept."""
        if not columns:
            return
        rows = [
            {
                "contract_name": contract_name,
                "table_name": table_name,
                "column_name": name,
                "field_id": int(field_id),
                "recorded_at": recorded_at,
            }
            for name, field_id in columns.items()
        ]
        stmt = self._insert_missing(t.contract_schema_baselines, ("contract_name", "table_name", "column_name"))
        with self._transaction("saving the schema baseline", write=True) as conn:
            conn.execute(stmt, rows)

    # -- registered contracts ----------------------------------------------------------------------

    def register_contract(
        self,
        name: str,
        version: str,
        contract_data: Mapping[str, Any],
        connection_config: Mapping[str, Any],
        overrides: Mapping[str, Any] | None,
        registered_at: datetime,
    ) -> None:
        """Insert or update a registration and make it active (its last check times are kept)."""
        values = {
            "contract_name": name,
            "contract_version": version,
            "contract_data": to_jsonable_python(dict(contract_data)),
            "connection_config": to_jsonable_python(dict(connection_config)),
            "monitoring_overrides": None if overrides is None else to_jsonable_python(dict(overrides)),
            "registered_at": registered_at,
            "last_check_times": {},
            "active": True,
        }
        update = [k for k in values if k not in ("contract_name", "last_check_times")]
        stmt = self._upsert(t.registered_contracts, ("contract_name",), update)
        with self._transaction("registering a contract", write=True) as conn:
            conn.execute(stmt, values)

    def deregister_contract(self, name: str) -> bool:
        """Mark a registration inactive; False when there is no such registration."""
        c = t.registered_contracts.c
        stmt = sa.update(t.registered_contracts).where(c.contract_name == name).values(active=False)
        with self._transaction("deregistering a contract", write=True) as conn:
            return conn.execute(stmt).rowcount > 0

    def registered_contracts(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        """Registrations as dicts (column name -> value), ordered by contract name."""
        c = t.registered_contracts.c
        query = sa.select(t.registered_contracts).order_by(c.contract_name)
        if active_only:
            query = query.where(c.active.is_(True))
        with self._transaction("reading registered contracts") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]


def _install_sqlite_hooks(engine: Engine) -> None:
    """Foreign keys, WAL, busy timeout, and real transactions (DDL included) on SQLite.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself, so
    that migrations are transactional and writers can take the lock up front (BEGIN IMMEDIATE).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        _enable_wal(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(str(conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "BEGIN")))


def _enable_wal(dbapi_connection: Any) -> None:
    """Switch the database to WAL unless it already is.

    Switching needs an exclusive lock and SQLite may answer "database is locked" at once, without
    waiting busy_timeout, when several connections open a new database together: retry until the
    switch succeeds, another connection has made it, or the busy timeout has passed.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        cursor = dbapi_connection.cursor()
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        finally:
            cursor.close()
        time.sleep(0.02)
