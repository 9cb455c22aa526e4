"""Daily SLA aggregates and the reads behind SLA reports.

`aggregate_day` is one SQL pass over a day's raw rows (GROUP BY contract and check type over
`contract_check_results`, violations counted by severity, PASS -> FAIL transitions found with a window
function), written replace-by-day in one transaction: re-running a day replaces it, never adds to it.
Reports read sums of those rows (`span_totals`: a window and its weekly buckets from one grouped query)
and go to raw rows only for what has not been aggregated (today so far). Retention (`store.retention`)
never touches the aggregates. Everything here runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from floe_monitoring_defs.models import CheckStatus, Expectation, Key, Totals, ensure_utc, expected_from_stored
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database

# How far before a day the previous result of a FAIL is looked for (MTTD): the longest interval is a day.
DETECTION_LOOKBACK = timedelta(days=1)
REPORT_WORK_MEM = "64MB"  # PostgreSQL work_mem of the report's aggregate reads
_SEVERITY_COLUMNS = {
    "info": "info_violations",
    "warning": "warning_violations",
    "error": "error_violations",
    "critical": "critical_violations",
}


def day_start(value: date | datetime) -> datetime:
    """Midnight UTC of the day (of a date, or of an aware datetime taken in UTC)."""
    if isinstance(value, datetime):
        value = ensure_utc(value).date()
    return datetime.combine(value, time.min, tzinfo=UTC)


def days_in(start: date, end: date) -> Iterator[date]:
    """Every day in [start, end)."""
    d = start
    while d < end:
        yield d
        d += timedelta(days=1)


@dataclass(frozen=True)
class DailyAggregate:
    """One stored row of `contract_daily_aggregates`."""

    contract_name: str
    check_type: str
    date: date
    totals: Totals
    expected_checks: int | None
    coverage_pct: float | None
    interval_minutes: int | None
    target_pct: float | None
    computed_at: datetime | None

    @property
    def key(self) -> Key:
        return (self.contract_name, self.check_type)


class AggregateRepository:
    """SLA aggregation and the reads behind reports: `contract_daily_aggregates`, the aggregated-days ledger,
    and the raw rows of what is not aggregated yet."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- raw rows -> totals ----------------------------------------------------------------------

    def raw_totals(self, start: datetime, end: datetime, contract: str | None = None) -> dict[Key, Totals]:
        """Totals per (contract, check type) straight from the raw rows of [start, end)."""
        with self._db.transaction("reading check results") as conn:
            return _raw_totals(conn, ensure_utc(start), ensure_utc(end), contract)

    def aggregate_day(
        self,
        day: date,
        expectations: Mapping[Key, Expectation] | None = None,
        now: datetime | None = None,
    ) -> list[DailyAggregate]:
        """Compute and store the aggregates of one UTC day, replacing whatever that day held.

        One transaction: the day's raw totals, its rows deleted, the new rows inserted, the day entered in
        `contract_aggregated_days`. Every (contract, check type) with results or violations gets a row,
        and so does every expected one without any (its coverage is 0 %).
        """
        expectations = expectations or {}
        start = day_start(day)
        end = start + timedelta(days=1)
        computed_at = ensure_utc(now) if now is not None else self._db.clock()
        agg = t.contract_daily_aggregates
        with self._db.transaction(f"aggregating {day.isoformat()}", write=True) as conn:
            raw = _raw_totals(conn, start, end, None)
            keys = set(raw) | {k for k, e in expectations.items() if e.per_day}
            out: list[DailyAggregate] = []
            for key in sorted(keys):
                exp = expectations.get(key)
                totals = raw.get(key, Totals()).with_expected(None if exp is None else exp.expected_between(start, end))
                out.append(
                    DailyAggregate(
                        contract_name=key[0],
                        check_type=key[1],
                        date=day,
                        totals=totals,
                        expected_checks=totals.expected,
                        coverage_pct=totals.coverage_pct,
                        interval_minutes=None if exp is None else exp.interval_minutes,
                        target_pct=None if exp is None else exp.target_pct,
                        computed_at=computed_at,
                    )
                )
            conn.execute(sa.delete(agg).where(agg.c.date == day))
            if out:
                conn.execute(agg.insert(), [_row(a) for a in out])
            ledger = self._db.upsert(t.contract_aggregated_days, ["date"], ["computed_at", "row_count"])
            conn.execute(ledger, {"date": day, "computed_at": computed_at, "row_count": len(out)})
        return out

    # -- aggregates -> totals --------------------------------------------------------------------

    def aggregated_days(self, start: date, end: date) -> set[date]:
        """The days in [start, end) that have been aggregated."""
        d = t.contract_aggregated_days.c
        q = sa.select(d.date).where(d.date >= start, d.date < end)
        with self._db.transaction("reading aggregated days") as conn:
            return {_as_date(v) for v in conn.execute(q).scalars()}

    def latest_aggregated_day(self, before: date | None = None) -> date | None:
        d = t.contract_aggregated_days.c
        q = sa.select(sa.func.max(d.date))
        if before is not None:
            q = q.where(d.date < before)
        with self._db.transaction("reading aggregated days") as conn:
            value = conn.execute(q).scalar()
        return None if value is None else _as_date(value)

    def bucket_totals(self, bounds: Sequence[date], contract: str | None = None) -> list[dict[Key, Totals]]:
        """Totals per (contract, check type) for each [bounds[i], bounds[i + 1]) of stored days, in one query."""
        if len(bounds) < 2:
            return []
        q = _segment_sums(bounds, contract)
        out: list[dict[Key, Totals]] = [{} for _ in bounds[1:]]
        with self._db.transaction("reading daily aggregates") as conn:
            self._report_memory(conn)
            for name, ctype, idx, *sums in conn.execute(q):
                out[int(idx)][(name, ctype)] = _totals(sums)
        return out

    def span_totals(self, spans: Sequence[tuple[date, date]], contract: str | None = None) -> list[dict[Key, Totals]]:
        """Totals per (contract, check type) for each span [lo, hi) of stored days (spans may overlap: a report's
        window and its weekly buckets), from one grouped query.

        The query groups the rows once into the segments between every span boundary, so a row of
        `contract_daily_aggregates` is aggregated once however many spans hold its day; a span of one segment
        (a weekly bucket) is that group as it comes, a longer one (the window) the sum of its few groups, taken
        in plain numbers in segment order and made a `Totals` once. (Summing the segments in a second level of
        the same statement was measured slower on PostgreSQL: a sort of the groups by their text keys.)
        """
        live = [(i, lo, hi) for i, (lo, hi) in enumerate(spans) if lo < hi]
        acc: list[dict[Key, list[Any]]] = [{} for _ in spans]
        if not live:
            return [{} for _ in spans]
        bounds = sorted({d for _, lo, hi in live for d in (lo, hi)})
        holders = [
            [acc[i] for i, lo, hi in live if lo <= bounds[k] and bounds[k + 1] <= hi] for k in range(len(bounds) - 1)
        ]
        by_segment: list[list[Any]] = [[] for _ in holders]
        with self._db.transaction("reading daily aggregates") as conn:
            self._report_memory(conn)
            for row in conn.execute(_segment_sums(bounds, contract)).all():  # one fetch, not one per row
                by_segment[int(row[2])].append(row)
        for parts, rows in zip(holders, by_segment, strict=True):
            for name, ctype, _, *sums in rows:
                key = (name, ctype)
                for n, part in enumerate(parts):
                    cur = part.get(key)
                    if cur is None:
                        part[key] = sums if n == 0 else list(sums)
                    else:
                        _merge_sums(cur, sums)
        return [{key: _totals(sums) for key, sums in part.items()} for part in acc]

    def _report_memory(self, conn: Connection) -> None:
        if self._db.dialect == "postgresql":
            # Tens of thousands of groups: let the aggregation hash in memory rather than sort on disk
            # (the default 4 MB). SET LOCAL ends with this read-only transaction.
            conn.execute(sa.text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))

    def daily_aggregates(
        self, *, contract: str | None = None, start: date | None = None, end: date | None = None
    ) -> list[DailyAggregate]:
        """Stored rows, by date, contract and check type; [start, end) when given."""
        a = t.contract_daily_aggregates.c
        q = sa.select(t.contract_daily_aggregates).order_by(a.date, a.contract_name, a.check_type)
        if contract is not None:
            q = q.where(a.contract_name == contract)
        if start is not None:
            q = q.where(a.date >= start)
        if end is not None:
            q = q.where(a.date < end)
        with self._db.transaction("reading daily aggregates") as conn:
            return [_aggregate(dict(m)) for m in conn.execute(q).mappings()]

    def stored_expectations(self, day: date, contract: str | None = None) -> dict[Key, Expectation]:
        """The cadence and target each (contract, check type) had when `day` was aggregated."""
        a = t.contract_daily_aggregates.c
        q = sa.select(a.contract_name, a.check_type, a.expected_checks, a.interval_minutes, a.target_pct).where(
            a.date == day
        )
        if contract is not None:
            q = q.where(a.contract_name == contract)
        out: dict[Key, Expectation] = {}
        with self._db.transaction("reading daily aggregates") as conn:
            for name, ctype, expected, interval, target in conn.execute(q):
                exp = expected_from_stored(expected, interval, target)
                if exp is None and target is not None:
                    exp = Expectation(interval_minutes=None, tables=0, target_pct=float(target))
                if exp is not None:
                    out[(name, ctype)] = exp
        return out

    def resolution_times(self, start: datetime, end: datetime, contract: str | None = None) -> dict[Key, list[float]]:
        """Seconds from opening to resolution of the incidents resolved in [start, end), per (contract, type)."""
        i = t.incidents.c
        q = sa.select(i.contract_name, i.violation_type, i.created_at, i.resolved_at).where(
            i.resolved_at.is_not(None), i.resolved_at >= ensure_utc(start), i.resolved_at < ensure_utc(end)
        )
        if contract is not None:
            q = q.where(i.contract_name == contract)
        out: dict[Key, list[float]] = {}
        with self._db.transaction("reading incidents") as conn:
            for name, vtype, created, resolved in conn.execute(q):
                seconds = (ensure_utc(resolved) - ensure_utc(created)).total_seconds()
                out.setdefault((name, vtype), []).append(max(0.0, seconds))
        return out

    def notification_delays(
        self, start: datetime, end: datetime, contract: str | None = None
    ) -> dict[Key, list[float]]:
        """Seconds from a violation entering the outbox (its detection, same transaction) to its first delivery
        to any channel, for the violations detected in [start, end), per (contract, type). Violations never
        delivered (suppressed, no route, still failing) are not counted."""
        o, d = t.alert_outbox.c, t.alert_deliveries.c
        q = (
            sa.select(o.contract_name, o.violation_type, o.created_at, sa.func.min(d.delivered_at))
            .join(t.alert_deliveries, d.outbox_id == o.id)
            .where(
                o.kind == "violation",
                d.delivered_at.is_not(None),
                o.created_at >= ensure_utc(start),
                o.created_at < ensure_utc(end),
            )
            .group_by(o.id, o.contract_name, o.violation_type, o.created_at)
        )
        if contract is not None:
            q = q.where(o.contract_name == contract)
        out: dict[Key, list[float]] = {}
        with self._db.transaction("reading alert deliveries") as conn:
            for name, vtype, created, delivered in conn.execute(q):
                seconds = (ensure_utc(delivered) - ensure_utc(created)).total_seconds()
                out.setdefault((name, vtype), []).append(max(0.0, seconds))
        return out


# -- SQL -----------------------------------------------------------------------------------------


def _raw_totals(conn: Connection, start: datetime, end: datetime, contract: str | None) -> dict[Key, Totals]:
    c = t.contract_check_results.c

    def count_of(status: CheckStatus) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((c.status == status.value, 1), else_=0))

    # Evidence that means the same to the SLA figures whichever check kind reports it (checks/kind.py):
    # `score` (0..1) feeds the score figures, `ping_ok` (true / false) the uptime. JSON accessors render
    # JSON_EXTRACT on SQLite and ->> with a cast on PostgreSQL; a result without the key gives NULL.
    score = c.details["score"].as_float()
    ping_ok = c.details["ping_ok"].as_boolean()
    where = [c.checked_at >= start, c.checked_at < end]
    if contract is not None:
        where.append(c.contract_name == contract)
    results = (
        sa.select(
            c.contract_name,
            c.check_type,
            sa.func.count(),
            count_of(CheckStatus.PASS),
            count_of(CheckStatus.FAIL),
            count_of(CheckStatus.ERROR),
            count_of(CheckStatus.SKIPPED),
            sa.func.sum(c.duration_seconds),
            sa.func.count(score),
            sa.func.sum(score),
            sa.func.min(score),
            sa.func.max(score),
            sa.func.count(ping_ok),
            sa.func.sum(sa.case((ping_ok, 1), else_=0)),
        )
        .where(*where)
        .group_by(c.contract_name, c.check_type)
    )
    v = t.contract_violations.c
    vwhere = [v.detected_at >= start, v.detected_at < end]
    if contract is not None:
        vwhere.append(v.contract_name == contract)
    violations = (
        sa.select(v.contract_name, v.violation_type, v.severity, sa.func.count())
        .where(*vwhere)
        .group_by(v.contract_name, v.violation_type, v.severity)
    )

    fields: dict[Key, dict[str, Any]] = {}
    for name, ctype, total, passed, failed, error, skipped, dur, qn, qsum, qmin, qmax, pn, pok in conn.execute(results):
        fields[(name, ctype)] = {
            "total": int(total),
            "passed": int(passed or 0),
            "failed": int(failed or 0),
            "error": int(error or 0),
            "skipped": int(skipped or 0),
            "duration_sum": float(dur or 0.0),
            "quality_n": int(qn or 0),
            "quality_sum": float(qsum or 0.0),
            "quality_min": None if qmin is None else float(qmin),
            "quality_max": None if qmax is None else float(qmax),
            "ping_n": int(pn or 0),
            "ping_ok": int(pok or 0),
        }
    for name, vtype, severity, count in conn.execute(violations):
        entry = fields.setdefault((name, vtype), {})
        entry.setdefault("violations", {})[str(severity)] = int(count)
    for key, (count, seconds) in _detections(conn, start, end, contract).items():
        entry = fields.setdefault(key, {})
        entry["detections"], entry["detection_seconds"] = count, seconds
    return {key: Totals(**values) for key, values in fields.items()}


def _detections(conn: Connection, start: datetime, end: datetime, contract: str | None) -> dict[Key, tuple[int, float]]:
    """FAIL results in [start, end) whose previous result (same contract, type, table) was a PASS, with the
    summed delay PASS -> FAIL. Only series that failed in the range are windowed."""
    c = t.contract_check_results.c
    failing_where = [c.status == CheckStatus.FAIL.value, c.checked_at >= start, c.checked_at < end]
    if contract is not None:
        failing_where.append(c.contract_name == contract)
    failing = sa.select(c.contract_name, c.check_type).where(*failing_where).distinct()
    part, order = (c.contract_name, c.check_type, c.table_name), (c.checked_at, c.id)
    series = (
        sa.select(
            c.contract_name,
            c.check_type,
            c.status,
            c.checked_at,
            sa.func.lag(c.status).over(partition_by=part, order_by=order).label("prev_status"),
            sa.func.lag(c.checked_at, type_=t.UTCDateTime()).over(partition_by=part, order_by=order).label("prev_at"),
        )
        .where(
            c.checked_at >= start - DETECTION_LOOKBACK,
            c.checked_at < end,
            sa.tuple_(c.contract_name, c.check_type).in_(failing),
        )
        .subquery()
    )
    s = series.c
    q = sa.select(s.contract_name, s.check_type, s.checked_at, s.prev_at).where(
        s.status == CheckStatus.FAIL.value, s.prev_status == CheckStatus.PASS.value, s.checked_at >= start
    )
    out: dict[Key, tuple[int, float]] = {}
    for name, ctype, failed_at, passed_at in conn.execute(q):
        count, seconds = out.get((name, ctype), (0, 0.0))
        delay = (ensure_utc(failed_at) - ensure_utc(passed_at)).total_seconds()
        out[(name, ctype)] = (count + 1, seconds + max(0.0, delay))
    return out


def _segment_sums(bounds: Sequence[date], contract: str | None) -> sa.Select[Any]:
    """contract, check type, bucket i, then the 20 sums of `_totals` over the stored days of
    [bounds[i], bounds[i + 1]), grouped by (contract, check type, bucket)."""
    src = t.contract_daily_aggregates.c
    whens = [(src.date < b, i) for i, b in enumerate(bounds[1:-1])]
    where = [src.date >= bounds[0], src.date < bounds[-1]]
    if contract is not None:
        where.append(src.contract_name == contract)
    # The bucket of each row in a subquery, grouped outside: PostgreSQL would not match a CASE with
    # bound parameters in GROUP BY to the same CASE in the select list.
    rows = (
        sa.select(
            t.contract_daily_aggregates,
            (sa.case(*whens, else_=len(bounds) - 2) if whens else sa.literal(0)).label("bucket"),
        )
        .where(*where)
        .subquery()
    )
    a = rows.c
    capped = sa.case(
        (a.expected_checks.is_(None), 0),
        (a.total_checks < a.expected_checks, a.total_checks),
        else_=a.expected_checks,
    )

    def total(value: Any, zero: int | float = 0) -> sa.ColumnElement[Any]:
        # Never NULL, so segments add up as plain numbers (COALESCE runs once per group, not per row).
        return sa.func.coalesce(sa.func.sum(value), zero)

    cols = [
        total(a.total_checks),
        total(a.passed_checks),
        total(a.failed_checks),
        total(a.error_checks),
        total(a.skipped_checks),
        total(a.avg_duration_seconds * a.total_checks, 0.0),
        total(a.quality_scored_checks),
        total(a.avg_quality_score * a.quality_scored_checks, 0.0),
        sa.func.min(a.min_quality_score),
        sa.func.max(a.max_quality_score),
        total(a.ping_checks),
        total(a.ping_ok_checks),
        *(total(a[col]) for col in _SEVERITY_COLUMNS.values()),
        sa.func.sum(a.expected_checks),  # NULL: no day of the segment knew its cadence
        total(capped),
        total(a.detections),
        total(a.detection_seconds, 0.0),
    ]
    return sa.select(a.contract_name, a.check_type, a.bucket, *cols).group_by(a.contract_name, a.check_type, a.bucket)


def _totals(sums: Sequence[Any]) -> Totals:
    """A `Totals` from the 20 figures `_segment_sums` selects (in its order); NULL sums are 0."""
    total, passed, failed, error, skipped, dur, qn, qsum, qmin, qmax, pn, pok, vi, vw, ve, vc, exp, cov, det, det_s = (
        sums
    )
    return Totals(
        total=int(total or 0),
        passed=int(passed or 0),
        failed=int(failed or 0),
        error=int(error or 0),
        skipped=int(skipped or 0),
        duration_sum=float(dur or 0.0),
        quality_n=int(qn or 0),
        quality_sum=float(qsum or 0.0),
        quality_min=None if qmin is None else float(qmin),
        quality_max=None if qmax is None else float(qmax),
        ping_n=int(pn or 0),
        ping_ok=int(pok or 0),
        violations=_severities(vi, vw, ve, vc),
        expected=None if exp is None else int(exp),
        covered=int(cov or 0),
        detections=int(det or 0),
        detection_seconds=float(det_s or 0.0),
    )


_SUMMED = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    10,
    11,
    12,
    13,
    14,
    15,
    17,
    18,
    19,
)  # of `_segment_sums`; 8, 9 min / max; 16 expected


def _merge_sums(cur: list[Any], more: Sequence[Any]) -> None:
    """Add one segment's figures (`_segment_sums` order) into `cur`, in place: what `Totals.__add__` does."""
    for i in _SUMMED:
        cur[i] += more[i]
    lo, hi, expected = more[8], more[9], more[16]
    if lo is not None and (cur[8] is None or lo < cur[8]):
        cur[8] = lo
    if hi is not None and (cur[9] is None or hi > cur[9]):
        cur[9] = hi
    if expected is not None:
        cur[16] = expected if cur[16] is None else cur[16] + expected


def _severities(*counts: Any) -> dict[str, int]:
    return {s: int(n or 0) for s, n in zip(_SEVERITY_COLUMNS, counts, strict=True) if n}


def _row(a: DailyAggregate) -> dict[str, Any]:
    tot = a.totals
    sev = tot.by_severity()
    return {
        "contract_name": a.contract_name,
        "check_type": a.check_type,
        "date": a.date,
        "total_checks": tot.total,
        "passed_checks": tot.passed,
        "failed_checks": tot.failed,
        "error_checks": tot.error,
        "skipped_checks": tot.skipped,
        "avg_duration_seconds": tot.duration_sum / tot.total if tot.total else None,
        "min_quality_score": tot.quality_min,
        "max_quality_score": tot.quality_max,
        "avg_quality_score": tot.quality_avg,
        "uptime_pct": tot.uptime_pct,
        "violation_count": tot.violation_count,
        **{col: sev[s] for s, col in _SEVERITY_COLUMNS.items()},
        "expected_checks": a.expected_checks,
        "coverage_pct": a.coverage_pct,
        "interval_minutes": a.interval_minutes,
        "target_pct": a.target_pct,
        "quality_scored_checks": tot.quality_n,
        "ping_checks": tot.ping_n,
        "ping_ok_checks": tot.ping_ok,
        "detections": tot.detections,
        "detection_seconds": tot.detection_seconds,
        "computed_at": a.computed_at,
    }


def _aggregate(m: Mapping[str, Any]) -> DailyAggregate:
    total = int(m["total_checks"])
    expected = m["expected_checks"]
    totals = Totals(
        total=total,
        passed=int(m["passed_checks"]),
        failed=int(m["failed_checks"]),
        error=int(m["error_checks"]),
        skipped=int(m["skipped_checks"]),
        duration_sum=float(m["avg_duration_seconds"] or 0.0) * total,
        quality_n=int(m["quality_scored_checks"]),
        quality_sum=float(m["avg_quality_score"] or 0.0) * int(m["quality_scored_checks"]),
        quality_min=m["min_quality_score"],
        quality_max=m["max_quality_score"],
        ping_n=int(m["ping_checks"]),
        ping_ok=int(m["ping_ok_checks"]),
        violations=_severities(*(m[col] for col in _SEVERITY_COLUMNS.values())),
        detections=int(m["detections"]),
        detection_seconds=float(m["detection_seconds"]),
    ).with_expected(None if expected is None else int(expected))
    return DailyAggregate(
        contract_name=m["contract_name"],
        check_type=m["check_type"],
        date=_as_date(m["date"]),
        totals=totals,
        expected_checks=totals.expected,
        coverage_pct=m["coverage_pct"],
        interval_minutes=m["interval_minutes"],
        target_pct=m["target_pct"],
        computed_at=m["computed_at"],
    )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


__all__ = ["AggregateRepository", "DailyAggregate", "day_start", "days_in"]
