"""Delivery passes through the real store (SQLite and PostgreSQL) and real loopback receivers
(alerting.delivery): whole (contract, channel) groups claimed as one batch, pooled HTTP clients reused across
passes, a circuit breaker per channel, the time budget, and every receiver hanging (acceptance 4 of issue 12).

No wall-clock thresholds: budgets run on an injected monotonic clock and breaker cooldowns on the injected
dispatcher clock; what is asserted is counts and states. Durations are printed for information only.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from floe_monitoring_defs.alerting.channels.base import AlertChannel, ChannelConfig, build_channel
from floe_monitoring_defs.alerting.channels.common import PooledHttpChannel
from floe_monitoring_defs.alerting.delivery import (
    CIRCUIT_OPEN,
    ChannelCache,
    Deliverer,
    DeliveryCounts,
    breaker_for,
    deliver_until_done,
    delivery_pass,
)
from floe_monitoring_defs.alerting.dispatch import AlertDispatcher, DispatchReport
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
from floe_monitoring_tests.alerting_receivers import (
    HTTPRecorder,
    ReceiverRejected,
    RecordedRequest,
    Reply,
    cloudevents_schema_validator,
    slack_responder,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HMAC_SECRET = "delivery-test-hmac-0001"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(store_url: str, clock: Clock) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url, clock=clock)
    yield s
    s.dispose()


def record(store: MonitoringStore, clock: Clock, contract: str, n: int = 1) -> list[str]:
    """One failed quality check of `contract` with `n` violations (one occurrence: routed together)."""
    events = [
        ContractViolationEvent(
            contract_name=contract,
            contract_version="1.0.0",
            violation_type=ViolationType.QUALITY,
            severity=ViolationSeverity.ERROR,
            message=f"rule {i} failed",
            element=f"col_{i}",
            timestamp=clock.now,
            check_duration_seconds=0.01,
        )
        for i in range(n)
    ]
    result = CheckResult(
        contract_name=contract,
        check_type=ViolationType.QUALITY,
        status=CheckStatus.FAIL,
        duration_seconds=0.01,
        timestamp=clock.now,
        violation=events[0],
    )
    return list(store.results.record_check(result, events, table_name=f"ns.{contract}").violation_ids)


def alert_config(*channels: str, **kw: Any) -> AlertConfig:
    rules = [{"channel_name": name, "min_severity": "warning"} for name in channels]
    return AlertConfig.model_validate({"routing_rules": rules, **kw})


def route(store: MonitoringStore, channels: dict[str, AlertChannel], config: AlertConfig, clock: Clock) -> None:
    AlertDispatcher(store.outbox, channels, config, clock).route(DispatchReport())


def deliveries_of(store: MonitoringStore, channel: str) -> list[dict[str, Any]]:
    return [d for d in store.outbox.deliveries() if d["channel"] == channel]


def attempts_of(store: MonitoringStore, channel: str) -> list[dict[str, Any]]:
    return [a for a in store.outbox.attempts() if a["channel"] == channel]


# --- receivers -----------------------------------------------------------------------------------------


class _KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    server: _KeepAliveServer
    protocol_version = "HTTP/1.1"  # and no `Connection: close`: a client may reuse the connection

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, 0.0)
        try:
            reply = self.server.responder(request)
        except ReceiverRejected as exc:
            self.server.errors.append(str(exc))
            reply = Reply(400, str(exc).encode())
        with self.server.lock:
            self.server.requests.append(request)
        self.send_response(reply.status)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class _KeepAliveServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, responder: Any) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)
        self.responder = responder
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections += 1  # one per TCP connection accepted
        super().process_request(request, client_address)


@dataclass
class KeepAlive:
    """A loopback HTTP/1.1 receiver that keeps connections open and counts them."""

    server: _KeepAliveServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def keepalive_webhook() -> Iterator[KeepAlive]:
    server = _KeepAliveServer(cloudevents_batch_responder(HMAC_SECRET))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield KeepAlive(server)
    server.shutdown()
    server.server_close()


def cloudevents_batch_responder(secret: str) -> Any:
    """Accept (202) a signed `application/cloudevents-batch+json` body whose every event is a valid CloudEvent
    (the official JSON Schema, then the cloudevents SDK on each event as a structured message)."""
    import hashlib
    import hmac

    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

    validator = cloudevents_schema_validator()

    def respond(request: RecordedRequest) -> Reply:
        if request.headers.get("content-type") != "application/cloudevents-batch+json":
            raise ReceiverRejected(f"not batch mode: {request.headers.get('content-type')}")
        expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-floe-signature", ""), expected):
            raise ReceiverRejected("bad signature")
        events = json.loads(request.body)
        if not isinstance(events, list) or not events:
            raise ReceiverRejected("a batch is a non-empty JSON array")
        for event in events:
            errors = [e.message for e in validator.iter_errors(event)]
            if errors:
                raise ReceiverRejected("; ".join(errors))
            from_http_event(HTTPMessage({"content-type": "application/cloudevents+json"}, json.dumps(event).encode()))
        return Reply(202, b"")

    return respond


class HangingServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; counts the connections."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._held)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()


# --- a channel plugin with no network, for the breaker's and the budget's logic ----------------------------


class Scripted(AlertChannel):
    """Answers what `mode` says ("ok", "timeout", "http_500"); `on_send` runs before each answer."""

    type_name = "scripted"
    Config = ChannelConfig

    def __init__(self, name: str) -> None:
        super().__init__(name, ChannelConfig(type="scripted"), {"token": SecretStr("tok-scripted-1")})
        self.mode = "ok"
        self.batches: list[AlertBatch] = []
        self.on_send: Any = None

    def send(self, batch: AlertBatch) -> DeliveryResult:
        if self.on_send is not None:
            self.on_send()
        self.batches.append(batch)
        if self.mode == "ok":
            return DeliveryResult(True, "delivered")
        return DeliveryResult(False, self.mode, f"{self.mode} from 127.0.0.1:9")

    def validate_config(self) -> list[str]:
        return []


# --- claims ----------------------------------------------------------------------------------------------


def test_a_claim_takes_whole_groups_oldest_due_first(store: MonitoringStore, clock: Clock) -> None:
    ch: dict[str, AlertChannel] = {"a": Scripted("a"), "b": Scripted("b")}
    config = alert_config("a", "b")
    for contract, n in (("c1", 3), ("c2", 5), ("c3", 2)):
        record(store, clock, contract, n)
        clock.now += timedelta(seconds=1)
        route(store, ch, config, clock)
    claimed = store.outbox.claim_due(clock.now, timedelta(minutes=2), groups=3)
    groups: dict[tuple[str, str], int] = {}
    for d in claimed:
        groups[(d.channel, d.entry.event.contract_name)] = groups.get((d.channel, d.entry.event.contract_name), 0) + 1
    # c1 is due longest (both channels), then c2 (channel a sorts first): every delivery of each group
    assert groups == {("a", "c1"): 3, ("b", "c1"): 3, ("a", "c2"): 5}
    again = store.outbox.claim_due(clock.now, timedelta(minutes=2), groups=10)  # the leased ones are not due
    assert sorted({(d.channel, d.entry.event.contract_name) for d in again}) == [("a", "c3"), ("b", "c2"), ("b", "c3")]
    assert len(again) == 5 + 2 + 2


def test_concurrent_claims_never_share_a_delivery(store: MonitoringStore, clock: Clock) -> None:
    """Eight claimers (replicas) race over 40 groups: every delivery is claimed exactly once within the lease."""
    ch: dict[str, AlertChannel] = {"a": Scripted("a"), "b": Scripted("b")}
    config = alert_config("a", "b")
    for i in range(20):
        record(store, clock, f"c{i:02d}", 3)
    route(store, ch, config, clock)
    total = len(store.outbox.deliveries())
    assert total == 20 * 3 * 2
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer() -> None:
        start.wait()
        while got := store.outbox.claim_due(clock.now, timedelta(minutes=2), groups=3):
            with lock:
                claimed.extend(d.id for d in got)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(claimed) == total and len(set(claimed)) == total


# --- one request per group, pooled clients --------------------------------------------------------------


def test_fifty_alerts_of_one_contract_are_one_request_and_the_client_is_reused(
    store: MonitoringStore, clock: Clock, keepalive_webhook: KeepAlive
) -> None:
    spec = {"type": "webhook", "url": keepalive_webhook.url, "batch": True, "secret_env": "FLOE_T_HMAC"}
    hook = build_channel("hook", spec, environ={"FLOE_T_HMAC": HMAC_SECRET})
    with HTTPRecorder(slack_responder()) as slack_rx:
        slack = build_channel(
            "slack", {"type": "slack", "webhook_url_env": "FLOE_T_SLACK"}, environ={"FLOE_T_SLACK": slack_rx.url}
        )
        channels = {"hook": hook, "slack": slack}
        config = alert_config("hook", "slack", delivery_concurrency_per_channel=1)
        ids = record(store, clock, "orders", 50)
        report = AlertDispatcher(store.outbox, channels, config, clock).dispatch()
        assert report.routed == 50 and report.delivered == 100 and report.failed == 0
        [one] = keepalive_webhook.server.requests
        assert sorted(e["id"] for e in json.loads(one.body)) == sorted(ids)
        assert len(slack_rx.requests) == 1 and slack_rx.errors == []
        # more passes (sensor ticks) over more contracts: the same client and the same connection
        for tick in range(3):
            clock.now += timedelta(minutes=1)
            for c in range(4):
                record(store, clock, f"t{tick}c{c}", 2)
            AlertDispatcher(store.outbox, channels, config, clock).dispatch()
    server = keepalive_webhook.server
    assert server.errors == []
    assert len(server.requests) == 1 + 3 * 4  # one request per contract and pass
    assert server.connections == 1
    assert isinstance(hook, PooledHttpChannel) and hook.clients_built == 1
    assert all(d["state"] == "delivered" for d in store.outbox.deliveries())
    hook.close()


def test_channel_cache_keeps_an_unchanged_channel_and_closes_a_replaced_one(keepalive_webhook: KeepAlive) -> None:
    cache = ChannelCache()
    spec = {"type": "webhook", "url": keepalive_webhook.url}
    first = cache.reuse(build_channel("hook", spec))
    assert cache.reuse(build_channel("hook", spec)) is first
    assert isinstance(first, PooledHttpChannel)
    client = first.http_client()
    changed = cache.reuse(build_channel("hook", {**spec, "timeout_seconds": 3}))
    assert changed is not first and client.is_closed
    secret_a = cache.reuse(build_channel("s", {**spec, "secret_env": "K"}, environ={"K": "secret-value-aaaa"}))
    secret_b = cache.reuse(build_channel("s", {**spec, "secret_env": "K"}, environ={"K": "secret-value-bbbb"}))
    assert secret_b is not secret_a  # a rotated secret is a new channel
    cache.close()


# --- circuit breaker ---------------------------------------------------------------------------------


def test_breaker_holds_the_rest_rests_for_the_cooldown_then_probes(store: MonitoringStore, clock: Clock) -> None:
    flaky, steady = Scripted("flaky"), Scripted("steady")
    flaky.mode = "timeout"
    channels: dict[str, AlertChannel] = {"flaky": flaky, "steady": steady}
    config = alert_config(
        "flaky",
        "steady",
        breaker_failure_threshold=2,
        breaker_cooldown_seconds=60,
        retry_base_seconds=1,
        retry_max_seconds=120,
    )
    for i in range(6):
        record(store, clock, f"c{i}", 1)
    route(store, channels, config, clock)
    counts, first = delivery_pass(store.outbox, channels, config, clock=clock)
    assert len(flaky.batches) == 2  # two timeouts in a row, then the other four are held
    assert first.circuit_open == {"flaky": 4}
    assert len(steady.batches) == 6 and counts.delivered == 6
    statuses = sorted(str(a["status"]) for a in attempts_of(store, "flaky"))
    assert statuses == [CIRCUIT_OPEN] * 4 + ["timeout"] * 2
    assert breaker_for(flaky).allows(clock.now) is False

    clock.now += timedelta(seconds=30)  # every retry is due, but the cooldown is not over: held, nothing sent
    _, second = delivery_pass(store.outbox, channels, config, clock=clock)
    assert len(flaky.batches) == 2 and second.circuit_open == {"flaky": 6}

    clock.now += timedelta(seconds=31)  # cooldown over, the receiver still hangs: one probe, then held again
    _, third = delivery_pass(store.outbox, channels, config, clock=clock)
    assert len(flaky.batches) == 3 and third.circuit_open == {"flaky": 5}

    flaky.mode = "ok"
    clock.now += timedelta(minutes=3)  # the probe answers: the breaker closes and the rest follows
    counts, fourth = delivery_pass(store.outbox, channels, config, clock=clock)
    assert counts.delivered == 6 and fourth.circuit_open == {}
    assert all(d["state"] == "delivered" for d in deliveries_of(store, "flaky"))
    assert breaker_for(flaky).failures == 0


def test_an_error_status_is_an_answer_and_never_opens_the_breaker(store: MonitoringStore, clock: Clock) -> None:
    failing = Scripted("failing")
    failing.mode = "http_500"
    config = alert_config("failing", breaker_failure_threshold=1)
    for i in range(5):
        record(store, clock, f"c{i}", 1)
    route(store, {"failing": failing}, config, clock)
    counts, done = delivery_pass(store.outbox, {"failing": failing}, config, clock=clock)
    assert len(failing.batches) == 5 and counts.failed == 5 and done.circuit_open == {}
    assert {a["status"] for a in attempts_of(store, "failing")} == {"http_500"}


# --- time budget -----------------------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def test_no_batch_starts_after_the_budget_and_the_rest_stays_due(store: MonitoringStore, clock: Clock) -> None:
    slow = Scripted("slow")
    mono = FakeMonotonic()

    def take_ten_seconds() -> None:
        mono.value += 10

    slow.on_send = take_ten_seconds
    config = alert_config("slow", delivery_concurrency_per_channel=1)
    for i in range(5):
        record(store, clock, f"c{i}", 2)
    route(store, {"slow": slow}, config, clock)
    counts = DeliveryCounts()
    done = Deliverer(store.outbox, {"slow": slow}, config, clock, monotonic=mono).deliver(counts, budget_seconds=15)
    assert len(slow.batches) == 2  # started at +0 s and +10 s; +20 s is past the budget
    assert done.budget_exhausted and done.deferred == 6 and counts.delivered == 4
    left = [d for d in deliveries_of(store, "slow") if d["state"] == "pending"]
    assert len(left) == 6 and all(d["attempts"] == 0 and d["next_attempt_at"] <= clock.now for d in left)
    assert len(attempts_of(store, "slow")) == 4  # what was not attempted has no attempt on record
    total, passes = deliver_until_done(store.outbox, {"slow": slow}, config, clock=clock)
    assert total.delivered == 6 and passes[-1].claimed == 0


def test_a_per_alert_channel_sends_no_request_after_the_budget(store: MonitoringStore, clock: Clock) -> None:
    """The webhook in structured mode (one request per alert) starts no request past the budget but the first:
    the alert sent is acknowledged, the others stay due, untried, and the next pass sends them."""
    with HTTPRecorder() as rx:
        hook = build_channel("hook", {"type": "webhook", "url": rx.url})
        config = alert_config("hook")
        record(store, clock, "orders", 4)
        route(store, {"hook": hook}, config, clock)
        frozen = FakeMonotonic()  # never advances: the pass's budget of 1 ns is never seen as over by the pass...
        counts = DeliveryCounts()
        done = Deliverer(store.outbox, {"hook": hook}, config, clock, monotonic=frozen).deliver(
            counts, budget_seconds=1e-9
        )  # ...but the channel, on the real monotonic clock, is past it after its first request
        assert len(rx.requests) == 1 and counts.delivered == 1 and counts.failed == 0 and done.batches == 1
        states = sorted((str(d["state"]), int(str(d["attempts"]))) for d in deliveries_of(store, "hook"))
        assert states == [("delivered", 1), ("pending", 0), ("pending", 0), ("pending", 0)]
        total, _ = deliver_until_done(store.outbox, {"hook": hook}, config, clock=clock)
        assert total.delivered == 3 and len(rx.requests) == 4
        assert len({r.json()["id"] for r in rx.requests}) == 4  # each alert once
    hook.close()


# --- acceptance 4: every receiver hanging ---------------------------------------------------------------


def test_every_receiver_hanging_one_pass_returns_and_the_working_channel_delivers(
    store: MonitoringStore, clock: Clock, keepalive_webhook: KeepAlive
) -> None:
    """Four channels on receivers that accept and never answer, one working channel, eight contracts, one
    dispatch pass (what alert_dispatch_sensor runs) with the production AlertConfig defaults. Each hanging
    channel is tried `breaker_failure_threshold` times and the rest of its alerts is held for later; the
    working channel delivers everything in the same pass. The channels' timeout is 2 s to keep the test short
    (the production default is 10 s: a pass then ends within dispatch_budget_seconds + 10 s)."""
    hanging = {name: HangingServer() for name in ("webhook", "slack", "alertmanager", "pagerduty")}
    env = {"FLOE_T_SLACK": hanging["slack"].url + "/services/T0/B0/tok", "FLOE_T_PD": "pdROUTINGkey000000001"}
    specs: dict[str, dict[str, Any]] = {
        "webhook": {"type": "webhook", "url": hanging["webhook"].url},
        "slack": {"type": "slack", "webhook_url_env": "FLOE_T_SLACK"},
        "alertmanager": {"type": "alertmanager", "url": hanging["alertmanager"].url},
        "pagerduty": {
            "type": "pagerduty",
            "url": hanging["pagerduty"].url + "/v2/enqueue",
            "routing_key_env": "FLOE_T_PD",
        },
        "working": {"type": "webhook", "url": keepalive_webhook.url, "batch": True, "secret_env": "FLOE_T_HMAC"},
    }
    env["FLOE_T_HMAC"] = HMAC_SECRET
    channels = {name: build_channel(name, {**spec, "timeout_seconds": 2}, environ=env) for name, spec in specs.items()}
    config = alert_config(*channels)
    threshold = config.breaker_failure_threshold
    contracts = [f"contract_{i}" for i in range(8)]
    try:
        for contract in contracts:
            record(store, clock, contract, 3)
        started = time.monotonic()
        report = AlertDispatcher(store.outbox, channels, config, clock).dispatch()
        seconds = time.monotonic() - started
    finally:
        for server in hanging.values():
            server.close()
        for channel in channels.values():
            channel.close()
    print(f"\none dispatch pass with four hanging receivers: {seconds:.1f} s (for information)")
    assert report.routed == 8 * 3
    for name, server in hanging.items():
        tried = [a for a in attempts_of(store, name) if a["status"] != CIRCUIT_OPEN]
        batches_tried = {str(a["delivery_id"]) for a in tried}
        contracts_tried = {d["contract_name"] for d in deliveries_of(store, name) if str(d["id"]) in batches_tried}
        assert len(contracts_tried) == threshold, name  # one batch per contract, `threshold` of them
        assert {a["status"] for a in tried} <= {"timeout", "not_attempted"}, name
        assert server.connections == threshold, name
        held = [a for a in attempts_of(store, name) if a["status"] == CIRCUIT_OPEN]
        assert len(held) == (len(contracts) - threshold) * 3, name
        pending = deliveries_of(store, name)
        assert len(pending) == len(contracts) * 3
        assert all(d["state"] == "pending" and d["next_attempt_at"] > clock.now for d in pending), name
    working = deliveries_of(store, "working")
    assert len(working) == len(contracts) * 3 and all(d["state"] == "delivered" for d in working)
    assert len(keepalive_webhook.server.requests) == len(contracts)  # one request per contract
    assert keepalive_webhook.server.errors == []
    assert report.delivered == len(contracts) * 3
