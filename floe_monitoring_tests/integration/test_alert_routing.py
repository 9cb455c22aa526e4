"""Routing through the real store (SQLite and PostgreSQL): rules, dedup, rate limit, batching,
incidents, resolved notices, retries. The channel here is a small recording plugin; the real channels
and their receivers are tested in test_channels_*.py and test_alerting_e2e.py.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from floe_monitoring_defs.alerting.channels.base import AlertChannel, ChannelConfig
from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.alerting.model import AlertBatch, DeliveryResult
from floe_monitoring_defs.config import AlertConfig
from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.store import MonitoringStore

pytestmark = pytest.mark.integration
S = ViolationSeverity
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Recording(AlertChannel):
    """A channel plugin that records batches; `down` makes it fail like an unreachable endpoint."""

    type_name = "recording"
    Config = ChannelConfig

    def __init__(self, name: str) -> None:
        super().__init__(name, ChannelConfig(type="recording"), {"token": SecretStr("tok-123")})
        self.batches: list[AlertBatch] = []
        self.resolved: list[AlertBatch] = []
        self.down = False

    def send(self, batch: AlertBatch) -> DeliveryResult:
        if self.down:
            return DeliveryResult(False, "connect_error", "connection refused by 127.0.0.1:9")
        self.batches.append(batch)
        return DeliveryResult(True, "delivered")

    def resolve(self, batch: AlertBatch) -> DeliveryResult:
        if self.down:
            return DeliveryResult(False, "connect_error", "connection refused")
        self.resolved.append(batch)
        return DeliveryResult(True, "delivered")

    def validate_config(self) -> list[str]:
        return []

    @property
    def ids(self) -> list[str]:
        return [i.id for b in self.batches for i in b.items]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(store_url: str, clock: Clock) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url, clock=clock)
    yield s
    s.dispose()


def config(**kw: Any) -> AlertConfig:
    base: dict[str, Any] = {
        "routing_rules": [
            {"channel_name": "slack", "min_severity": "warning"},
            {"channel_name": "am", "min_severity": "error"},
            {"channel_name": "pd", "min_severity": "critical", "contract_filter": "orders*"},
        ]
    }
    base.update(kw)
    return AlertConfig.model_validate(base)


def record(
    store: MonitoringStore,
    clock: Clock,
    contract: str,
    vtype: ViolationType,
    *severities: ViolationSeverity,
    status: CheckStatus = CheckStatus.FAIL,
) -> list[str]:
    events = [
        ContractViolationEvent(
            contract_name=contract,
            contract_version="1.0.0",
            violation_type=vtype,
            severity=s,
            message=f"{vtype.value} {s.value}",
            timestamp=clock.now,
            check_duration_seconds=0.01,
            affected_consumers=["bi"],
        )
        for s in severities
    ]
    result = CheckResult(
        contract_name=contract,
        check_type=vtype,
        status=status,
        duration_seconds=0.01,
        timestamp=clock.now,
        violation=max(events, key=lambda e: e.severity.rank) if events else None,
    )
    return list(store.results.record_check(result, events, table_name=f"ns.{contract}").violation_ids)


def setup(store: MonitoringStore, clock: Clock, **kw: Any) -> tuple[AlertDispatcher, dict[str, Recording]]:
    channels = {n: Recording(n) for n in ("slack", "am", "pd")}
    return AlertDispatcher(store.outbox, channels, config(**kw), clock), channels


def test_us3_1_warning_goes_to_slack_only(store: MonitoringStore, clock: Clock) -> None:
    d, ch = setup(store, clock)
    [vid] = record(store, clock, "orders", ViolationType.FRESHNESS, S.WARNING)
    report = d.dispatch()
    assert ch["slack"].ids == [vid] and ch["am"].ids == [] and ch["pd"].ids == []
    assert report.routed == 1 and report.delivered == 1
    assert ch["slack"].batches[0].affected_consumers == ("bi",)


def test_critical_for_orders_reaches_incident_channel_and_opens_one_incident(
    store: MonitoringStore, clock: Clock
) -> None:
    d, ch = setup(store, clock)
    record(store, clock, "orders", ViolationType.FRESHNESS, S.CRITICAL)
    record(store, clock, "customers", ViolationType.FRESHNESS, S.CRITICAL)
    d.dispatch()
    assert [b.contract_name for b in ch["pd"].batches] == ["orders"]  # contract_filter orders*
    clock.now += timedelta(minutes=5)
    record(store, clock, "orders", ViolationType.FRESHNESS, S.CRITICAL)  # a repeat
    d.dispatch()
    incidents = store.outbox.incidents(contract_name="orders")
    assert len(incidents) == 1 and incidents[0].violation_count == 2 and incidents[0].priority == "P1"


def test_no_channel_configured_records_without_delivering(store: MonitoringStore, clock: Clock) -> None:
    d = AlertDispatcher(store.outbox, {}, AlertConfig(), clock)
    [vid] = record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    report = d.dispatch()
    assert report.no_route == 1 and report.batches == 0
    [entry] = store.outbox.entries()
    assert (entry.id, entry.state) == (vid, "no_route")
    assert store.results.violations(contract_name="orders")[0].id == vid  # still recorded (US1-4)


def test_us1_3_sc_004_dedup_cuts_sustained_alerts_by_at_least_80_percent(store: MonitoringStore, clock: Clock) -> None:
    d, ch = setup(store, clock)
    raw = 0
    for _ in range(48):  # 12 h of a sustained breach, checked every 15 min
        record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
        raw += 1
        d.dispatch()
        clock.now += timedelta(minutes=15)
    sent = len(ch["am"].ids)
    assert sent == 3  # the first, then re-notified every 4 h (renotify_minutes); the rest suppressed and kept
    assert 1 - sent / raw >= 0.8
    states = [e.state for e in store.outbox.entries(contract_name="orders")]
    assert states.count("suppressed") == raw - sent


def test_dedup_is_bypassed_when_severity_escalates(store: MonitoringStore, clock: Clock) -> None:
    d, ch = setup(store, clock)
    record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    d.dispatch()
    clock.now += timedelta(minutes=5)
    record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)  # same: suppressed
    clock.now += timedelta(minutes=5)
    [crit] = record(store, clock, "orders", ViolationType.FRESHNESS, S.CRITICAL)  # escalation: goes through
    report = d.dispatch()
    assert report.suppressed == {"dedup": 1}
    assert ch["am"].ids[-1] == crit and ch["pd"].ids == [crit]


def test_us3_3_rate_limit_one_per_30_minutes(store: MonitoringStore, clock: Clock) -> None:
    d, ch = setup(store, clock, rate_limit_per_contract=1, rate_limit_window_minutes=30)
    types = [
        ViolationType.FRESHNESS,
        ViolationType.SCHEMA_DRIFT,
        ViolationType.QUALITY,
        ViolationType.AVAILABILITY,
        ViolationType.DEPRECATION,
    ]
    for vtype in types:  # 5 violations of the contract within 10 minutes
        record(store, clock, "orders", vtype, S.ERROR)
        d.dispatch()
        clock.now += timedelta(minutes=2)
    assert len(ch["am"].ids) == 1
    entries = store.outbox.entries(contract_name="orders")
    assert [e.reason for e in entries].count("rate_limited") == 4


def test_several_types_for_one_contract_are_one_batch(store: MonitoringStore, clock: Clock) -> None:
    d, ch = setup(store, clock)
    a = record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    b = record(store, clock, "orders", ViolationType.SCHEMA_DRIFT, S.ERROR, S.CRITICAL)
    c = record(store, clock, "payments", ViolationType.QUALITY, S.ERROR)
    d.dispatch()
    assert sorted((bt.contract_name, len(bt.items)) for bt in ch["am"].batches) == [("orders", 3), ("payments", 1)]
    assert set(ch["am"].ids) == set(a + b + c)


def test_recovery_sends_resolved_and_closes_the_incident(store: MonitoringStore, clock: Clock) -> None:
    d, ch = setup(store, clock)
    record(store, clock, "orders", ViolationType.FRESHNESS, S.CRITICAL)
    d.dispatch()
    clock.now += timedelta(minutes=15)
    record(store, clock, "orders", ViolationType.FRESHNESS, status=CheckStatus.PASS)
    clock.now += timedelta(minutes=15)
    record(store, clock, "orders", ViolationType.FRESHNESS, status=CheckStatus.PASS)  # no second notice
    d.dispatch()
    assert [len(b.items) for b in ch["pd"].resolved] == [1] and [len(b.items) for b in ch["am"].resolved] == [1]
    notice = ch["pd"].resolved[0].items[0]
    assert notice.kind.value == "resolved" and notice.dedup_key == "orders:freshness"
    [incident] = store.outbox.incidents(contract_name="orders")
    assert incident.status == "resolved"


def test_channel_down_retries_with_backoff_and_loses_nothing(store: MonitoringStore, clock: Clock) -> None:
    d, ch = setup(store, clock, retry_base_seconds=10, retry_max_seconds=60)
    ch["am"].down = True
    ids = [record(store, clock, f"c{i}", ViolationType.FRESHNESS, S.ERROR)[0] for i in range(3)]
    first = d.dispatch()
    assert first.failed == 3 and ch["am"].ids == []
    clock.now += timedelta(seconds=5)  # before the backoff: nothing retried yet
    assert d.dispatch().failed == 0
    for _ in range(4):  # still down: backoff grows 10 -> 20 -> 40 -> 60 (capped)
        clock.now += timedelta(seconds=61)
        assert d.dispatch().failed == 3
    ch["am"].down = False
    clock.now += timedelta(seconds=61)
    assert d.dispatch().delivered == 3
    assert sorted(ch["am"].ids) == sorted(ids)  # every alert, once
    clock.now += timedelta(hours=1)
    d.dispatch()
    assert len(ch["am"].ids) == 3
    attempts = store.outbox.attempts()
    am = [a for a in attempts if a["channel"] == "am"]
    assert sum(1 for a in am if a["ok"]) == 3 and sum(1 for a in am if not a["ok"]) == 15
    assert all(a["error"] is None or "tok-123" not in str(a["error"]) for a in attempts)


def test_crash_between_send_and_acknowledge_repeats_with_the_same_id(
    store: MonitoringStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, ch = setup(store, clock, delivery_lease_seconds=60)
    [vid] = record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    alerts = d.alerts

    def crash(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("process killed after send, before acknowledge")

    monkeypatch.setattr(alerts, "record_attempts", crash)
    with pytest.raises(RuntimeError):
        d.dispatch()
    monkeypatch.undo()
    assert ch["slack"].ids == [vid] and ch["am"].ids == []  # the first batch went out, then the crash
    clock.now += timedelta(seconds=30)  # still leased: nobody re-sends yet
    d.dispatch()
    assert ch["slack"].ids == [vid] and ch["am"].ids == []
    clock.now += timedelta(seconds=31)  # the lease expired: at most one repeat, with the same id
    d.dispatch()
    assert ch["slack"].ids == [vid, vid] and ch["am"].ids == [vid]
    clock.now += timedelta(hours=1)
    d.dispatch()
    assert ch["slack"].ids == [vid, vid] and ch["am"].ids == [vid]
