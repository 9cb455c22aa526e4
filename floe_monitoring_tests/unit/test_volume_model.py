"""The `volume` check's pure logic (issue 17): seasonal baselines, the gap model, grading and the fitted model's JSON.

Histories are generated (`volume_history.hourly_history`: hourly appends from Monday 2026-09-07 with a daily
curve peaking at 14:00 UTC, weekends at 0.6x, 10 % lognormal noise); every check time is a fixed `now` derived
from the generated commit times, never the real clock.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pydantic
import pytest

from floe_monitoring_defs.checks.anomaly import Baseline, Seasonality, fit, fit_gaps, mad_sigma
from floe_monitoring_defs.checks.volume import VolumeModel, evaluate_volume, fit_model, grade
from floe_monitoring_defs.config import AnomalyConfig, ConfigError, MonitoringConfig
from floe_monitoring_defs.contracts import parse_document
from floe_monitoring_defs.contracts.errors import ContractLoadError
from floe_monitoring_defs.models import CheckOutcome, CheckStatus, DataCommit, Finding, ViolationSeverity
from floe_monitoring_tests.volume_history import Shape, hourly_history, retotal, scale_commit, silence

S = ViolationSeverity
ON = AnomalyConfig(volume=True, cadence=True)
INTERVAL = timedelta(minutes=30)  # the kind's default interval
H60 = hourly_history(60)  # 2026-09-07 00:05 .. 2026-11-05 23:05, 1,440 commits
LAST = len(H60) - 1


def check(
    commits: Sequence[DataCommit],
    now: datetime | None = None,
    settings: AnomalyConfig = ON,
    interval: timedelta = INTERVAL,
) -> CheckOutcome:
    """One check from scratch; by default two minutes after the newest commit."""
    at = now if now is not None else commits[-1].committed_at + timedelta(minutes=2)
    return evaluate_volume(commits, now=at, settings=settings, interval=interval)


def kinds(outcome: CheckOutcome) -> list[tuple[str, ViolationSeverity]]:
    return [(f.kind, f.severity) for f in outcome.findings]


def only(outcome: CheckOutcome, kind: str) -> Finding:
    [finding] = [f for f in outcome.findings if f.kind == kind]
    return finding


def log_points(commits: Sequence[DataCommit]) -> list[tuple[datetime, float]]:
    return [(c.committed_at, math.log1p(c.added_records or 0)) for c in commits]


def before(commits: Sequence[DataCommit], at: datetime) -> list[DataCommit]:
    return [c for c in commits if c.committed_at < at]


# -- anomaly.fit: the seasonal baseline ------------------------------------------------------------------------


def test_fit_recovers_the_generated_hour_of_day_and_weekday_effects_and_noise() -> None:
    b = fit(log_points(H60), by_hour=True, seasonality="auto", level_since=H60[-1].committed_at - timedelta(days=7))
    assert b.seasonality == "weekly" and b.points == len(H60)
    # The generator's daily curve is 1 + 0.5 sin(2 pi (hour - 8) / 24): 1.5 at 14:00, 0.5 at 02:00 (ratio 3).
    assert b.hour[14] > 0 > b.hour[2]
    assert b.hour[14] - b.hour[2] == pytest.approx(math.log(3), abs=0.1)
    # Saturday and Sunday bring 0.6 of a weekday.
    weekdays, weekend = b.weekday[:5], b.weekday[5:]
    assert all(e < 0 for e in weekend) and all(e > 0 for e in weekdays)
    assert sum(weekend) / 2 - sum(weekdays) / 5 == pytest.approx(math.log(0.6), abs=0.1)
    # The spread of the deseasonalized series is the generator's 10 % lognormal noise.
    assert b.spread == pytest.approx(0.10, abs=0.02)


@pytest.mark.parametrize(
    ("seasonality", "fitted", "hour_effects", "weekday_effects"),
    [
        ("none", "none", False, False),
        ("daily", "daily", True, False),
        ("weekly", "weekly", True, True),
        ("auto", "weekly", True, True),
    ],
)
def test_fit_seasonality_setting_decides_which_effects_are_fitted(
    seasonality: Seasonality, fitted: str, hour_effects: bool, weekday_effects: bool
) -> None:
    b = fit(log_points(H60), by_hour=True, seasonality=seasonality, level_since=H60[-168].committed_at)
    assert b.seasonality == fitted
    assert any(e != 0.0 for e in b.hour) is hour_effects
    assert any(e != 0.0 for e in b.weekday) is weekday_effects


@pytest.mark.parametrize(
    ("hours", "fitted"),
    [(60, "none"), (5 * 24, "daily"), (13 * 24, "daily"), (15 * 24, "weekly")],
    ids=["2.5 days", "5 days", "13 days", "15 days"],
)
def test_fit_auto_seasonality_follows_the_span_of_history(hours: int, fitted: str) -> None:
    points = log_points(H60[:hours])
    b = fit(points, by_hour=True, seasonality="auto", level_since=points[0][0])
    assert b.seasonality == fitted
    if fitted == "none":  # under 3 days: neither an hour-of-day nor a weekday effect
        assert set(b.hour) == {0.0} and set(b.weekday) == {0.0}
    if fitted == "daily":  # under 14 days: no weekday effect
        assert set(b.weekday) == {0.0} and any(e != 0.0 for e in b.hour)


def test_fit_per_day_series_gets_no_hour_effect() -> None:
    days = [(datetime(2026, 9, 7, tzinfo=UTC) + timedelta(days=i), 10.0 + (i % 7 == 5) * -0.5) for i in range(30)]
    b = fit(days, by_hour=False, seasonality="auto", level_since=days[-7][0])
    assert b.seasonality == "weekday" and set(b.hour) == {0.0}
    assert b.weekday[5] == pytest.approx(-0.5) and b.weekday[0] == pytest.approx(0.0)


def test_a_perfectly_regular_series_has_zero_spread_and_z_uses_the_floor() -> None:
    t0 = datetime(2026, 9, 7, tzinfo=UTC)
    b = fit([(t0 + timedelta(hours=i), 5.0) for i in range(48)], by_hour=True, seasonality="none", level_since=t0)
    assert b.spread == 0.0 and b.level == 5.0
    assert b.z(5.01, t0, 0.05) == pytest.approx(0.2)
    assert b.z(4.9, t0, 0.05) == pytest.approx(-2.0)


def test_fit_refuses_fewer_than_two_points() -> None:
    with pytest.raises(ValueError, match="at least 2 points"):
        fit([(H60[0].committed_at, 1.0)], by_hour=True, seasonality="auto", level_since=H60[0].committed_at)


FLAT = hourly_history(30, shape=Shape(noise=0.0, daily_amplitude=0.0, weekend_factor=1.0, trend_per_day=0.0))


def test_volume_band_is_never_narrower_than_min_band_pct() -> None:
    # Exactly 1,000 rows every hour: no spread at all. The band is +-10 % (min_band_pct) on the log1p scale.
    wobble = check(scale_commit(FLAT, -1, 0.95))
    assert wobble.status is CheckStatus.PASS, kinds(wobble)
    d = wobble.details
    assert d["rows_added_expected"] == pytest.approx(1000.0)
    assert d["rows_added_high"] == pytest.approx(1001 * 1.1 - 1, abs=0.1)
    assert d["rows_added_low"] == pytest.approx(1001 / 1.1 - 1, abs=0.1)
    assert kinds(check(scale_commit(FLAT, -1, 0.5))) == [("volume_low", S.ERROR)]


def test_without_the_band_floor_a_perfectly_regular_table_alerts_on_a_five_percent_wobble() -> None:
    unfloored = AnomalyConfig(volume=True, min_band_pct=0)
    assert ("volume_low", S.ERROR) in kinds(check(scale_commit(FLAT, -1, 0.95), settings=unfloored))


# -- evaluate_volume on a 60-day hourly history ----------------------------------------------------------------


def test_clean_newest_commit_passes_with_a_ready_model() -> None:
    out = check(H60)
    assert out.status is CheckStatus.PASS and out.findings == ()
    assert out.reason == "within the table's learned bands"
    d = out.details
    assert d["model"] == "ready" and d["commits_graded"] == 1 and d["history_source"] == "snapshots"
    assert d["rows_added"] == H60[-1].added_records and d["rows_added_seasonality"] == "weekly"
    assert d["rows_added_low"] < d["rows_added"] < d["rows_added_high"]
    assert d["total_rows"] == H60[-1].total_records
    assert d["cadence_bucket"] == "hour-of-week"
    assert out.measured_value == H60[-1].added_records


def test_a_fifty_percent_drop_of_the_newest_commit_is_a_volume_low_warning() -> None:
    out = check(scale_commit(H60, -1, 0.5))
    assert out.status is CheckStatus.FAIL
    # Pinned from the defaults: the drop is about 6.8 robust deviations, past sensitivity 3.5, short of 8.
    assert kinds(out) == [("volume_low", S.WARNING)]
    assert -8 < out.details["rows_added_z"] < -4
    f = only(out, "volume_low")
    assert f.metadata["snapshot_id"] == str(H60[-1].snapshot_id)
    assert f.metadata["rows_added"] == str(round((H60[-1].added_records or 0) * 0.5))


def test_a_threefold_spike_of_the_newest_commit_is_a_volume_high_error() -> None:
    out = check(scale_commit(H60, -1, 3.0))
    assert out.status is CheckStatus.FAIL
    assert kinds(out) == [("volume_high", S.ERROR)]
    assert out.details["rows_added_z"] > 8


SILENT_FROM = LAST - 37  # Wednesday 2026-11-04 ~10:05 UTC, mid-week and mid-day


def test_silence_is_graded_against_the_hour_of_week_gap_band_on_both_sides_of_each_threshold() -> None:
    commits = silence(H60, SILENT_FROM, hours=4)
    last = H60[SILENT_FROM].committed_at
    assert [c for c in commits if last < c.committed_at <= last + timedelta(hours=4)] == []
    quiet = check(commits, now=last + timedelta(minutes=30))
    assert quiet.status is CheckStatus.PASS, kinds(quiet)
    d = quiet.details
    assert d["cadence_bucket"] == "hour-of-week" and d["last_commit"] == last.isoformat()
    warn, error = d["gap_warning_seconds"], d["gap_error_seconds"]
    assert d["expected_gap_seconds"] < warn < error < 4 * 3600  # a four-hour silence is past both

    def at(seconds: float) -> CheckOutcome:
        return check(commits, now=last + timedelta(seconds=seconds))

    assert at(warn - 1).status is CheckStatus.PASS
    assert kinds(at(warn + 1)) == [("cadence_silence", S.WARNING)]
    assert kinds(at(error - 1)) == [("cadence_silence", S.WARNING)]
    assert kinds(at(error + 1)) == [("cadence_silence", S.ERROR)]
    late = at(4 * 3600)
    assert kinds(late) == [("cadence_silence", S.ERROR)] and late.details["since_commit_seconds"] == 4 * 3600


def test_clock_skew_tolerance_delays_the_silence_finding() -> None:
    commits = silence(H60, SILENT_FROM, hours=4)
    last = H60[SILENT_FROM].committed_at
    warn = check(commits, now=last + timedelta(minutes=30)).details["gap_warning_seconds"]
    now = last + timedelta(seconds=warn + 60)
    assert kinds(check(commits, now=now)) == [("cadence_silence", S.WARNING)]
    tolerant = evaluate_volume(commits, now=now, settings=ON, interval=INTERVAL, tolerance_seconds=120)
    assert tolerant.status is CheckStatus.PASS


def test_a_mass_delete_is_a_total_rows_low_finding_the_rows_added_series_does_not_see() -> None:
    total = H60[-2].total_records or 0
    delete = replace(H60[-1], operation="delete", added_records=0, deleted_records=total // 2)
    commits = retotal([*H60[:-1], delete])
    assert commits[-1].total_records == total - total // 2
    out = check(commits)
    assert out.status is CheckStatus.FAIL
    assert kinds(out) == [("total_rows_low", S.ERROR)]
    f = only(out, "total_rows_low")
    assert f.metadata["total_rows_before"] == str(total) and f.metadata["total_rows"] == str(total - total // 2)
    assert "delete" in f.message


def test_a_halved_day_is_a_daily_volume_low_finding_the_next_day() -> None:
    day = date(2026, 11, 4)
    halved = retotal(
        [
            replace(c, added_records=round((c.added_records or 0) / 2)) if c.committed_at.date() == day else c
            for c in H60
        ]
    )
    next_morning = before(halved, datetime(2026, 11, 5, 10, 30, tzinfo=UTC))
    out = check(next_morning)
    assert out.status is CheckStatus.FAIL
    f = only(out, "daily_volume_low")
    assert f.severity is S.ERROR  # half a day is far past error_sensitivity on a 10 %-noise table
    assert f.metadata["date"] == "2026-11-04"
    assert out.details["rows_per_day_date"] == "2026-11-04"
    assert out.details["rows_per_day"] == sum(c.added_records or 0 for c in halved if c.committed_at.date() == day)
    assert [k for k, _ in kinds(out)] == ["daily_volume_low"]  # the newest commit itself is normal
    # Control: the untouched history, graded at the same time, has the day within its band.
    clean = check(before(H60, datetime(2026, 11, 5, 10, 30, tzinfo=UTC)))
    assert clean.status is CheckStatus.PASS
    assert clean.details["rows_per_day_low"] < clean.details["rows_per_day"] < clean.details["rows_per_day_high"]


def test_a_clean_table_raises_nothing_at_any_check_time_once_it_has_three_weeks() -> None:
    flagged = []
    for n in range(21 * 24, len(H60), 37):  # every 37 hours: every hour of day and weekday gets visited
        for minutes in (2, 40):
            out = check(H60[:n], now=H60[n - 1].committed_at + timedelta(minutes=minutes))
            if out.status is not CheckStatus.PASS:
                flagged.append((n, minutes, kinds(out)))
    assert flagged == []


# -- learning ---------------------------------------------------------------------------------------------------


def test_fewer_than_min_history_commits_is_learning_even_for_a_tenfold_spike() -> None:
    spike = scale_commit(hourly_history(1), -1, 10.0)  # 24 commits: 23 to fit on, one to grade
    out = check(spike)
    assert out.status is CheckStatus.PASS and out.findings == ()
    assert out.reason is not None and out.reason.startswith("learning")
    assert "rows added: 23 of 24 commits" in out.reason and "cadence: 22 of 24 gaps" in out.reason
    assert out.details["model"] == "learning"


def test_min_history_is_configurable() -> None:
    spike = scale_commit(hourly_history(3), -1, 100.0)  # 72 commits over three days: no daily curve fitted yet
    quick = AnomalyConfig(volume=True, cadence=True, min_history=10, min_history_days=2)
    assert "volume_high" in [k for k, _ in kinds(check(spike, settings=quick))]
    out = check(spike, settings=quick.model_copy(update={"min_history": 100}))
    assert out.status is CheckStatus.PASS and "rows added: 71 of 100 commits" in (out.reason or "")


FIRST_SATURDAY = datetime(2026, 9, 12, 12, 30, tzinfo=UTC)  # day 6 of the history: the weekend not yet learned


def test_a_young_tables_first_weekend_is_not_flagged_until_min_history_days() -> None:
    young = before(H60, FIRST_SATURDAY)
    out = check(young, now=FIRST_SATURDAY)  # default min_history_days 14
    assert out.status is CheckStatus.PASS and out.details["model"] == "learning"
    assert out.reason == "learning (volume: 5.5 of 14 days of history)"
    assert out.details["rows_added_z"] < -4.0  # the weekend dip is outside the band fitted on weekdays...
    shorter = check(young, now=FIRST_SATURDAY, settings=AnomalyConfig(volume=True, cadence=True, min_history_days=5))
    assert [k for k, _ in kinds(shorter)] == ["volume_low"]  # ...and is flagged once the learning days are over


def test_a_young_table_learns_even_through_a_tenfold_spike() -> None:
    spike = scale_commit(before(H60, FIRST_SATURDAY), -1, 10.0)
    assert check(spike, now=FIRST_SATURDAY).status is CheckStatus.PASS
    grown = check(spike, now=FIRST_SATURDAY, settings=AnomalyConfig(volume=True, cadence=True, min_history_days=5))
    assert ("volume_high", S.ERROR) in kinds(grown)


def test_the_spread_is_never_below_the_recent_mad_when_a_pattern_is_too_young_to_fit() -> None:
    # Two days of a daily curve (the hour-of-day effect needs three): consecutive differences are small, the
    # distance from the level is not; the band must be as wide as the latter or every trough alerts.
    t0 = datetime(2026, 9, 7, tzinfo=UTC)
    points = [(t0 + timedelta(hours=h), 7.0 + 0.5 * math.sin(2 * math.pi * h / 24)) for h in range(48)]
    b = fit(points, by_hour=True, seasonality="auto", level_since=t0)
    assert b.seasonality == "none"
    diff_based = 1.0483 * sorted(abs(b2 - a) for (_, a), (_, b2) in itertools.pairwise(points))[23]
    assert diff_based < 0.15 < 0.5 < b.spread  # the MAD of a sine of amplitude 0.5 is 0.5 x 0.707 x 1.4826
    assert b.z(6.5, t0 + timedelta(hours=18), 0.0) > -2.0


def test_a_table_without_any_commit_is_learning() -> None:
    out = check([], now=datetime(2026, 11, 5, tzinfo=UTC))
    assert out.status is CheckStatus.PASS and out.reason == "learning: the table has no data-changing commit yet"


def test_disabled_anomaly_detection_is_skipped() -> None:
    out = check(H60, settings=AnomalyConfig())
    assert out.status is CheckStatus.SKIPPED and out.findings == ()


# -- per-contract settings ---------------------------------------------------------------------------------------


def test_a_larger_per_contract_sensitivity_keeps_a_moderate_drop_a_pass() -> None:
    drop = scale_commit(H60, -1, 0.5)
    default = check(drop)
    assert kinds(default) == [("volume_low", S.WARNING)]
    overrides = {"anomaly": {"volume": True, "sensitivity": 7.5, "error_sensitivity": 10}}
    lenient = MonitoringConfig().merged(overrides, "orders.yaml: customProperties.floe.monitoring").anomaly
    out = check(drop, settings=lenient)
    assert out.status is CheckStatus.PASS and out.findings == ()
    assert out.details["rows_added_z"] == default.details["rows_added_z"]  # same distance, wider band
    assert out.details["rows_added_low"] < default.details["rows_added_low"]


# -- weekday-only tables -----------------------------------------------------------------------------------------

WEEKDAYS = retotal([c for c in H60 if c.committed_at.weekday() < 5])


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 10, 31, 12, 0, tzinfo=UTC),  # Saturday noon
        datetime(2026, 11, 1, 20, 0, tzinfo=UTC),  # Sunday evening
        datetime(2026, 11, 2, 0, 3, tzinfo=UTC),  # Monday, before its first commit
    ],
    ids=["saturday", "sunday", "monday-00:03"],
)
def test_a_weekday_only_table_is_not_silent_over_the_weekend(now: datetime) -> None:
    friday = before(WEEKDAYS, datetime(2026, 10, 31, tzinfo=UTC))
    out = check(friday, now=now)
    assert out.status is CheckStatus.PASS, kinds(out)
    assert out.details["cadence_bucket"] == "hour-of-week"
    assert out.details["since_commit_seconds"] > 12 * 3600  # a silence no hourly bucket would accept


def test_a_weekday_only_table_is_silent_on_a_weekday() -> None:
    wednesday = before(WEEKDAYS, datetime(2026, 11, 4, 10, 30, tzinfo=UTC))
    out = check(wednesday, now=datetime(2026, 11, 4, 14, 0, tzinfo=UTC))
    assert [k for k, _ in kinds(out)] == ["cadence_silence"]
    assert out.details["cadence_bucket"] == "hour-of-week"


def test_a_weekday_only_table_knows_its_weekend_from_the_one_before() -> None:
    # Twelve days (one weekend seen): Friday 23h's hour-of-week bucket holds one gap, of a weekend; it expects the
    # longer gap than the hour-of-day bucket (an hour), so it wins.
    young = before(WEEKDAYS, datetime(2026, 9, 19, tzinfo=UTC))
    out = check(young, now=datetime(2026, 9, 19, 12, 0, tzinfo=UTC))
    assert out.details["cadence_bucket"] == "hour-of-week" and kinds(out) == []
    assert out.details["expected_gap_seconds"] > 48 * 3600


def test_five_days_of_snapshots_holding_a_weekend_know_the_next_one() -> None:
    # What Iceberg's default 5-day expiry leaves a first run on a Wednesday: Friday to Wednesday, one weekend.
    kept = [
        c for c in WEEKDAYS if datetime(2026, 9, 11, tzinfo=UTC) <= c.committed_at < datetime(2026, 9, 17, tzinfo=UTC)
    ]
    rest = [
        c for c in WEEKDAYS if datetime(2026, 9, 17, tzinfo=UTC) <= c.committed_at < datetime(2026, 9, 19, tzinfo=UTC)
    ]
    out = check(kept + rest, now=datetime(2026, 9, 19, 12, 0, tzinfo=UTC))
    assert out.details["cadence_bucket"] == "hour-of-week" and kinds(out) == []


def test_a_weekday_only_table_younger_than_a_week_cannot_know_its_weekend_yet() -> None:
    young = before(WEEKDAYS, datetime(2026, 9, 12, tzinfo=UTC))  # Monday to Friday: no weekend seen
    out = check(young, now=datetime(2026, 9, 12, 12, 0, tzinfo=UTC))
    assert out.details["cadence_bucket"] == "all"  # 23h has 4 gaps (Monday to Thursday): all gaps, an hour
    assert [k for k, _ in kinds(out)] == ["cadence_silence"]


def test_a_young_hour_of_week_bucket_does_not_shorten_the_usual_gap() -> None:
    # One long gap elsewhere does not matter; a young bucket expecting a shorter gap than its hour-of-day
    # bucket is not used (a median of one or two gaps is not yet robust to last week's outage).
    from floe_monitoring_defs.checks.anomaly import GapModel, GapStats

    day = GapStats(20, math.log(3600), 0.05)
    week = GapStats(1, math.log(1800), 0.05)
    model = GapModel({0: week}, {0: day}, day, weekly=True, daily=True)
    band = model.band(datetime(2026, 9, 7, 0, 5, tzinfo=UTC), sensitivity=3.5, error_sensitivity=8, min_slack=0.25)
    assert band.bucket == "hour-of-day" and band.expected_seconds == pytest.approx(3600)
    grown = GapModel({0: GapStats(3, math.log(1800), 0.05)}, {0: day}, day, weekly=True, daily=True)
    band = grown.band(datetime(2026, 9, 7, 0, 5, tzinfo=UTC), sensitivity=3.5, error_sensitivity=8, min_slack=0.25)
    assert band.bucket == "hour-of-week" and band.expected_seconds == pytest.approx(1800)


# -- fit_model + grade -------------------------------------------------------------------------------------------


def test_grade_checks_the_commits_since_the_previous_check_and_reports_the_worst_three() -> None:
    through = H60[LAST - 8].committed_at
    model = fit_model(H60[: LAST - 7], through=through, settings=ON, fitted_at=through + timedelta(minutes=5))
    assert model.through_snapshot == H60[LAST - 8].snapshot_id
    factors = {LAST - 5: 3.0, LAST - 4: 4.0, LAST - 3: 6.0, LAST - 2: 5.0}
    spiky = list(H60)
    for i, factor in factors.items():
        spiky = scale_commit(spiky, i, factor)
    now = H60[LAST].committed_at + timedelta(minutes=2)
    # Every 30 minutes: only the newest commit is new; it is normal.
    recent = grade(model, spiky, now=now, settings=ON, interval=INTERVAL)
    assert recent.details["commits_graded"] == 1 and not [f for f in recent.findings if f.kind == "volume_high"]
    # Every ~6 hours (the previous check ran at the commit of 17:00): the four spikes are since then; the three
    # worst are reported, worst first.
    six = grade(model, spiky, now=now, settings=ON, interval=now - H60[LAST - 6].committed_at)
    assert six.details["commits_graded"] == 6
    highs = [f for f in six.findings if f.kind == "volume_high"]
    assert [f.metadata["snapshot_id"] for f in highs] == [
        str(H60[i].snapshot_id) for i in (LAST - 3, LAST - 2, LAST - 4)
    ]
    # The check graded nothing before the model's `through`, however long the interval.
    day = grade(model, spiky, now=now, settings=ON, interval=timedelta(days=1))
    assert day.details["commits_graded"] == 8


def test_evaluate_volume_is_fit_model_then_grade() -> None:
    drop = scale_commit(H60, -1, 0.5)
    now = drop[-1].committed_at + timedelta(minutes=2)
    model = fit_model(drop[:-1], through=drop[-2].committed_at, settings=ON, fitted_at=now)
    split = grade(model, drop, now=now, settings=ON, interval=INTERVAL)
    assert split == check(drop, now=now)


# -- VolumeModel JSON --------------------------------------------------------------------------------------------


def model_of(commits: Sequence[DataCommit]) -> VolumeModel:
    through = commits[-1].committed_at
    return fit_model(commits, through=through, settings=ON, fitted_at=through + timedelta(minutes=3))


@pytest.mark.parametrize("hours", [len(H60), 10], ids=["ready", "learning"])
def test_volume_model_json_round_trips(hours: int) -> None:
    model = model_of(H60[:hours])
    assert (model.rows is None) is (hours == 10)
    back = VolumeModel.from_json(model.to_json())
    assert back == model
    assert back is not None and back.rows == model.rows and back.gaps == model.gaps
    now = H60[hours - 1].committed_at + timedelta(hours=3)
    assert grade(back, H60[:hours], now=now, settings=ON, interval=INTERVAL) == grade(
        model, H60[:hours], now=now, settings=ON, interval=INTERVAL
    )


def _edited(**changes: object) -> str:
    d = json.loads(model_of(H60[:200]).to_json())
    d.update(changes)
    return json.dumps(d)


def _short_hours() -> str:
    d = json.loads(model_of(H60[:200]).to_json())
    d["rows"]["hour"] = d["rows"]["hour"][:23]
    return json.dumps(d)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "null",
        "[]",
        "{}",
        '{"v": 1}',
        _edited(v=2),
        _edited(v="1"),
        _edited(fitted_at="yesterday"),
        _edited(history_commits="many"),
        _edited(gaps={"week": {}}),
        _short_hours(),
        model_of(H60[:200]).to_json()[:-5],
    ],
    ids=[
        "empty",
        "not-json",
        "null",
        "list",
        "empty-object",
        "version-only",
        "other-version",
        "version-as-text",
        "bad-time",
        "bad-count",
        "bad-gaps",
        "23-hour-effects",
        "truncated",
    ],
)
def test_volume_model_from_json_of_anything_else_is_none(text: str) -> None:
    assert VolumeModel.from_json(text) is None


def test_the_stored_model_names_its_format_version() -> None:
    assert json.loads(model_of(H60[:200]).to_json())["v"] == 1
    assert VolumeModel.from_json(_edited(v=1)) == model_of(H60[:200])


# -- what the findings say ---------------------------------------------------------------------------------------

WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\dZ"
N = r"\d{1,3}(?:,\d{3})*"
AGE = r"\d+[dhms](?: \d+[hms])*"
SHAPES = {
    "volume_low": rf"The commit at {WHEN} \(snapshot \d+\) added {N} rows, below the expected {N}\.\.{N} for "
    rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:00 UTC \(median {N}, learned from \d+ commits\)",
    "volume_high": rf"The commit at {WHEN} \(snapshot \d+\) added {N} rows, above the expected {N}\.\.{N} for "
    rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:00 UTC \(median {N}, learned from \d+ commits\)",
    "daily_volume_low": rf"\d{{4}}-\d\d-\d\d \(UTC\) added {N} rows, below the expected {N}\.\.{N} for a "
    rf"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \(median {N}, learned from \d+ days\)",
    "total_rows_low": rf"The commit at {WHEN} \(snapshot \d+, delete\) took the table from {N} to {N} rows; its "
    rf"history expects {N}\.\.{N} \(learned from \d+ commits\)",
    "cadence_silence": rf"No data-changing commit for {AGE} \(last at {WHEN}\); this table usually commits again "
    rf"within {AGE} after a commit on (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) at \d\dh UTC \(flagged past {AGE}, learned "
    rf"from \d+ gaps\)",
}


def _findings_of_every_kind() -> list[Finding]:
    total = H60[-2].total_records or 0
    delete = retotal([*H60[:-1], replace(H60[-1], operation="delete", added_records=0, deleted_records=total // 2)])
    day = date(2026, 11, 4)
    halved = retotal(
        [replace(c, added_records=(c.added_records or 0) // 2) if c.committed_at.date() == day else c for c in H60]
    )
    last = H60[SILENT_FROM].committed_at
    outcomes = [
        check(scale_commit(H60, -1, 0.5)),
        check(scale_commit(H60, -1, 3.0)),
        check(before(halved, datetime(2026, 11, 5, 10, 30, tzinfo=UTC))),
        check(delete),
        check(silence(H60, SILENT_FROM, hours=4), now=last + timedelta(hours=3)),
    ]
    return [f for o in outcomes for f in o.findings]


def test_finding_messages_hold_only_counts_times_and_snapshot_ids() -> None:
    found = _findings_of_every_kind()
    assert sorted({f.kind for f in found}) == sorted(SHAPES)
    for f in found:
        assert re.fullmatch(SHAPES[f.kind], f.message), (f.kind, f.message)
        assert re.fullmatch(
            rf"(?:{N}\.\.{N} (?:rows added|rows per day|total rows)|a commit within {AGE})", f.expected or ""
        )
        assert re.fullmatch(
            r"\d+ (?:rows added|rows on \d{4}-\d\d-\d\d|total rows)|\d+s since the last commit", f.actual or ""
        )
        assert f.element is None
        for key, value in f.metadata.items():
            assert re.fullmatch(r"-?[\d.]+|\d{4}-\d\d-\d\d(?:T[\d:.+]+)?", value), (key, value)


# -- AnomalyConfig validation ------------------------------------------------------------------------------------


def test_error_sensitivity_below_sensitivity_is_refused_naming_error_sensitivity() -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        AnomalyConfig(sensitivity=5, error_sensitivity=4)
    assert "error_sensitivity: must be at least sensitivity (5); got 4" in str(err.value)
    assert AnomalyConfig(sensitivity=5, error_sensitivity=5).error_sensitivity == 5  # equal is allowed


def test_error_sensitivity_below_sensitivity_is_refused_in_contract_overrides() -> None:
    with pytest.raises(ConfigError) as err:
        MonitoringConfig().merged(
            {"anomaly": {"sensitivity": 5, "error_sensitivity": 4}}, "orders.yaml: customProperties.floe.monitoring"
        )
    [problem] = err.value.problems
    assert problem.source == "orders.yaml: customProperties.floe.monitoring"
    assert problem.key == "anomaly.error_sensitivity"
    assert problem.message == "must be at least sensitivity (5); got 4"


def test_a_contract_whose_anomaly_overrides_are_out_of_order_does_not_load() -> None:
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": "urn:orders",
        "name": "orders",
        "version": "1.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": "c", "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "schema": [{"name": "orders", "properties": [{"name": "id", "logicalType": "string"}]}],
        "customProperties": [
            {"property": "floe.monitoring", "value": {"anomaly": {"volume": True, "error_sensitivity": 2}}}
        ],
    }
    with pytest.raises(ContractLoadError) as err:
        parse_document(doc, "orders.yaml")
    assert "customProperties.floe.monitoring" in str(err.value) and "anomaly.error_sensitivity" in str(err.value)
    ok = parse_document(
        {**doc, "customProperties": [{"property": "floe.monitoring", "value": {"anomaly": {"volume": True}}}]},
        "orders.yaml",
    )
    assert ok.monitoring_overrides == {"anomaly": {"volume": True}}


def test_baseline_expected_adds_level_and_both_effects() -> None:
    hour = tuple(0.1 * h for h in range(24))
    weekday = (0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0)
    b = Baseline(level=3.0, hour=hour, weekday=weekday, spread=0.5, points=10, seasonality="weekly")
    saturday_14h = datetime(2026, 9, 12, 14, 30, tzinfo=UTC)
    assert b.expected(saturday_14h) == pytest.approx(3.0 + 1.4 - 1.0)
    assert b.z(3.4 + 1.0, saturday_14h, 0.1) == pytest.approx(2.0)


def test_a_gap_buckets_spread_is_shrunk_toward_the_pooled_one() -> None:
    # Three weeks of commits on the hour +- 1 minute; the gaps after Monday 10h are 62, 85 and 70 minutes. The MAD of
    # those three alone is 0.18 (a WARNING band past 2 h); pooled over every bucket it is near 0.02.
    t0 = datetime(2026, 9, 7, 0, 5, tzinfo=UTC)
    times = [t0 + timedelta(hours=h, minutes=(h % 2) * 2 - 1) for h in range(21 * 24)]
    for week, gap in enumerate((62, 85, 70)):
        i = week * 168 + 10
        times[i + 1] = times[i] + timedelta(minutes=gap)
    model = fit_gaps(times, seasonality="auto")
    assert model is not None and model.weekly
    monday_10 = model.by_hour_of_week[10]
    raw = mad_sigma([math.log(g) for g in (62 * 60, 85 * 60, 70 * 60)])
    pooled = model.by_hour_of_week[14].sigma  # a bucket of three regular gaps: near the pooled spread
    assert monday_10.gaps == 3 and raw == pytest.approx(0.18, abs=0.01)
    assert pooled < 0.05 < monday_10.sigma < raw / 1.5
    band = model.band(times[2 * 168 + 10], sensitivity=3.5, error_sensitivity=8.0, min_slack=0.25)
    assert band.bucket == "hour-of-week" and band.warn_seconds < 2 * 3600  # the raw MAD would put it past 2 h


NOISY = hourly_history(60, seed=3, shape=Shape(noise=0.2))  # commits vary by +-20 %: a halved one is 3.5 spreads


def halved(commits: Sequence[DataCommit], last: int) -> list[DataCommit]:
    out = list(commits)
    for i in range(len(out) - last, len(out)):
        out[i] = replace(out[i], added_records=round((out[i].added_records or 0) * 0.5))
    return retotal(out)


def test_a_sustained_halving_of_a_noisy_table_is_found_on_its_third_commit() -> None:
    assert kinds(check(NOISY)) == []
    assert "sustained_volume_low" not in [k for k, _ in kinds(check(halved(NOISY, 2)))]
    out = check(halved(NOISY, 3))
    finding = only(out, "sustained_volume_low")
    assert finding.severity is S.WARNING and finding.metadata["commits"] == "3"
    assert finding.message.startswith("The last 3 commits (2026-11-05T21:")
    assert " rows, 0.5" in finding.message  # the factor of the three against their hours' expectation


def test_a_run_is_not_reported_beside_the_newest_commit_flagged_on_its_own() -> None:
    out = check(scale_commit(halved(NOISY, 3), -1, 0.2))
    assert [k for k, _ in kinds(out)].count("volume_low") == 1
    assert "sustained_volume_low" not in [k for k, _ in kinds(out)]


def test_refits_of_tables_fitted_together_are_spread_over_the_refit_period() -> None:
    from floe_monitoring_defs.checks.volume import refit_due

    t0 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    keys = [f"lake/sales.t{i}" for i in range(1200)]
    due_by_run = []
    for run in range(1, 13):  # the twelve 30-minute runs of one 6-hour period
        now = t0 + timedelta(minutes=30 * run)
        before_ = t0 + timedelta(minutes=30 * (run - 1))
        due_by_run.append(sum(refit_due(k, t0, now, 6) and not refit_due(k, t0, before_, 6) for k in keys))
    assert sum(due_by_run) == 1200  # every model is refitted within refit_hours...
    assert due_by_run[:5] == [0] * 5  # ...none before half of it...
    assert max(due_by_run) < 1200 / 6 * 1.5  # ...and about a sixth per run from then on, not all in one
    fitted = t0 + timedelta(hours=1)
    assert not refit_due(keys[0], fitted, fitted + timedelta(minutes=1), 6)
    assert refit_due(keys[0], fitted, fitted + timedelta(hours=6), 6)  # never used a whole period past its fit
    assert refit_due(keys[0], fitted, fitted - timedelta(minutes=1), 6)  # fitted in the future: the clock moved back
