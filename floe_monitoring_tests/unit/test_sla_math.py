"""SLA compliance math, expectations from the cadence, the report model and settings: pure, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from floe_monitoring_defs.checks.plan import plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.config import ConfigError, MonitoringConfig
from floe_monitoring_defs.contracts.model import (
    AvailabilitySLA,
    FreshnessSLA,
    LoadReport,
    MonitoredContract,
    MonitoredTable,
    QualityRule,
    TableRef,
)
from floe_monitoring_defs.models import expected_from_stored
from floe_monitoring_defs.sla import (
    Expectation,
    ReportWindow,
    Totals,
    TrendDirection,
    compliance_pct,
    compute_trend,
    coverage_pct,
    error_budget,
)
from floe_monitoring_defs.sla.build import ContractPeriod, build_report
from floe_monitoring_defs.sla.report import window_days
from floe_monitoring_defs.sla.settings import SLASettings

MIDNIGHT = datetime(2026, 3, 31, tzinfo=UTC)


# -- compliance, coverage, trend, budget ------------------------------------------------------------


def test_compliance_excludes_skipped_and_counts_errors_against() -> None:
    assert compliance_pct(passed=90, total=100) == 90.0
    assert compliance_pct(passed=90, total=100, skipped=10) == 100.0  # the 10 skipped said nothing
    assert compliance_pct(passed=80, total=100, skipped=10) == pytest.approx(80 / 90 * 100)  # errors count against
    assert compliance_pct(passed=0, total=5, skipped=5) == 0.0  # nothing evaluated: 0.0 (spec 9.8)
    assert compliance_pct(passed=0, total=0) == 0.0


def test_coverage_is_capped_and_unknown_without_a_cadence() -> None:
    assert coverage_pct(90, 96) == pytest.approx(93.75)
    assert coverage_pct(96, 96) == 100.0
    assert coverage_pct(0, None) is None and coverage_pct(0, 0) is None
    day = Totals(total=100).with_expected(96)  # a repeated run does not lift coverage past 100 %
    assert (day.expected, day.covered, day.coverage_pct) == (96, 96, 100.0)
    two_days = day + Totals(total=48).with_expected(96)  # capped per day, then summed
    assert two_days.coverage_pct == pytest.approx((96 + 48) / 192 * 100)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([80.0, 85.0, 90.0, 95.0], TrendDirection.IMPROVING),  # US6-3: slope 5 per week
        ([0.0, 2.0, 4.0], TrendDirection.IMPROVING),  # slope exactly +2.0
        ([0.0, 1.99, 3.98], TrendDirection.STABLE),
        ([4.0, 2.0, 0.0], TrendDirection.DEGRADING),  # exactly -2.0
        ([95.0, 90.0, 85.0, 80.0], TrendDirection.DEGRADING),
        ([90.0, 91.0, 90.0, 91.0], TrendDirection.STABLE),
        ([50.0], TrendDirection.STABLE),
        ([], TrendDirection.STABLE),
        ([None, 80.0, None, 90.0], TrendDirection.IMPROVING),  # weeks without data are left out
    ],
)
def test_compute_trend(values: list[float | None], expected: TrendDirection) -> None:
    assert compute_trend(values) is expected


def test_error_budget() -> None:
    b = error_budget(99.9, 99.95, "uptime")
    assert (b.budget_pct, b.consumed_pct, b.remaining_pct, b.burn_rate, b.exhausted) == pytest.approx(
        (0.1, 0.05, 0.05, 0.5, False)
    )
    b = error_budget(99.0, 97.0)
    assert b.remaining_pct == pytest.approx(-2.0) and b.burn_rate == pytest.approx(3.0) and b.exhausted
    assert error_budget(100.0, 100.0).burn_rate == 0.0
    full = error_budget(100.0, 99.0)
    assert full.burn_rate is None and full.exhausted


def test_totals_add_up() -> None:
    a = Totals(
        total=10,
        passed=8,
        failed=1,
        error=1,
        duration_sum=5.0,
        quality_n=2,
        quality_sum=1.5,
        quality_min=0.5,
        quality_max=1.0,
        violations={"error": 2},
        detections=1,
        detection_seconds=60.0,
    )
    b = Totals(
        total=5,
        passed=5,
        quality_n=1,
        quality_sum=0.2,
        quality_min=0.2,
        quality_max=0.2,
        violations={"error": 1, "critical": 1},
        ping_n=4,
        ping_ok=3,
    ).with_expected(6)
    s = a + b
    assert (s.total, s.passed, s.failed, s.error, s.violation_count) == (15, 13, 1, 1, 4)
    assert (s.quality_min, s.quality_max) == (0.2, 1.0) and s.quality_avg == pytest.approx(1.7 / 3)
    assert s.by_severity() == {"info": 0, "warning": 0, "error": 3, "critical": 1}
    assert (s.expected, s.covered, s.uptime_pct, s.mttd_seconds) == (6, 5, 75.0, 60.0)
    assert (Totals() + Totals()).expected is None
    assert Totals().avg_duration_seconds == 0.0 and Totals().quality_avg is None and Totals().uptime_pct is None


# -- expected checks -----------------------------------------------------------------------------


def test_expected_checks_follow_the_ticks() -> None:
    e = Expectation(interval_minutes=15, tables=2, target_pct=99.0)
    assert e.per_day == 192
    assert e.expected_between(MIDNIGHT, MIDNIGHT + timedelta(days=1)) == 192
    # 00:00 .. 10:20:07: ticks 00:00, 00:15, ..., 10:15 = 42, for two tables.
    assert e.expected_between(MIDNIGHT, MIDNIGHT + timedelta(hours=10, minutes=20, seconds=7)) == 84
    assert (
        e.expected_between(MIDNIGHT + timedelta(hours=10, minutes=20), MIDNIGHT + timedelta(hours=11)) == 2 * 2
    )  # 10:30 and 10:45
    assert e.expected_between(MIDNIGHT, MIDNIGHT) == 0
    assert Expectation(None, 1, None).expected_between(MIDNIGHT, MIDNIGHT + timedelta(days=1)) is None
    stored = expected_from_stored(192, 15, 99.0)
    assert stored == e and expected_from_stored(None, 15, 99.0) is None


def _contract(
    name: str,
    *,
    tables: int = 1,
    freshness: bool = True,
    availability: str | None = None,
    quality: bool = False,
    overrides: dict | None = None,
) -> MonitoredContract:
    rules = (QualityRule(name="r", type="library", table="t"),) if quality else ()
    return MonitoredContract(
        name=name,
        version="1.0.0",
        contract_id=name,
        source=f"{name}.yaml",
        tables=tuple(
            MonitoredTable(
                schema_name=f"t{i}", ref=TableRef(("shop",), f"t{i}"), columns=(), quality_rules=rules if i == 0 else ()
            )
            for i in range(tables)
        ),
        freshness=FreshnessSLA(timedelta(hours=1), "PT1H") if freshness else None,
        availability=AvailabilitySLA(float(availability.rstrip("%")), availability) if availability else None,
        monitoring_overrides=overrides or {},
    )


def test_expectations_from_contracts_and_overrides() -> None:
    contracts = [
        _contract("orders", tables=2, availability="99.5%", quality=True),
        _contract("slow", freshness=False, overrides={"check_intervals": {"schema_drift_minutes": 45}}),
        _contract("manual", overrides={"mode": "on_demand"}),
        _contract("broken", overrides={"check_intervals": {"nope": 1}}),
    ]
    plan = plan_checks(LoadReport(tuple(contracts), ()), MonitoringConfig(), check_kinds())
    got = plan.expectations(default_target_pct=98.0)
    assert got[("orders", "freshness")] == Expectation(15, 2, 98.0)
    assert got[("orders", "schema_drift")] == Expectation(60, 2, 98.0)
    assert got[("orders", "quality")] == Expectation(360, 2, 98.0)  # every table of the contract is checked
    assert got[("orders", "availability")] == Expectation(5, 2, 99.5)  # the contract's own SLA target
    assert ("slow", "freshness") not in got and got[("slow", "schema_drift")].interval_minutes == 45
    assert got[("manual", "freshness")].interval_minutes is None  # not scheduled: nothing expected
    assert not any(k[0] == "broken" for k in got)


# -- the report model ----------------------------------------------------------------------------


def _period(totals: dict[str, Totals], weeks: list[dict[str, Totals]] | None = None) -> ContractPeriod:
    bounds = [MIDNIGHT - timedelta(days=7 * (4 - i)) for i in range(5)]
    weeks = weeks or [{} for _ in range(4)]
    return ContractPeriod(
        contract_name="orders",
        window="weekly",
        period_start=MIDNIGHT - timedelta(days=7),
        period_end=MIDNIGHT,
        generated_at=MIDNIGHT,
        totals=totals,
        weeks=[(bounds[i], bounds[i + 1], weeks[i]) for i in range(4)],
        targets={"availability": 99.9},
        resolutions={"freshness": [600.0, 1800.0]},
    )


def test_a_period_without_violations_reports_100_percent_and_coverage() -> None:
    rep = build_report(_period({"freshness": Totals(total=160, passed=160).with_expected(168)}))
    assert rep.overall_compliance_pct == 100.0 and rep.total_violations == 0
    assert rep.monitoring_coverage_pct == pytest.approx(160 / 168 * 100) and rep.expected_checks == 168
    assert rep.freshness_compliance_pct == 100.0 and rep.mttr_seconds == 1200.0
    [s] = rep.check_summaries
    assert s.error_budget is not None and s.error_budget.target_pct == 99.0 and s.error_budget.burn_rate == 0.0
    assert s.incidents_resolved == 2


def test_availability_budget_is_measured_on_uptime_and_weeks_trend() -> None:
    avail = Totals(total=100, passed=100, ping_n=100, ping_ok=99)
    weeks = [
        {"availability": Totals(total=10, passed=p, quality_n=1, quality_sum=q)}
        for p, q in ((7, 0.5), (8, 0.6), (9, 0.7), (10, 0.8))
    ]
    rep = build_report(_period({"availability": avail, "quality": Totals(total=4, skipped=4)}, weeks))
    a, q = rep.check_summaries[1], rep.check_summaries[0]
    assert [s.check_type.value for s in rep.check_summaries] == ["quality", "availability"]
    assert a.error_budget is not None and a.error_budget.sli == "uptime" and a.error_budget.sli_pct == 99.0
    assert a.error_budget.burn_rate == pytest.approx(10.0) and a.error_budget.exhausted
    assert q.error_budget is None and q.compliance_pct is None  # all skipped: nothing evaluated, "no data"
    assert [w.compliance_pct for w in rep.weekly] == [70.0, 80.0, 90.0, 100.0]
    assert rep.trend is TrendDirection.IMPROVING and a.trend is TrendDirection.IMPROVING
    assert rep.quality_trend is TrendDirection.IMPROVING  # 50 -> 80 points over 4 weeks


def test_report_model_is_frozen_and_strict() -> None:
    rep = build_report(_period({"freshness": Totals(total=1, passed=1)}))
    with pytest.raises(ValidationError):
        rep.model_copy(update={}).__class__.model_validate({**rep.model_dump(), "surprise": 1})
    with pytest.raises(ValidationError):
        rep.overall_compliance_pct = 1.0
    dumped = rep.model_dump(mode="json")
    assert dumped["check_summaries"][0]["check_type"] == "freshness"
    assert list(dumped)[:9] == [
        "contract_name",
        "period_start",
        "period_end",
        "overall_compliance_pct",
        "check_summaries",
        "total_violations",
        "total_checks_executed",
        "monitoring_coverage_pct",
        "generated_at",
    ]  # spec 7.7 fields first


# -- windows and settings ------------------------------------------------------------------------


def test_windows() -> None:
    assert window_days("daily") == ("daily", 1) and window_days("WEEKLY") == ("weekly", 7)
    assert window_days(ReportWindow.MONTHLY) == ("monthly", 30) and window_days(90) == ("90d", 90)
    with pytest.raises(ValueError):
        window_days("yearly")
    with pytest.raises(ValueError):
        window_days(0)


def test_settings_from_env() -> None:
    s = SLASettings.from_env({})
    assert (s.start_date, s.default_target_pct) == (None, 99.0)  # unset: the store's first monitored day decides
    s = SLASettings.from_env({"FLOE_SLA_START_DATE": "2026-02-01", "FLOE_SLA_DEFAULT_TARGET_PCT": "99.5"})
    assert s.start_date is not None and (s.start_date.isoformat(), s.default_target_pct) == ("2026-02-01", 99.5)
    with pytest.raises(ConfigError, match="FLOE_SLA_START_DATE"):
        SLASettings.from_env({"FLOE_SLA_START_DATE": "last year"})
    with pytest.raises(ConfigError, match="FLOE_SLA_DEFAULT_TARGET_PCT"):
        SLASettings.from_env({"FLOE_SLA_DEFAULT_TARGET_PCT": "101"})
