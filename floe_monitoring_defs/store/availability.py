"""Availability pings (`contract_availability_pings`): every ping stored, read back as a rolling window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.sql.selectable import NamedFromClause

from floe_monitoring_defs.models import AvailabilityWindow, PingResult, ensure_utc, uptime_pct
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database, new_id


class AvailabilityRepository:
    """The stored pings of every contract table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_ping(self, contract_name: str, table_name: str, ping: PingResult) -> None:
        """Store one availability ping (its reason cut to the column's 64 characters)."""
        row = {
            "id": new_id(),
            "contract_name": contract_name,
            "table_name": table_name,
            "checked_at": ping.checked_at,
            "ok": bool(ping.ok),
            "latency_ms": float(ping.latency_ms),
            "reason": None if ping.reason is None else ping.reason[: t.REASON_LENGTH],
            "message": ping.message,
        }
        with self._db.transaction("recording an availability ping", write=True) as conn:
            conn.execute(t.contract_availability_pings.insert(), row)

    def window(self, contract_name: str, table_name: str, since: datetime) -> AvailabilityWindow:
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
        with self._db.transaction("reading availability pings") as conn:
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
