"""The grading of the ODCS SLA kinds beyond freshness and availability: pure functions, frozen time."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from floe_monitoring_defs.checks.deprecation import evaluate_lifecycle
from floe_monitoring_defs.checks.frequency import evaluate_frequency
from floe_monitoring_defs.checks.retention import evaluate_retention
from floe_monitoring_defs.checks.time_of_availability import deadlines, evaluate_time_of_availability
from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.contracts.model import LifecycleSLA
from floe_monitoring_defs.models import CheckOutcome, CheckStatus
from floe_monitoring_defs.models import ViolationSeverity as S
from floe_monitoring_defs.sources.history import OldestReading

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T = SeverityThresholds()
HOUR = timedelta(hours=1)


# -- frequency -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "status", "severity"),
    [
        (timedelta(minutes=30), CheckStatus.PASS, None),  # 50 % of the hour
        (timedelta(minutes=50), CheckStatus.PASS, S.INFO),  # 83 %: early warning
        (timedelta(minutes=56), CheckStatus.FAIL, S.WARNING),  # 93 %
        (timedelta(minutes=62), CheckStatus.FAIL, S.ERROR),  # past the hour + 60 s tolerance
    ],
)
def test_frequency_grades_the_time_since_the_last_update(
    since: timedelta, status: CheckStatus, severity: S | None
) -> None:
    out = evaluate_frequency(
        NOW - since, now=NOW, interval=HOUR, interval_text="1h", thresholds=T, tolerance_seconds=60
    )
    assert out.status is status
    assert out.max_severity is severity
    assert out.details["since_update_seconds"] == since.total_seconds()


def test_frequency_within_the_tolerance_passes_and_a_never_updated_table_is_error() -> None:
    out = evaluate_frequency(
        NOW - HOUR - timedelta(seconds=30),
        now=NOW,
        interval=HOUR,
        interval_text="1h",
        thresholds=T,
        tolerance_seconds=60,
    )
    assert out.max_severity is S.WARNING  # 100 % consumed once the 60 s are forgiven: not a breach
    never = evaluate_frequency(None, now=NOW, interval=HOUR, interval_text="1h", thresholds=T, tolerance_seconds=60)
    assert never.status is CheckStatus.ERROR and "never been updated" in (never.reason or "")


# -- retention -----------------------------------------------------------------------------------------


def _retention(oldest: datetime | None, born: datetime | None, period: timedelta = timedelta(days=30)) -> CheckOutcome:
    return evaluate_retention(
        OldestReading(oldest, "column_bounds", 3, 0),
        born,
        now=NOW,
        period=period,
        period_text="30d",
        element="created_at",
        tolerance_seconds=60,
    )


def test_retention_passes_when_the_data_reaches_back_far_enough() -> None:
    out = _retention(NOW - timedelta(days=31), NOW - timedelta(days=400))
    assert out.status is CheckStatus.PASS and out.details["reaches_back_seconds"] == 31 * 86400


def test_retention_fails_when_data_was_deleted_too_early() -> None:
    out = _retention(NOW - timedelta(days=10), NOW - timedelta(days=400))
    assert out.status is CheckStatus.FAIL
    [f] = out.findings
    assert f.severity is S.ERROR and f.kind == "retention_shortfall" and f.element == "created_at"
    assert "10d" in f.message and "30d" in f.message


def test_retention_of_a_young_table_is_not_due() -> None:
    out = _retention(NOW - timedelta(days=10), NOW - timedelta(days=10))
    assert out.status is CheckStatus.PASS and "younger than the 30d retention" in str(out.details["note"])


def test_retention_shortfall_within_the_tolerance_passes() -> None:
    out = _retention(NOW - timedelta(days=30) + timedelta(seconds=30), NOW - timedelta(days=400))
    assert out.status is CheckStatus.PASS


def test_retention_hides_the_oldest_value_of_a_classified_column() -> None:
    oldest = NOW - timedelta(days=10)
    out = evaluate_retention(
        OldestReading(oldest, "column_bounds"),
        NOW - timedelta(days=99),
        now=NOW,
        period=timedelta(days=30),
        period_text="30d",
        element="dob",
        tolerance_seconds=60,
        hide_values=True,
    )
    text = repr(out)
    assert "oldest" not in out.details and oldest.isoformat() not in text and oldest.strftime("%Y-%m-%d") not in text


# -- time of availability -----------------------------------------------------------------------------------


def test_deadlines_around_now_in_the_contracts_time_zone() -> None:
    previous, last, following = deadlines(NOW, time(9, 0), ZoneInfo("UTC"))
    assert (previous, last, following) == (
        datetime(2026, 3, 9, 9, 0, tzinfo=UTC),
        datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
        datetime(2026, 3, 11, 9, 0, tzinfo=UTC),
    )
    # 13:00 in Berlin (UTC+1 in March) is 12:00 UTC: today's 13:00 deadline is exactly now.
    _, last, _ = deadlines(NOW, time(13, 0), ZoneInfo("Europe/Berlin"))
    assert last == NOW


def _toa(
    commits: list[datetime], born: datetime | None = NOW - timedelta(days=30), now: datetime = NOW
) -> CheckOutcome:
    return evaluate_time_of_availability(
        commits, born, now=now, at=time(9, 0), zone=ZoneInfo("UTC"), text="09:00", thresholds=T, tolerance_seconds=60
    )


def test_data_delivered_before_the_deadline_passes() -> None:
    out = _toa([datetime(2026, 3, 10, 8, 30, tzinfo=UTC)])
    assert out.status is CheckStatus.PASS and out.details["delivered_for_last_deadline"] is True


def test_a_missed_deadline_is_an_error() -> None:
    out = _toa([datetime(2026, 3, 9, 8, 0, tzinfo=UTC), datetime(2026, 3, 10, 9, 30, tzinfo=UTC)])
    # the 08:00 commit of yesterday counts for yesterday's deadline, the 09:30 one is late for today's
    assert out.status is CheckStatus.FAIL
    [f] = out.findings
    assert f.severity is S.ERROR and f.kind == "missed_deadline" and "2026-03-10 09:00" in f.message


def test_a_table_created_inside_the_window_is_not_due_yet() -> None:
    out = _toa([], born=datetime(2026, 3, 9, 20, 0, tzinfo=UTC))
    assert out.status is CheckStatus.PASS and not out.findings


def test_the_next_deadline_approaching_without_data_warns() -> None:
    late = datetime(2026, 3, 11, 7, 0, tzinfo=UTC)  # 22 h of the 24 h to the next deadline: 92 %
    out = _toa([datetime(2026, 3, 10, 8, 0, tzinfo=UTC)], now=late)
    assert out.status is CheckStatus.FAIL and out.max_severity is S.WARNING
    early = _toa([datetime(2026, 3, 10, 8, 0, tzinfo=UTC)], now=datetime(2026, 3, 11, 4, 30, tzinfo=UTC))
    assert early.status is CheckStatus.PASS and early.max_severity is S.INFO  # 81 %


# -- lifecycle -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "status", "severity", "kind"),
    [
        (date(2026, 1, 1), CheckStatus.PASS, None, None),
        (date(2026, 3, 20), CheckStatus.PASS, S.INFO, "end_approaching"),  # 12 days before end of support
        (date(2026, 4, 2), CheckStatus.FAIL, S.WARNING, "end_of_support"),
        (date(2026, 7, 1), CheckStatus.FAIL, S.ERROR, "end_of_life"),
    ],
)
def test_lifecycle_dates(today: date, status: CheckStatus, severity: S | None, kind: str | None) -> None:
    sla = LifecycleSLA(end_of_support=date(2026, 4, 1), end_of_life=date(2026, 7, 1))
    out = evaluate_lifecycle(sla, now=datetime(today.year, today.month, today.day, 0, 0, tzinfo=UTC), contract="c")
    assert out.status is status and out.max_severity is severity
    assert [f.kind for f in out.findings] == ([kind] if kind else [])
