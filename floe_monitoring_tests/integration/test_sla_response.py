"""ODCS response promises (`timeToDetect`, `timeToNotify`, `timeToRepair`) against the monitor's own history:
violations recorded, routed and delivered with an injected clock, then reported by SLAReporter."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.config import AlertConfig
from floe_monitoring_defs.contracts.model import ResponseSLA
from floe_monitoring_defs.models import CheckResult, CheckStatus, ContractViolationEvent, ViolationSeverity
from floe_monitoring_defs.models import ViolationType as T
from floe_monitoring_defs.sla.render import format_report
from floe_monitoring_defs.sla.report import SLAReporter
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.test_alert_routing import Clock, Recording

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    c = Clock()
    c.now = START
    return c


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[MonitoringStore]:
    s = MonitoringStore(f"sqlite:///{tmp_path / 'floe.db'}", clock=clock)
    yield s
    s.dispose()


def check(store: MonitoringStore, clock: Clock, status: CheckStatus) -> None:
    events = (
        [
            ContractViolationEvent(
                contract_name="orders",
                contract_version="1.0.0",
                violation_type=T.FRESHNESS,
                severity=ViolationSeverity.ERROR,
                message="stale",
                timestamp=clock.now,
                check_duration_seconds=0.01,
            )
        ]
        if status is CheckStatus.FAIL
        else []
    )
    result = CheckResult(
        contract_name="orders",
        check_type=T.FRESHNESS,
        status=status,
        duration_seconds=0.01,
        timestamp=clock.now,
        violation=events[0] if events else None,
    )
    store.results.record_check(result, events, table_name="shop.orders")


def test_response_promises_are_measured_from_the_monitors_history(store: MonitoringStore, clock: Clock) -> None:
    slack = Recording("slack")
    config = AlertConfig.model_validate({"routing_rules": [{"channel_name": "slack", "min_severity": "warning"}]})
    dispatcher = AlertDispatcher(store.outbox, {"slack": slack}, config, clock)
    check(store, clock, CheckStatus.PASS)  # 08:00 last pass
    clock.now += timedelta(minutes=15)
    check(store, clock, CheckStatus.FAIL)  # 08:15 detected: 15 min after the last pass
    clock.now += timedelta(minutes=2)
    dispatcher.dispatch()  # 08:17 routed (opens the incident) and delivered: 2 min after detection
    assert len(slack.batches) == 1
    clock.now += timedelta(minutes=43)
    check(store, clock, CheckStatus.PASS)  # 09:00 passes again: a resolved notice
    dispatcher.dispatch()  # the incident is resolved 43 min after it opened

    promises = ResponseSLA(
        time_to_detect=timedelta(minutes=10), time_to_notify=timedelta(minutes=5), time_to_repair=timedelta(hours=1)
    )
    report = SLAReporter(store, clock=clock).report(
        "orders", "daily", now=clock.now + timedelta(minutes=1), response=promises
    )
    assert report.mttd_seconds == 15 * 60 and report.mttn_seconds == 2 * 60 and report.notifications == 1
    assert report.mttr_seconds == 43 * 60
    got = {p.promise: (p.target_seconds, p.measured_seconds, p.samples, p.met) for p in report.response_promises}
    assert got == {
        "timeToDetect": (600.0, 900.0, 1, False),  # detected 15 min after the last pass: promise of 10 missed
        "timeToNotify": (300.0, 120.0, 1, True),
        "timeToRepair": (3600.0, 2580.0, 1, True),
    }
    text = format_report(report)
    assert "timeToDetect promise" in text and "MISSED" in text and "MTTN (detected -> first delivery)" in text


def test_a_promise_with_nothing_to_measure_is_not_judged(store: MonitoringStore, clock: Clock) -> None:
    check(store, clock, CheckStatus.PASS)
    later = clock.now + timedelta(minutes=1)  # the window ends before `now`: look a minute after the check
    report = SLAReporter(store, clock=clock).report(
        "orders", "daily", now=later, response=ResponseSLA(time_to_notify=timedelta(minutes=5))
    )
    [promise] = report.response_promises
    assert (promise.promise, promise.measured_seconds, promise.samples, promise.met) == ("timeToNotify", None, 0, None)
    assert SLAReporter(store, clock=clock).report("orders", "daily", now=later).response_promises == []
