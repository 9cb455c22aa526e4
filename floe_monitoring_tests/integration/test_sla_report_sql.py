"""The SLA report computed in SQL (issue 15) against the report as it was computed before, on the same store.

Before issue 15 a report summed the segments between its window's and weeks' boundaries in Python, one
`Totals.__add__` (a new object) per addition, and built every figure through `Totals` properties. That code
is kept here, unchanged, as `legacy_reports` (the oracle; `benchmarks/sla.py` times it as the "before").
Now the window and the weekly buckets are summed in one grouped query (`AggregateRepository.span_totals`) and
the models are built from plain sums. Both run on the same store, SQLite and PostgreSQL: 10 contracts over 34
days with missed ticks, ERROR / SKIPPED results, two tables, one contract retired after 10 days (weeks with
no data), one whose checks were all skipped (nothing evaluated: None, "no data"), and a past day never
aggregated (read from raw rows); daily / weekly / monthly / 90-day windows, during a day and at midnight,
all contracts and one. Reports must be equal field by field: ints, strings, enums, None exactly, types
identical, floats to 1e-12 relative (a sum taken in another order may differ in the last bit).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from floe_monitoring_defs.contracts.model import ResponseSLA
from floe_monitoring_defs.models import SEVERITIES, Expectation, Key, Totals, ViolationType, ensure_utc
from floe_monitoring_defs.sla.build import ContractPeriod
from floe_monitoring_defs.sla.compliance import compute_trend, error_budget, mean
from floe_monitoring_defs.sla.model import (
    CheckTypeSummary,
    ErrorBudget,
    ResponsePromise,
    SLAComplianceReport,
    WeeklyBucket,
)
from floe_monitoring_defs.sla.report import WEEK, WEEKS, SLAReporter, window_days
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store.aggregates import day_start, days_in
from floe_monitoring_tests.integration.sla_history import TYPES, History, _add_result, generate, write

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 31, 10, 20, 7, 250000, tzinfo=UTC)
NOT_AGGREGATED = date(2026, 3, 20)  # a past day the daily asset never aggregated: read from raw rows
REL = 1e-12


# -- the report as computed before issue 15 (the oracle, and the "before" of benchmarks/sla.py) ---------------

_ORDER = {t.value: i for i, t in enumerate(ViolationType)}


def legacy_reports(
    reporter: SLAReporter,
    window: str | int,
    now: datetime | None = None,
    contract: str | None = None,
    responses: Mapping[str, ResponseSLA] | None = None,
) -> list[SLAComplianceReport]:
    """`SLAReporter.reports` as it was before issue 15 (segments summed in Python, models built from `Totals`)."""
    aggregates = reporter.aggregates
    name, days = window_days(window)
    generated = reporter.clock()
    end = ensure_utc(now) if now is not None else generated
    today = day_start(end)
    start = today - timedelta(days=days)
    week_bounds = [today - WEEK * (WEEKS - i) for i in range(WEEKS + 1)]
    known = aggregates.aggregated_days(min(start, week_bounds[0]).date(), today.date())
    latest = aggregates.latest_aggregated_day(before=today.date() + timedelta(days=1))
    stored = {} if latest is None else aggregates.stored_expectations(latest, contract)
    bounds = sorted({start, *week_bounds, today, end})
    segments = _legacy_collect(reporter, bounds, known, stored, contract)

    def span(lo: datetime, hi: datetime) -> dict[Key, Totals]:
        parts = [segments[i] for i in range(len(bounds) - 1) if lo <= bounds[i] and bounds[i + 1] <= hi]
        if len(parts) == 1:
            return parts[0]
        out: dict[Key, Totals] = {}
        for part in parts:
            for key, tot in part.items():
                out[key] = out[key] + tot if key in out else tot
        return out

    window_totals = span(start, end)
    weeks = [span(week_bounds[i], week_bounds[i + 1]) for i in range(WEEKS)]
    whole_days = list(days_in(start.date(), today.date()))
    agg_days = sum(1 for d in whole_days if d in known)
    raw_days = len(whole_days) - agg_days + (1 if end > today else 0)
    resolutions = aggregates.resolution_times(start, end, contract)
    targets = _by_contract({k: e.target_pct for k, e in stored.items() if e.target_pct is not None})
    by_contract = _by_contract(window_totals)
    weekly = [_by_contract(w) for w in weeks]
    resolved = _by_contract(resolutions)
    notified = _by_contract(aggregates.notification_delays(start, end, contract))
    responses = responses or {}
    return [
        _legacy_build(
            ContractPeriod(
                contract_name=c,
                window=name,
                period_start=start,
                period_end=end,
                generated_at=generated,
                totals=by_contract[c],
                weeks=[(week_bounds[i], week_bounds[i + 1], weekly[i].get(c, {})) for i in range(WEEKS)],
                targets=targets.get(c, {}),
                resolutions=resolved.get(c, {}),
                notifications=notified.get(c, {}),
                response=responses.get(c),
                days_from_aggregates=agg_days,
                days_from_raw_rows=raw_days,
                default_target_pct=reporter.default_target_pct,
            )
        )
        for c in sorted(by_contract)
    ]


def _legacy_collect(
    reporter: SLAReporter,
    bounds: Sequence[datetime],
    known: set[date],
    stored: Mapping[Key, Expectation],
    contract: str | None,
) -> list[dict[Key, Totals]]:
    last_day = day_start(bounds[-1])
    day_bounds = [min(b, last_day).date() for b in bounds]
    out = reporter.aggregates.bucket_totals(day_bounds, contract)
    full_days = list(days_in(bounds[0].date(), last_day.date()))
    missing = [d for d in full_days if d not in known]
    ranges = [(day_start(d), day_start(d) + timedelta(days=1)) for d in missing]
    if bounds[-1] > last_day:
        ranges.append((last_day, bounds[-1]))
    for lo, hi in ranges:
        idx = max(i for i in range(len(bounds) - 1) if bounds[i] <= lo)
        raw = reporter.aggregates.raw_totals(lo, hi, contract)
        keys = set(raw)
        if hi == bounds[-1] and hi > last_day:
            keys |= {k for k in stored if contract is None or k[0] == contract}
        for key in keys:
            exp = stored.get(key)
            piece = raw.get(key, Totals()).with_expected(None if exp is None else exp.expected_between(lo, hi))
            if piece == Totals():
                continue
            out[idx][key] = out[idx][key] + piece if key in out[idx] else piece
    return out


def _by_contract(by_key: Mapping[Key, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (contract, check_type), value in by_key.items():
        out.setdefault(contract, {})[check_type] = value
    return out


def _legacy_total_of(items: Sequence[Totals]) -> Totals:
    out = Totals()
    for item in items:
        out = out + item
    return out


def _legacy_bucket(start: datetime, end: datetime, tot: Totals) -> WeeklyBucket:
    return WeeklyBucket(
        start=start,
        end=end,
        total_checks=tot.total,
        passed_checks=tot.passed,
        evaluated_checks=tot.evaluated,
        compliance_pct=tot.compliance_pct if tot.evaluated else None,
        violation_count=tot.violation_count,
        quality_score_avg=tot.quality_avg,
        uptime_pct=tot.uptime_pct,
    )


def _legacy_budget(tot: Totals, target: float) -> ErrorBudget | None:
    if tot.uptime_pct is not None:
        return error_budget(target, tot.uptime_pct, "uptime")
    if tot.evaluated:
        return error_budget(target, tot.compliance_pct, "compliance")
    return None


def _legacy_build(p: ContractPeriod) -> SLAComplianceReport:
    types = sorted(set(p.totals), key=lambda v: (_ORDER.get(v, len(_ORDER)), v))
    summaries: list[CheckTypeSummary] = []
    for ctype in types:
        tot = p.totals[ctype]
        weekly = [_legacy_bucket(s, e, week.get(ctype, Totals())) for s, e, week in p.weeks]
        resolved = list(p.resolutions.get(ctype, ()))
        summaries.append(
            CheckTypeSummary(
                check_type=ViolationType(ctype),
                total_checks=tot.total,
                passed_checks=tot.passed,
                failed_checks=tot.failed,
                error_checks=tot.error,
                compliance_pct=tot.compliance_pct if tot.evaluated else None,
                avg_duration_seconds=tot.avg_duration_seconds,
                violation_count=tot.violation_count,
                trend=compute_trend([w.compliance_pct for w in weekly]),
                skipped_checks=tot.skipped,
                expected_checks=tot.expected,
                monitoring_coverage_pct=tot.coverage_pct,
                violations_by_severity=tot.by_severity(),
                uptime_pct=tot.uptime_pct,
                quality_score_avg=tot.quality_avg,
                quality_score_min=tot.quality_min,
                quality_score_max=tot.quality_max,
                error_budget=_legacy_budget(tot, p.targets.get(ctype, p.default_target_pct)),
                mttd_seconds=tot.mttd_seconds,
                detections=tot.detections,
                mttr_seconds=mean(resolved),
                incidents_resolved=len(resolved),
                weekly=weekly,
            )
        )
    overall = _legacy_total_of([p.totals[c] for c in types])
    weeks = [_legacy_bucket(s, e, _legacy_total_of(list(week.values()))) for s, e, week in p.weeks]
    freshness = p.totals.get(ViolationType.FRESHNESS.value)
    quality_weekly = [None if w.quality_score_avg is None else w.quality_score_avg * 100.0 for w in weeks]
    all_resolved = [s for ctype in p.resolutions for s in p.resolutions[ctype]]
    all_notified = [s for ctype in p.notifications for s in p.notifications[ctype]]
    return SLAComplianceReport(
        contract_name=p.contract_name,
        period_start=p.period_start,
        period_end=p.period_end,
        overall_compliance_pct=overall.compliance_pct if overall.evaluated else None,
        check_summaries=summaries,
        total_violations=overall.violation_count,
        total_checks_executed=overall.total,
        monitoring_coverage_pct=overall.coverage_pct,
        generated_at=p.generated_at,
        window=p.window,
        expected_checks=overall.expected,
        uptime_pct=overall.uptime_pct,
        freshness_compliance_pct=freshness.compliance_pct if freshness is not None and freshness.evaluated else None,
        quality_score_avg=overall.quality_avg,
        quality_trend=compute_trend(quality_weekly),
        trend=compute_trend([w.compliance_pct for w in weeks]),
        violations_by_type={c: p.totals[c].violation_count for c in types},
        violations_by_severity={s: overall.by_severity()[s] for s in SEVERITIES},
        weekly=weeks,
        mttd_seconds=overall.mttd_seconds,
        mttr_seconds=mean(all_resolved),
        mttn_seconds=mean(all_notified),
        notifications=len(all_notified),
        response_promises=_legacy_promises(p.response, overall, all_notified, all_resolved),
        days_from_aggregates=p.days_from_aggregates,
        days_from_raw_rows=p.days_from_raw_rows,
    )


def _legacy_promises(
    response: ResponseSLA | None, overall: Totals, notified: Sequence[float], resolved: Sequence[float]
) -> list[ResponsePromise]:
    if response is None:
        return []
    measured = (
        ("timeToDetect", response.time_to_detect, overall.mttd_seconds, overall.detections),
        ("timeToNotify", response.time_to_notify, mean(notified), len(notified)),
        ("timeToRepair", response.time_to_repair, mean(resolved), len(resolved)),
    )
    return [
        ResponsePromise(
            promise=name,
            target_seconds=target.total_seconds(),
            measured_seconds=value,
            samples=samples,
            met=None if value is None else value <= target.total_seconds(),
        )
        for name, target, value, samples in measured
        if target is not None
    ]


# -- comparing ---------------------------------------------------------------------------------------------


def assert_same(new: object, old: object, path: str = "report") -> None:
    """Equal and of the same type all the way down; floats within REL."""
    assert type(new) is type(old), f"{path}: {type(new).__name__} != {type(old).__name__}"
    if isinstance(old, SLAComplianceReport | CheckTypeSummary | WeeklyBucket | ErrorBudget | ResponsePromise):
        assert isinstance(new, type(old))
        for field in type(old).model_fields:
            assert_same(getattr(new, field), getattr(old, field), f"{path}.{field}")
    elif isinstance(old, dict):
        assert isinstance(new, dict)
        assert list(new) == list(old), f"{path}: keys {list(new)} != {list(old)}"
        for k in old:
            assert_same(new[k], old[k], f"{path}[{k!r}]")
    elif isinstance(old, list):
        assert isinstance(new, list)
        assert len(new) == len(old), f"{path}: {len(new)} items != {len(old)}"
        for i, (x, y) in enumerate(zip(new, old, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(old, float):
        assert isinstance(new, float)
        assert abs(new - old) <= REL * max(1.0, abs(old)), f"{path}: {new!r} != {old!r}"
    else:
        assert new == old, f"{path}: {new!r} != {old!r}"


# -- the store -------------------------------------------------------------------------------------------


def _with_all_skipped(h: History) -> None:
    """A contract whose every check of the last 10 days was SKIPPED: it has results, nothing evaluated."""
    rnd = random.Random(15)

    def new_id() -> str:
        return str(uuid.UUID(int=rnd.getrandbits(128), version=4))

    at = day_start(NOW) - timedelta(days=10)
    while at < NOW:
        _add_result(h, rnd, new_id, "all_skipped", "quality", "shop.all_skipped_0", "skipped", at)
        at += timedelta(hours=6)
    h.expectations[("all_skipped", "quality")] = Expectation(360, 1, 99.0)


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url, clock=lambda: NOW)
    s.db.upgrade()
    h = generate(seed=20261202, now=NOW)
    _with_all_skipped(h)
    write(store_url, h)
    for day in days_in(h.first_day.date(), NOW.date()):
        if day != NOT_AGGREGATED:
            s.aggregates.aggregate_day(day, h.expectations, now=NOW)
    try:
        yield s
    finally:
        s.dispose()


RESPONSE = ResponseSLA(time_to_detect=timedelta(hours=1), time_to_repair=timedelta(hours=4))


@pytest.mark.parametrize("window", ["daily", "weekly", "monthly", 90])
@pytest.mark.parametrize("now", [NOW, day_start(NOW)], ids=["midday", "midnight"])
def test_reports_equal_the_legacy_computation(store: MonitoringStore, window: str | int, now: datetime) -> None:
    reporter = SLAReporter(store, clock=lambda: NOW)
    responses = {"contract_01": RESPONSE}
    new = reporter.reports(window, now=now, responses=responses)
    old = legacy_reports(reporter, window, now=now, responses=responses)
    assert [r.contract_name for r in new] == [r.contract_name for r in old]
    assert len(new) >= 10  # the store's contracts with data in the window
    for n, o in zip(new, old, strict=True):
        assert_same(n, o, n.contract_name)


@pytest.mark.parametrize("contract", ["contract_03", "contract_09", "retired", "all_skipped"])
def test_one_contract_equals_the_legacy_computation(store: MonitoringStore, contract: str) -> None:
    reporter = SLAReporter(store, clock=lambda: NOW)
    for window, found in (("weekly", 0 if contract == "retired" else 1), (90, 1)):
        new = reporter.reports(window, now=NOW, contract=contract)
        old = legacy_reports(reporter, window, now=NOW, contract=contract)
        assert len(new) == len(old) == found  # retired 24 days ago: nothing in the last week
        for n, o in zip(new, old, strict=True):
            assert_same(n, o, contract)


def test_the_cases_the_comparison_must_cover(store: MonitoringStore) -> None:
    """The store holds what the comparison is meant to exercise (else equality would prove little)."""
    reports = {r.contract_name: r for r in SLAReporter(store, clock=lambda: NOW).reports(90, now=NOW)}
    skipped = reports["all_skipped"]
    assert skipped.total_checks_executed > 0
    assert skipped.overall_compliance_pct is None  # nothing evaluated: no data, never 0 %
    assert [s.compliance_pct for s in skipped.check_summaries] == [None]
    assert skipped.check_summaries[0].error_budget is None
    retired = reports["retired"]  # retired 24 days ago: the last three weekly buckets have no data
    assert [w.compliance_pct is None for w in retired.weekly] == [False, True, True, True]
    assert [w.total_checks > 0 for w in retired.weekly] == [True, False, False, False]
    assert {s.check_type.value for r in reports.values() for s in r.check_summaries} == set(TYPES)
    assert any(s.uptime_pct is not None for r in reports.values() for s in r.check_summaries)
    assert any(s.quality_score_min is not None for r in reports.values() for s in r.check_summaries)
    full = reports["contract_00"]
    # 90 whole days: 34 with history, of which one never aggregated, read from raw rows with today.
    assert (full.days_from_aggregates, full.days_from_raw_rows) == (33, 90 - 33 + 1)
