"""OpenLineage events over the client's real HTTP transport, to a loopback receiver on 127.0.0.1.

The violations come from real checks (CheckPipeline on a drifted Iceberg table, results stored on SQLite);
the emitter is configured the client's standard way (OPENLINEAGE_URL / OPENLINEAGE__TRANSPORT__* /
openlineage.yml); every body that arrives is validated against the vendored schemas. A refused port
and a hung receiver must not raise, must not slow `emit_violations` down, and must show in the
`floe_lineage_emit_failures` counter. Without configuration nothing is sent.

"Does not block" is shown without a stopwatch: a `TransportGate` holds every event inside the client's
transport until the test releases it, and `emit_violations` must have returned with all its events
still pending, the transport never called from the check's own thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openlineage.client import OpenLineageClient
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts import MonitoredContract, parse_document
from floe_monitoring_defs.models import CheckStatus, ViolationType
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.telemetry import lineage
from floe_monitoring_defs.telemetry.lineage import CONTRACT_VIOLATION_FACET, TRACE_FACET, LineageEmitter
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, free_port
from floe_monitoring_tests.conftest import Telemetry
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog
from floe_monitoring_tests.lineage_schemas import lineage_errors

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
FAST_FAIL = {  # the client's own knobs: short timeout, no retries (its defaults: 5 s, 5 retries)
    "OPENLINEAGE__TRANSPORT__TYPE": "http",
    "OPENLINEAGE__TRANSPORT__TIMEOUT": "0.5",
    "OPENLINEAGE__TRANSPORT__RETRY": '{"total": 0}',
}
FAILURES = "floe_lineage_emit_failures"
HANG_GUARD = 30.0  # seconds; only reached when something hangs, and then the test fails


@pytest.fixture
def clean_env(tmp_path: Path) -> Iterator[Path]:
    """No OpenLineage configuration anywhere (env, cwd, ~/.openlineage); the whole environment is restored
    afterwards, because the client itself writes OPENLINEAGE__TRANSPORT__TRANSPORTS__* into os.environ."""
    saved, cwd = dict(os.environ), os.getcwd()
    for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        del os.environ[key]
    home = tmp_path / "home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    work = tmp_path / "work"
    work.mkdir()
    os.chdir(work)
    try:
        yield work
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def drift_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, telemetry: Telemetry) -> CheckRun:
    """A real schema-drift check of a drifted Iceberg table: 1 CRITICAL, 1 ERROR and 1 WARNING violation.

    Runs under the session's tracer provider, so the check has a real span (`telemetry.spans`)."""
    telemetry.spans.clear()
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    catalog = make_catalog(tmp_path)
    schema = Schema(
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "qty", StringType(), required=False),  # integer in the contract
        NestedField(5, "status", StringType(), required=False),  # not in the contract
        identifier_field_ids=[1],  # updated_at is gone
    )
    create(catalog, "shop.orders", schema)
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": "urn:orders",
        "name": "orders",
        "version": "1.0.0",
        "servers": [
            {
                "server": "t",
                "type": "iceberg",
                "catalog": CATALOG,
                "catalogUrl": "sqlite:///unused.db",
                "namespace": "shop",
            }
        ],
        "schema": [
            {
                "name": "orders",
                "properties": [
                    {"name": "order_id", "logicalType": "string", "primaryKey": True, "required": True},
                    {"name": "qty", "logicalType": "integer", "physicalType": "INT"},
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
    }
    contract: MonitoredContract = parse_document(doc, "orders.yaml")
    store = MonitoringStore(f"sqlite:///{tmp_path / 'floe.db'}")
    try:
        pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), clock=lambda: NOW)
        [run] = list(pipeline.run(ViolationType.SCHEMA_DRIFT, [(contract, contract.tables[0])]))
    finally:
        store.dispose()
    assert run.result.status is CheckStatus.FAIL and run.persisted
    assert sorted(v.severity.value for v in run.violations) == ["critical", "error", "warning"], run.violations
    return run


class TransportGate:
    """Holds every event in the emitter's own (real) transport until `release()`: a transport that hangs.

    A call from the thread that created the gate (the check's thread) is not held, which would hang the
    test, but counted in `called_from_caller`, so that a blocking emitter fails the test at once.
    """

    def __init__(self, emitter: LineageEmitter) -> None:
        assert emitter.client is not None
        self._transport = emitter.client.transport
        self._emit = self._transport.emit
        self._caller = threading.get_ident()
        self.entered = threading.Event()  # the sending thread is inside the transport
        self.released = threading.Event()
        self.called_from_caller = 0
        # Deliberately replaces the transport's bound method to hold the sending thread.
        self._transport.emit = self._held  # type: ignore[method-assign]

    def _held(self, event: Any) -> Any:
        if threading.get_ident() == self._caller:
            self.called_from_caller += 1
        else:
            self.entered.set()
            if not self.released.wait(HANG_GUARD):
                raise TimeoutError("the test never released the transport")
        return self._emit(event)

    def release(self) -> None:
        self.released.set()


def emit_while_the_transport_hangs(emitter: LineageEmitter, run: CheckRun, times: int = 1) -> TransportGate:
    """`emit_violations` `times` over with the transport held: each call must return while it is held."""
    gate = TransportGate(emitter)
    for _ in range(times):
        emitter.emit_violations(run, TRACEPARENT)
    assert gate.called_from_caller == 0, "the transport was called from the check's thread"
    assert gate.entered.wait(HANG_GUARD), "the sending thread never reached the transport"
    assert not gate.released.is_set() and (emitter.sent, emitter.failed) == (0, 0)
    return gate


def check_bodies(recorder: HTTPRecorder, count: int) -> list[dict[str, Any]]:
    requests = recorder.wait_for(count)
    assert len(requests) == count
    bodies = []
    for request in requests:
        assert (request.method, request.path) == ("POST", "/api/v1/lineage")
        assert request.headers["content-type"] == "application/json"
        body = request.json()
        assert lineage_errors(body) == []
        bodies.append(body)
    return bodies


def test_events_arrive_over_http_via_openlineage_url(clean_env: Path, drift_run: CheckRun) -> None:
    with HTTPRecorder() as recorder:
        os.environ["OPENLINEAGE_URL"] = recorder.url
        emitter = LineageEmitter.from_env(exit_flush_seconds=None)
        assert emitter.enabled and emitter.client is not None and emitter.client.transport.kind == "http"
        gate = emit_while_the_transport_hangs(emitter, drift_run)
        assert emitter.pending == 3 and recorder.requests == []  # returned with all three still to send
        gate.release()
        assert emitter.flush(10)
        bodies = check_bodies(recorder, 3)
        emitter.close(1)
    assert emitter.sent == 3 and emitter.failed == 0
    by_severity = {b["run"]["facets"][CONTRACT_VIOLATION_FACET]["severity"]: b for b in bodies}
    assert set(by_severity) == {"critical", "error", "warning"}
    for body in bodies:
        assert body["eventType"] == "FAIL" and body["job"]["name"] == "orders.schema_drift"
        assert body["run"]["facets"][TRACE_FACET]["traceparent"] == TRACEPARENT
        [dataset] = body["inputs"]
        assert (dataset["namespace"], dataset["name"]) == (f"iceberg://{CATALOG}", "shop.orders")
        assert len(dataset["inputFacets"]["dataQualityAssertions"]["assertions"]) == 3
    # runIds derive from the stored violation ids: three distinct runs, the same on a re-emit.
    expected = {b["run"]["runId"] for b in bodies}
    assert len(expected) == 3
    with HTTPRecorder() as again:
        emitter = LineageEmitter(transport=_http(again.url), exit_flush_seconds=None)
        emitter.emit_violations(drift_run, TRACEPARENT)
        assert emitter.flush(10)
        assert {b["run"]["runId"] for b in check_bodies(again, 3)} == expected
        emitter.close(1)


def _http(url: str, **config: Any) -> Any:
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    return HttpTransport(HttpConfig.from_dict({"url": url, **config}))


def test_trace_context_is_the_check_spans_even_after_the_span_ended(
    clean_env: Path, drift_run: CheckRun, telemetry: Telemetry
) -> None:
    [span] = [s for s in telemetry.spans.get_finished_spans() if s.name == "floe.check.schema_drift"]
    with HTTPRecorder() as recorder:
        os.environ["OPENLINEAGE_URL"] = recorder.url
        emitter = LineageEmitter.from_env(exit_flush_seconds=None)
        emitter.emit_violations(drift_run)  # no traceparent given, no span active: the violations' own
        assert emitter.flush(10)
        bodies = check_bodies(recorder, 3)
        emitter.close(1)
    for body in bodies:
        _version, trace_id, span_id, _flags = body["run"]["facets"][TRACE_FACET]["traceparent"].split("-")
        assert (int(trace_id, 16), int(span_id, 16)) == (span.context.trace_id, span.context.span_id)


def test_openlineage_yml_in_the_working_directory(clean_env: Path, drift_run: CheckRun) -> None:
    with HTTPRecorder() as recorder:
        (clean_env / "openlineage.yml").write_text(f"transport:\n  type: http\n  url: {recorder.url}\n  timeout: 2\n")
        emitter = LineageEmitter.from_env(exit_flush_seconds=None)
        assert emitter.enabled
        emitter.emit_violations(drift_run)
        assert emitter.flush(10)
        check_bodies(recorder, 3)
        emitter.close(1)


def test_off_by_default_nothing_sent(clean_env: Path, drift_run: CheckRun, monkeypatch: pytest.MonkeyPatch) -> None:
    with HTTPRecorder() as recorder:
        # Any client the emitter builds sends to the recorder: were lineage on without configuration,
        # the events would arrive there (the control below shows they do once an emitter is enabled).
        real_client = OpenLineageClient
        monkeypatch.setattr(
            lineage, "OpenLineageClient", lambda transport=None: real_client(transport=transport or _http(recorder.url))
        )
        emitter = LineageEmitter.from_env()
        assert not emitter.enabled and emitter.client is None
        emitter.emit_violations(drift_run, TRACEPARENT)
        assert emitter.flush(10)  # an enabled emitter would have delivered everything by now
        assert recorder.requests == []
        control = LineageEmitter(exit_flush_seconds=None)  # what from_env builds when configured
        control.emit_violations(drift_run, TRACEPARENT)
        assert control.flush(10)
        check_bodies(recorder, 3)
        control.close(1)


def test_openlineage_disabled_wins(clean_env: Path, drift_run: CheckRun) -> None:
    with HTTPRecorder() as recorder:
        os.environ["OPENLINEAGE_URL"] = recorder.url
        os.environ["OPENLINEAGE_DISABLED"] = "true"
        emitter = LineageEmitter.from_env()
        assert not emitter.enabled
        emitter.emit_violations(drift_run)
        assert emitter.flush(10)  # were OPENLINEAGE_DISABLED ignored, the events would have arrived by now
        assert recorder.requests == []


def test_refused_port_does_not_raise_or_block_and_is_counted(
    clean_env: Path, drift_run: CheckRun, telemetry: Telemetry
) -> None:
    os.environ.update({**FAST_FAIL, "OPENLINEAGE__TRANSPORT__URL": f"http://127.0.0.1:{free_port()}"})
    before = telemetry.counter(FAILURES, reason="transport")
    emitter = LineageEmitter.from_env(exit_flush_seconds=None)
    assert emitter.enabled
    emit_while_the_transport_hangs(emitter, drift_run).release()
    assert emitter.flush(10)
    assert (emitter.failed, emitter.sent) == (3, 0)
    assert telemetry.counter(FAILURES, reason="transport") - before == 3
    emitter.close(1)


def test_hung_receiver_does_not_block_and_is_counted(
    clean_env: Path, drift_run: CheckRun, telemetry: Telemetry
) -> None:
    with HTTPRecorder() as recorder:
        recorder.hang()
        os.environ.update({**FAST_FAIL, "OPENLINEAGE__TRANSPORT__URL": recorder.url})
        before = telemetry.counter(FAILURES, reason="transport")
        emitter = LineageEmitter.from_env(exit_flush_seconds=None)
        emit_while_the_transport_hangs(emitter, drift_run).release()
        assert emitter.flush(10)  # each event waits out the 0.5 s read timeout, in the worker
        assert (emitter.failed, emitter.sent) == (3, 0)
        assert telemetry.counter(FAILURES, reason="transport") - before == 3
        assert len(recorder.requests) == 3 and all(r.status is None for r in recorder.requests)
        recorder.clear()
        emitter.emit_violations(drift_run)  # the receiver is back: delivery resumes
        assert emitter.flush(10)
        assert emitter.sent == 3
        emitter.close(1)


def test_hung_receiver_with_the_clients_defaults_fills_the_queue_never_the_check(
    clean_env: Path, drift_run: CheckRun, telemetry: Telemetry
) -> None:
    """OPENLINEAGE_URL alone: 5 s timeout and 5 retries per event, so against a hung receiver the worker is
    stuck for minutes (here: held in the transport by the gate until the end of the test); the checks are
    not: every call returns, and what does not fit the queue is dropped and counted."""
    with HTTPRecorder() as recorder:
        os.environ["OPENLINEAGE_URL"] = recorder.url
        before = telemetry.counter(FAILURES, reason="queue_full")
        emitter = LineageEmitter.from_env(queue_size=4, exit_flush_seconds=None)
        gate = emit_while_the_transport_hangs(emitter, drift_run, times=5)  # 15 events
        assert emitter.flush(0.2) is False
        assert emitter.queued + emitter.dropped == 15
        assert emitter.dropped >= 15 - 4 - 1  # at most queue_size queued + 1 in flight
        assert telemetry.counter(FAILURES, reason="queue_full") - before == emitter.dropped
        closed: list[bool] = []
        closer = threading.Thread(target=lambda: closed.append(emitter.close(0.2)), daemon=True)
        closer.start()
        closer.join(HANG_GUARD)  # bounded, whatever the transport does: it returns with the transport still held
        assert closed == [False] and not gate.released.is_set()
        assert recorder.requests == []
        gate.release()  # let the worker finish (into the healthy receiver) before the recorder goes away
        assert emitter.flush(HANG_GUARD)
