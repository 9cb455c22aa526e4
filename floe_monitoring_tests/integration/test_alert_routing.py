"""Routing through the real store (SQLite and PostgreSQL): rules, dedup, rate limit, batching,
incidents, resolved notices, retries. The channel here is a small recording plugin; the real channels
and their receivers are tested in test_channels_*.py and test_alerting_e2e.py.
"""

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
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
from floe_monitoring_defs.store import MonitoringStore, tables
from floe_monitoring_defs.store.outbox import ROUTING_LOCK_NAMESPACE, RoutingDecision, RoutingPage, contract_lock_key

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
    # Channels send in parallel: both batches went out, then the crash before either acknowledgement.
    assert ch["slack"].ids == [vid] and ch["am"].ids == [vid]
    clock.now += timedelta(seconds=30)  # still leased: nobody re-sends yet
    d.dispatch()
    assert ch["slack"].ids == [vid] and ch["am"].ids == [vid]
    clock.now += timedelta(seconds=31)  # the lease expired: at most one repeat, with the same id
    d.dispatch()
    assert ch["slack"].ids == [vid, vid] and ch["am"].ids == [vid, vid]
    clock.now += timedelta(hours=1)
    d.dispatch()
    assert ch["slack"].ids == [vid, vid] and ch["am"].ids == [vid, vid]


# -- dedup per occurrence, paged and concurrent routing (issue 12) ---------------------------------------


def states(store: MonitoringStore) -> dict[str, tuple[str, str | None]]:
    return {e.id: (e.state, e.reason) for e in store.outbox.entries()}


def delivery_channels(store: MonitoringStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in store.outbox.deliveries():
        out.setdefault(str(d["outbox_id"]), []).append(str(d["channel"]))
    return {k: sorted(v) for k, v in out.items()}


def test_mixed_severity_occurrence_repeated_inside_the_window_is_suppressed(
    store: MonitoringStore, clock: Clock
) -> None:
    """The demo's drift: column removed (CRITICAL), type changed (ERROR), column added (WARNING) in one check
    run, found again 8 minutes later: one alert, then nothing (the episode keeps the occurrence's CRITICAL)."""
    d, ch = setup(store, clock)
    first = record(store, clock, "products", ViolationType.SCHEMA_DRIFT, S.CRITICAL, S.ERROR, S.WARNING)
    assert d.dispatch().routed == 3
    state = store.outbox.dedup_state("products", "schema_drift")
    assert state is not None and state.last_severity == S.CRITICAL and state.count == 1
    sent = (list(ch["slack"].ids), list(ch["am"].ids))
    assert sorted(sent[0]) == sorted(first) and len(sent[1]) == 2  # WARNING+ to slack, ERROR+ to am
    clock.now += timedelta(minutes=8)
    again = record(store, clock, "products", ViolationType.SCHEMA_DRIFT, S.CRITICAL, S.ERROR, S.WARNING)
    report = d.dispatch()
    assert report.suppressed == {"dedup": 3} and report.routed == 0
    assert (ch["slack"].ids, ch["am"].ids) == sent
    assert {i: states(store)[i] for i in again} == {i: ("suppressed", "dedup") for i in again}
    clock.now += timedelta(minutes=8)
    record(store, clock, "products", ViolationType.SCHEMA_DRIFT, S.CRITICAL)  # not above what the episode sent
    assert d.dispatch().suppressed == {"dedup": 1}
    state = store.outbox.dedup_state("products", "schema_drift")
    assert state is not None and state.last_severity == S.CRITICAL and state.count == 1
    assert state.last_seen_at == clock.now  # suppressed repeats extend the episode


def test_an_escalation_that_was_rate_limited_is_announced_later_in_the_episode(
    store: MonitoringStore, clock: Clock
) -> None:
    """Escalation is measured against what the episode alerted, not what it saw: a CRITICAL the rate limit
    held back still escalates once the rate window has room, inside the same dedup episode."""
    d, ch = setup(store, clock, rate_limit_per_contract=1, rate_limit_window_minutes=30, dedup_window_minutes=60)
    record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    assert d.dispatch().routed == 1
    clock.now += timedelta(minutes=5)
    [held] = record(store, clock, "orders", ViolationType.FRESHNESS, S.CRITICAL)
    assert d.dispatch().suppressed == {"rate_limited": 1}
    clock.now += timedelta(minutes=31)  # the rate window passed; still inside the 60 min dedup episode
    [crit] = record(store, clock, "orders", ViolationType.FRESHNESS, S.CRITICAL)
    assert d.dispatch().routed == 1
    assert ch["pd"].ids == [crit] and held not in ch["am"].ids
    state = store.outbox.dedup_state("orders", "freshness")
    assert state is not None and state.last_severity == S.CRITICAL and state.count == 2


def test_a_backlog_is_decided_page_by_page_as_one_pass_would(store: MonitoringStore, clock: Clock) -> None:
    """Four entries a page: occurrences are never split, dedup, escalation and the rate limit (counted in
    occurrences) see the decisions of earlier pages and earlier occurrences of the same page."""
    d, _ = setup(store, clock, route_page_size=4, rate_limit_per_contract=3)
    ids: list[list[str]] = []
    for contract, vtype, sevs in [
        ("orders", ViolationType.FRESHNESS, (S.ERROR,)),  # 0: routed
        ("orders", ViolationType.FRESHNESS, (S.ERROR,)),  # 1: dedup
        ("orders", ViolationType.SCHEMA_DRIFT, (S.CRITICAL, S.ERROR, S.WARNING)),  # 2: routed (one occurrence)
        ("payments", ViolationType.QUALITY, (S.ERROR,)),  # 3: routed
        ("orders", ViolationType.FRESHNESS, (S.CRITICAL,)),  # 4: escalation, routed (orders' 3rd occurrence)
        ("orders", ViolationType.QUALITY, (S.ERROR,)),  # 5: rate limited (3 occurrences in the window)
        ("payments", ViolationType.QUALITY, (S.ERROR,)),  # 6: dedup
    ]:
        ids.append(record(store, clock, contract, vtype, *sevs))
        clock.now += timedelta(minutes=1)
    report = d.route_all()
    assert report.route_pages == 3  # [0, 1] (the 3-entry occurrence does not fit), [2, 4], [5, 3, 6]
    got = states(store)
    expected = {0: ("routed", None), 1: ("suppressed", "dedup"), 2: ("routed", None), 3: ("routed", None)}
    expected |= {4: ("routed", None), 5: ("suppressed", "rate_limited"), 6: ("suppressed", "dedup")}
    assert {n: {got[i] for i in ids[n]} for n in expected} == {n: {s} for n, s in expected.items()}
    assert (report.routed, report.suppressed) == (6, {"dedup": 2, "rate_limited": 1})
    channels = delivery_channels(store)
    assert channels[ids[4][0]] == ["am", "pd", "slack"]
    assert sorted(channels[i] for i in ids[2]) == [["am", "pd", "slack"], ["am", "slack"], ["slack"]]
    assert not any(i in channels for n in (1, 5, 6) for i in ids[n])
    incidents = {(i.contract_name, i.violation_type): i for i in store.outbox.incidents()}
    assert {k: (i.violation_count, i.priority, i.status) for k, i in incidents.items()} == {
        ("orders", "freshness"): (3, "P1", "open"),
        ("orders", "schema_drift"): (2, "P1", "open"),
        ("orders", "quality"): (1, "P2", "open"),
        ("payments", "quality"): (2, "P2", "open"),
    }
    assert incidents[("orders", "freshness")].last_violation_id == ids[4][0]


def test_an_occurrence_larger_than_a_page_is_decided_whole(store: MonitoringStore, clock: Clock) -> None:
    d, _ = setup(store, clock, route_page_size=2)
    first = record(store, clock, "orders", ViolationType.SCHEMA_DRIFT, S.CRITICAL, S.ERROR, S.WARNING)
    clock.now += timedelta(minutes=1)
    again = record(store, clock, "orders", ViolationType.SCHEMA_DRIFT, S.CRITICAL, S.ERROR, S.WARNING)
    report = d.route_all()
    got = states(store)
    assert report.route_pages == 2
    assert [got[i] for i in first] == [("routed", None)] * 3
    assert [got[i] for i in again] == [("suppressed", "dedup")] * 3


def test_a_resolved_notice_inside_a_page_closes_the_incident_and_ends_the_episode(
    store: MonitoringStore, clock: Clock
) -> None:
    d, ch = setup(store, clock)
    first = record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    clock.now += timedelta(minutes=1)
    record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    clock.now += timedelta(minutes=1)
    record(store, clock, "orders", ViolationType.FRESHNESS, status=CheckStatus.PASS)  # the resolved notice
    clock.now += timedelta(minutes=1)
    later = record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)  # a new episode: alerted at once
    report = d.route_all()
    assert report.route_pages == 1 and report.suppressed == {"dedup": 1}
    assert ch["am"].ids == [] and {states(store)[i][0] for i in first + later} == {"routed"}
    incidents = store.outbox.incidents(contract_name="orders")
    assert [(i.status, i.violation_count) for i in incidents] == [("resolved", 2), ("open", 1)]
    assert incidents[1].last_violation_id == later[0]
    state = store.outbox.dedup_state("orders", "freshness")
    assert state is not None and state.count == 1  # the episode the resolved notice ended is gone


def test_concurrent_passes_decide_each_alert_exactly_once(store_url: str, clock: Clock) -> None:
    """Four routing threads (each its own store and engine, like replicas) against one outbox while a producer
    records 10 waves over 20 contracts: every alert decided once, the first of each contract + type routed and
    its repeat suppressed whatever the interleaving, deliveries only for routed alerts, incident counts exact."""
    contracts = [f"c{i:02d}" for i in range(20)]
    types = [
        ViolationType.FRESHNESS,
        ViolationType.SCHEMA_DRIFT,
        ViolationType.QUALITY,
        ViolationType.AVAILABILITY,
        ViolationType.DEPRECATION,
    ]
    producer = MonitoringStore(store_url, clock=clock)
    producer.db.ping()
    done = threading.Event()
    errors: list[BaseException] = []
    pages: list[int] = []

    def replica() -> None:
        store = MonitoringStore(store_url, clock=clock)
        channels = {n: Recording(n) for n in ("slack", "am", "pd")}
        dispatcher = AlertDispatcher(store.outbox, channels, config(route_page_size=7), clock)
        try:
            while True:
                finished = done.is_set()  # read before the pass: nothing recorded after it is missed
                pages.append(dispatcher.route_all().route_pages)
                if finished and not store.outbox.pending(limit=1):
                    return
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            store.dispose()

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for th in threads:
        th.start()
    first: dict[tuple[str, str], str] = {}
    repeat: dict[tuple[str, str], str] = {}
    try:
        for wave in range(10):
            vtype = types[wave % len(types)]
            clock.now += timedelta(seconds=1)  # each wave its own check runs (still one dedup window)
            for c in contracts:
                [vid] = record(producer, clock, c, vtype, S.ERROR)
                (first if wave < len(types) else repeat)[(c, vtype.value)] = vid
    finally:
        done.set()
        for th in threads:
            th.join(timeout=300)
    assert errors == [] and not any(th.is_alive() for th in threads)
    got = states(producer)
    assert {got[i] for i in first.values()} == {("routed", None)}
    assert {got[i] for i in repeat.values()} == {("suppressed", "dedup")}
    channels = delivery_channels(producer)
    assert {k: channels.get(i) for k, i in first.items()} == {k: ["am", "slack"] for k in first}
    assert not any(i in channels for i in repeat.values())
    incidents = producer.outbox.incidents()
    assert sorted((i.contract_name, i.violation_type, i.violation_count, i.status) for i in incidents) == sorted(
        (c, t, 2, "open") for c, t in first
    )
    assert sum(pages) >= 200 // 7  # informative floor: the work really went through small pages
    producer.dispose()


def test_a_page_changed_by_a_writer_outside_the_routing_locks_is_rolled_back_and_read_again(
    store: MonitoringStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer that takes no routing lock (an older floe during a rolling upgrade) decides an entry while a
    page is being decided: the conditional update notices, the whole page is rolled back (no delivery, no
    dedup, no incident written for it) and read again without that entry."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite's single writer (BEGIN IMMEDIATE) excludes any other writer during a page")
    d, _ = setup(store, clock)
    [foreign] = record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    [ours] = record(store, clock, "payments", ViolationType.FRESHNESS, S.ERROR)
    other = MonitoringStore(store.db.engine.url.render_as_string(hide_password=False), clock=clock)
    decide = d._decide
    calls: list[int] = []

    def meddling(page: RoutingPage) -> RoutingDecision:
        calls.append(len(page.entries))
        if len(calls) == 1:
            with other.db.transaction("a foreign routing write", write=True) as conn:
                conn.execute(
                    sa.update(tables.alert_outbox)
                    .where(tables.alert_outbox.c.id == foreign)
                    .values(state="no_route", reason=None)
                )
        return decide(page)

    d._decide = meddling  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="floe_monitoring_defs.alerting.dispatch"):
        report = d.route_all()
    other.dispose()
    assert calls == [2, 1] and report.routed == 1 and report.route_pages == 1
    assert "rolled back" in caplog.text
    assert states(store) == {foreign: ("no_route", None), ours: ("routed", None)}
    assert list(delivery_channels(store)) == [ours]
    assert [i.contract_name for i in store.outbox.incidents()] == ["payments"]
    assert store.outbox.dedup_state("orders", "freshness") is None


def test_a_contract_another_pass_holds_is_left_to_it(store: MonitoringStore, clock: Clock) -> None:
    """PostgreSQL: a pass skips the contracts whose routing lock another pass holds (and decides the others);
    a check's eager pass waits a moment for its own contract, then leaves it to the holder."""
    if store.dialect != "postgresql":
        pytest.skip("on SQLite whole passes are serialised by the single writer; there is no lock to skip")
    d, _ = setup(store, clock)
    held = record(store, clock, "orders", ViolationType.FRESHNESS, S.ERROR)
    free = record(store, clock, "payments", ViolationType.FRESHNESS, S.ERROR)
    with store.db.engine.connect() as holder, holder.begin():
        holder.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, :k)"),
            {"ns": ROUTING_LOCK_NAMESPACE, "k": contract_lock_key("orders")},
        )
        report = d.route_all()
        assert report.routed == 1 and states(store)[free[0]] == ("routed", None)
        assert states(store)[held[0]] == ("pending", None)
        assert d.dispatch(outbox_ids=held).routed == 0  # waited TARGETED_LOCK_WAIT_SECONDS, then left it
    assert d.dispatch(outbox_ids=held).routed == 1  # the holder is gone
    assert states(store)[held[0]] == ("routed", None)
