"""SLA reports against an independent recomputation from the raw rows (SC-005), on SQLite and PostgreSQL.

34 days of generated history for 10 contracts (plus one no longer loaded), every whole day aggregated,
time frozen: every figure of every report, for each window, equals what plain Python computes from the
rows that were written. Integers exactly; ratios within 1e-6 relative (SC-005 asks for 0.1 %).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from floe_monitoring_defs.models import CheckResult, CheckStatus, ViolationType
from floe_monitoring_defs.sla.model import SLAComplianceReport
from floe_monitoring_defs.sla.report import ReportError, SLAReporter
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.aggregates import days_in
from floe_monitoring_tests.integration.sla_history import (
    DEFAULT_TARGET,
    Figures,
    History,
    figures,
    generate,
    merged,
    midnight,
    resolutions,
    trend,
    write,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 31, 10, 20, 7, 250000, tzinfo=UTC)
WINDOWS = (("daily", 1), ("weekly", 7), ("monthly", 30))
REL = 1e-6


def close(actual: float | None, expected: float | None, what: str) -> None:
    if actual is None or expected is None:
        assert actual is None and expected is None, f"{what}: {actual!r} != {expected!r}"
        return
    assert abs(actual - expected) <= max(REL * abs(expected), 1e-9), f"{what}: {actual!r} != {expected!r}"


def _same(a: object, b: object, path: str) -> None:
    """Equal, floats within REL (sums taken in another order differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        close(a, b, path)
    else:
        assert a == b, path


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


@pytest.fixture
def history(store_url: str) -> Iterator[tuple[MonitoringStore, History]]:
    store = MonitoringStore(store_url, clock=lambda: NOW)
    store.db.upgrade()
    h = generate(seed=20260331, now=NOW)
    write(store_url, h)
    aggregates = store.aggregates
    for day in days_in(h.first_day.date(), NOW.date()):
        aggregates.aggregate_day(day, h.expectations, now=NOW)
    try:
        yield store, h
    finally:
        store.dispose()


def _check_report(rep: SLAComplianceReport, h: History, start: datetime) -> None:
    c = rep.contract_name
    figs = {k[1]: f for k, f in figures(h, start, NOW, c).items()}
    every = merged(figs.values())
    res = {k[1]: v for k, v in resolutions(h, start, NOW).items() if k[0] == c}
    bounds = [midnight(NOW) - timedelta(days=7 * (4 - i)) for i in range(5)]
    weeks = [figures(h, bounds[i], bounds[i + 1], c) for i in range(4)]

    assert (rep.period_start, rep.period_end) == (start, NOW)
    assert rep.total_checks_executed == every.total
    assert rep.total_violations == every.violations
    assert rep.expected_checks == every.expected
    assert rep.violations_by_severity == every.severities
    assert rep.violations_by_type == {k: f.violations for k, f in figs.items()}
    close(rep.overall_compliance_pct, every.compliance, f"{c} overall")
    close(rep.monitoring_coverage_pct, every.coverage, f"{c} coverage")
    close(rep.uptime_pct, every.uptime, f"{c} uptime")
    fresh = figs.get("freshness")
    close(rep.freshness_compliance_pct, fresh.compliance if fresh and fresh.evaluated else None, f"{c} freshness")
    close(rep.quality_score_avg, _mean(every.scores), f"{c} quality")
    close(rep.mttd_seconds, _mean(every.delays), f"{c} mttd")
    close(rep.mttr_seconds, _mean([s for v in res.values() for s in v]), f"{c} mttr")

    week_all = [merged(w.values()) for w in weeks]
    for got, want, lo in zip(rep.weekly, week_all, bounds[:-1], strict=True):
        assert (got.start, got.total_checks, got.passed_checks, got.violation_count) == (
            lo,
            want.total,
            want.passed,
            want.violations,
        )
        close(got.compliance_pct, want.compliance if want.evaluated else None, f"{c} week {lo}")
        close(got.quality_score_avg, _mean(want.scores), f"{c} week quality")
        close(got.uptime_pct, want.uptime, f"{c} week uptime")
    assert rep.trend.value == trend([w.compliance if w.evaluated else None for w in week_all])
    assert rep.quality_trend.value == trend([statistics.fmean(w.scores) * 100 if w.scores else None for w in week_all])

    assert [s.check_type.value for s in rep.check_summaries] == [
        x for x in ("freshness", "schema_drift", "quality", "availability") if x in figs
    ]
    for s in rep.check_summaries:
        ct = s.check_type.value
        f = figs[ct]
        what = f"{c}/{ct}"
        assert (s.total_checks, s.passed_checks, s.failed_checks, s.error_checks, s.skipped_checks) == (
            f.total,
            f.passed,
            f.failed,
            f.error,
            f.skipped,
        ), what
        assert (s.violation_count, s.violations_by_severity, s.expected_checks, s.detections) == (
            f.violations,
            f.severities,
            f.expected,
            len(f.delays),
        ), what
        close(s.compliance_pct, f.compliance, what)
        close(s.avg_duration_seconds, _mean(f.durations) or 0.0, what + " duration")
        close(s.monitoring_coverage_pct, f.coverage, what + " coverage")
        close(s.uptime_pct, f.uptime, what + " uptime")
        close(s.quality_score_avg, _mean(f.scores), what + " quality avg")
        close(s.quality_score_min, min(f.scores) if f.scores else None, what + " quality min")
        close(s.quality_score_max, max(f.scores) if f.scores else None, what + " quality max")
        close(s.mttd_seconds, _mean(f.delays), what + " mttd")
        close(s.mttr_seconds, _mean(res.get(ct, [])), what + " mttr")
        assert s.incidents_resolved == len(res.get(ct, []))
        typed = [w.get((c, ct), Figures()) for w in weeks]
        assert s.trend.value == trend([w.compliance if w.evaluated else None for w in typed]), what
        exp = h.expectations.get((c, ct))
        target = exp.target_pct if exp and exp.target_pct is not None else DEFAULT_TARGET
        sli = f.uptime if ct == "availability" and f.uptime is not None else (f.compliance if f.evaluated else None)
        if sli is None:
            assert s.error_budget is None, what
            continue
        b = s.error_budget
        assert b is not None and b.sli == ("uptime" if ct == "availability" and f.uptime is not None else "compliance")
        close(b.target_pct, target, what + " target")
        close(b.sli_pct, sli, what + " sli")
        close(b.remaining_pct, (100 - target) - (100 - sli), what + " budget left")
        close(b.burn_rate, (100 - sli) / (100 - target), what + " burn rate")
        assert b.exhausted == ((100 - sli) > (100 - target) + 1e-9)


def test_every_report_figure_matches_the_raw_rows(history: tuple[MonitoringStore, History]) -> None:
    store, h = history
    reporter = SLAReporter(store, clock=lambda: NOW)
    for window, days in WINDOWS:
        start = midnight(NOW) - timedelta(days=days)
        reports = reporter.reports(window, now=NOW)
        expected_contracts = sorted({k[0] for k in figures(h, start, NOW)})
        assert [r.contract_name for r in reports] == expected_contracts
        assert len(expected_contracts) >= 10
        for rep in reports:
            assert rep.window == window and rep.generated_at == NOW
            assert (rep.days_from_aggregates, rep.days_from_raw_rows) == (days, 1)  # today from raw rows
            _check_report(rep, h, start)
    # The generated history exercises what the figures depend on.
    month = reporter.reports("monthly", now=NOW)
    summaries = [s for r in month for s in r.check_summaries]
    assert any(s.error_checks for s in summaries) and any(s.skipped_checks for s in summaries)
    assert any(s.detections for s in summaries)
    assert any(s.incidents_resolved for s in summaries) and any(s.violations_by_severity["info"] for s in summaries)
    assert any(s.monitoring_coverage_pct is not None and s.monitoring_coverage_pct < 97 for s in summaries)
    assert any(s.error_budget and s.error_budget.exhausted for s in summaries)
    assert any(s.error_budget and not s.error_budget.exhausted for s in summaries)
    assert {r.trend.value for r in month} >= {"improving", "degrading"}
    # The no-longer-loaded contract has rows in the month only, and no cadence: coverage unknown.
    retired = reporter.report("retired", "monthly", now=NOW)
    assert retired.monitoring_coverage_pct is None and retired.total_checks_executed > 0


def test_daily_aggregates_match_each_day(history: tuple[MonitoringStore, History]) -> None:
    store, h = history
    rows = store.aggregates.daily_aggregates()
    assert {r.date for r in rows} == set(days_in(h.first_day.date(), NOW.date()))
    by_day: dict[datetime, dict] = {}
    for row in rows:
        lo = midnight(datetime.combine(row.date, datetime.min.time(), tzinfo=UTC))
        day = by_day.setdefault(lo, figures(h, lo, lo + timedelta(days=1)))
        f = day[row.key]
        tot = row.totals
        assert (tot.total, tot.passed, tot.failed, tot.error, tot.skipped, tot.violation_count) == (
            f.total,
            f.passed,
            f.failed,
            f.error,
            f.skipped,
            f.violations,
        ), row
        assert tot.by_severity() == f.severities and row.expected_checks == f.expected
        close(row.coverage_pct, f.coverage, "coverage")
        close(tot.uptime_pct, f.uptime, "uptime")
        close(tot.quality_avg, _mean(f.scores), "quality")
        close(tot.mttd_seconds, _mean(f.delays), "mttd")
        close(tot.avg_duration_seconds, _mean(f.durations) or 0.0, "duration")
    assert sum(len(d) for d in by_day.values()) >= len(rows)


def test_a_day_not_yet_aggregated_is_read_from_raw_rows(
    history: tuple[MonitoringStore, History], store_url: str
) -> None:
    store, h = history
    reporter = SLAReporter(store, clock=lambda: NOW)
    before = reporter.reports("weekly", now=NOW)
    yesterday = NOW.date() - timedelta(days=1)
    engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:  # as at 00:05, before the schedule aggregated yesterday
            conn.execute(sa.delete(t.contract_daily_aggregates).where(t.contract_daily_aggregates.c.date == yesterday))
            conn.execute(sa.delete(t.contract_aggregated_days).where(t.contract_aggregated_days.c.date == yesterday))
    finally:
        engine.dispose()
    after = reporter.reports("weekly", now=NOW)
    skip = {"days_from_aggregates", "days_from_raw_rows"}
    assert [(r.days_from_aggregates, r.days_from_raw_rows) for r in after][:1] == [(6, 2)]
    for a, b in zip(before, after, strict=True):
        _same(a.model_dump(exclude=skip), b.model_dump(exclude=skip), a.contract_name)
        _check_report(b, h, midnight(NOW) - timedelta(days=7))


def test_unknown_contract_is_a_report_error(store_url: str) -> None:
    store = MonitoringStore(store_url)
    try:
        _record(store, "known", NOW - timedelta(hours=1), CheckStatus.PASS)
        reporter = SLAReporter(store, clock=lambda: NOW)
        assert reporter.report("known", "daily", now=NOW).total_checks_executed == 1
        with pytest.raises(ReportError, match="no monitoring data for contract 'nope'"):
            reporter.report("nope", "daily", now=NOW)
        assert reporter.reports("daily", now=NOW - timedelta(days=3)) == []
    finally:
        store.dispose()


# -- US6-2 / US6-3 ---------------------------------------------------------------------------------


def _record(
    store: MonitoringStore,
    contract: str,
    at: datetime,
    status: CheckStatus,
    check_type: ViolationType = ViolationType.FRESHNESS,
) -> None:
    store.results.record_check(
        CheckResult(
            contract_name=contract,
            check_type=check_type,
            status=status,
            duration_seconds=0.2,
            timestamp=at,
            details={"table": "shop.t"},
        ),
        [],
        table_name="shop.t",
    )


def test_a_period_without_violations_is_100_percent_with_its_coverage(store_url: str) -> None:
    from floe_monitoring_defs.models import Expectation

    now = datetime(2026, 5, 10, 6, 0, tzinfo=UTC)
    store = MonitoringStore(store_url, clock=lambda: now)
    try:
        start = midnight(now) - timedelta(days=7)
        missed = {start + timedelta(hours=30), start + timedelta(hours=100)}  # two ticks that never ran
        tick = start
        while tick < now:
            if tick not in missed:
                _record(store, "steady", tick + timedelta(seconds=20), CheckStatus.PASS)
            tick += timedelta(hours=1)
        exp = {("steady", "freshness"): Expectation(60, 1, 99.0)}
        for day in days_in(start.date(), now.date()):
            store.aggregates.aggregate_day(day, exp, now=now)
        rep = SLAReporter(store, clock=lambda: now).report("steady", "weekly", now=now)
        assert rep.overall_compliance_pct == 100.0 and rep.total_violations == 0
        assert rep.violations_by_severity == {"info": 0, "warning": 0, "error": 0, "critical": 0}
        expected = 7 * 24 + 6  # whole days + the six ticks of today before 06:00
        assert rep.expected_checks == expected and rep.total_checks_executed == expected - 2
        assert rep.monitoring_coverage_pct == pytest.approx((expected - 2) / expected * 100)
        [fresh] = rep.check_summaries
        assert fresh.error_budget is not None and fresh.error_budget.burn_rate == 0.0
        assert fresh.error_budget.remaining_pct == pytest.approx(1.0)
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("rates", "direction"),
    [
        ((0.80, 0.85, 0.90, 0.95), "improving"),
        ((0.95, 0.90, 0.85, 0.80), "degrading"),
        ((0.90, 0.91, 0.90, 0.91), "stable"),
    ],
)
def test_weekly_buckets_are_computed_independently_and_trended(
    store_url: str, rates: tuple[float, ...], direction: str
) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday
    store = MonitoringStore(store_url, clock=lambda: now)
    try:
        first = midnight(now) - timedelta(days=28)
        for week, rate in enumerate(rates):
            for i in range(100):  # 100 checks per week, spread over its 7 days
                at = first + timedelta(days=7 * week, minutes=i * 100)
                _record(store, "rising", at, CheckStatus.PASS if i < rate * 100 else CheckStatus.FAIL)
        for day in days_in(first.date(), now.date()):
            store.aggregates.aggregate_day(day, {}, now=now)
        rep = SLAReporter(store, clock=lambda: now).report("rising", "monthly", now=now)
        assert [w.compliance_pct for w in rep.weekly] == pytest.approx([r * 100 for r in rates])
        assert [w.total_checks for w in rep.weekly] == [100] * 4
        assert [w.start for w in rep.weekly] == [first + timedelta(days=7 * k) for k in range(4)]
        assert rep.trend.value == direction
        assert rep.check_summaries[0].trend.value == direction
    finally:
        store.dispose()
