"""Freshness grading and severity rules (pure; time is injected, never read)."""

from datetime import UTC, datetime, timedelta

import pytest

from floe_monitoring_defs.checks.freshness import evaluate_freshness
from floe_monitoring_defs.checks.kind import format_age
from floe_monitoring_defs.checks.severity import consumption_severity, escalate
from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.models import CheckOutcome, CheckStatus, ViolationSeverity
from floe_monitoring_defs.sources.base import FreshnessReading

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T = SeverityThresholds()
S = ViolationSeverity


def grade(age: timedelta, tolerance: float = 60, column: str | None = "updated_at", hide: bool = False) -> CheckOutcome:
    reading = FreshnessReading(NOW - age, "column_bounds" if column else "snapshot", column=column)
    return evaluate_freshness(
        reading,
        now=NOW,
        threshold=timedelta(hours=2),
        threshold_text="PT2H",
        thresholds=T,
        tolerance_seconds=tolerance,
        hide_timestamp=hide,
    )


@pytest.mark.parametrize(
    ("pct", "expected"),
    [(0, None), (79.9, None), (80, S.INFO), (89.9, S.INFO), (90, S.WARNING), (100, S.WARNING), (100.1, S.ERROR)],
)
def test_consumption_severity(pct: float, expected: ViolationSeverity | None) -> None:
    assert consumption_severity(pct, T) is expected


def test_us1_2_one_and_a_half_hours_of_two_passes_without_violation() -> None:
    out = grade(timedelta(minutes=90))
    assert out.status is CheckStatus.PASS and out.findings == ()
    assert out.measured_value == pytest.approx(5400)


def test_us1_1_two_and_a_half_hours_of_two_is_an_error() -> None:
    out = grade(timedelta(minutes=150))
    assert out.status is CheckStatus.FAIL
    [f] = out.findings
    assert f.severity is S.ERROR and f.kind == "stale"
    assert f.element == "updated_at" and f.expected == "<= PT2H (7200s)" and f.actual == "9000s"
    assert "2h 30m" in f.message


def test_info_at_80_percent_passes_with_an_early_warning() -> None:
    out = grade(timedelta(minutes=97), tolerance=0)  # 80.8 %
    assert out.status is CheckStatus.PASS
    assert [f.severity for f in out.findings] == [S.INFO]


def test_warning_at_90_percent_fails() -> None:
    out = grade(timedelta(minutes=109), tolerance=0)  # 90.8 %
    assert out.status is CheckStatus.FAIL and out.max_severity is S.WARNING


def test_clock_skew_tolerance() -> None:
    # 30 s past the threshold is within the 60 s tolerance: no breach.
    assert grade(timedelta(hours=2, seconds=30)).max_severity is S.WARNING
    # 61 s past it is a breach.
    assert grade(timedelta(hours=2, seconds=61)).max_severity is S.ERROR
    # A timestamp slightly in the future (writer clock ahead) is age 0, not an error.
    out = grade(timedelta(seconds=-30))
    assert out.status is CheckStatus.PASS and out.measured_value == 0


def test_no_data_is_an_error_with_a_reason() -> None:
    out = evaluate_freshness(
        FreshnessReading(None, "snapshot"),
        now=NOW,
        threshold=timedelta(hours=1),
        threshold_text="PT1H",
        thresholds=T,
        tolerance_seconds=60,
    )
    assert out.status is CheckStatus.ERROR and "no data" in (out.reason or "")


def test_classified_timestamp_column_value_never_in_message() -> None:
    out = grade(timedelta(hours=5), hide=True)
    stamp = (NOW - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    assert stamp not in out.findings[0].message and "last_update" not in out.details


@pytest.mark.parametrize(
    ("sev", "prior", "expected"),
    [
        (S.ERROR, 2, S.ERROR),
        (S.ERROR, 3, S.CRITICAL),
        (S.WARNING, 3, S.CRITICAL),
        (S.INFO, 10, S.INFO),
    ],
)
def test_escalation_on_the_fourth_failure(sev: ViolationSeverity, prior: int, expected: ViolationSeverity) -> None:
    assert escalate(sev, prior, T) is expected


def test_format_age() -> None:
    assert format_age(9000) == "2h 30m"
    assert format_age(90061) == "1d 1h 1m"
    assert format_age(0.2) == "0s"
