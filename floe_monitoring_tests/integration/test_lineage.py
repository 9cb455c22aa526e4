"""OpenLineage events over the client's real HTTP transport, to a loopback receiver on 127.0.0.1.

The violations come from real checks (CheckRunner on a drifted Iceberg table, results stored on SQLite);
the emitter is configured the client's standard way (OPENLINEAGE_URL / OPENLINEAGE__TRANSPORT__* /
openlineage.yml); every body that arrives is validated against the vendored schemas. A refused port
and a hung receiver must not raise, must not slow `emit_violations` down, and must show in the
`floe_lineage_emit_failures` counter. Without configuration nothing is sent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from floe_monitoring_defs.checks.runner import CheckRun, CheckRunner
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts import MonitoredContract, parse_document
from floe_monitoring_defs.models import CheckStatus, ViolationType
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
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
        runner = CheckRunner(IcebergSource(), store, MonitoringConfig(), clock=lambda: NOW)
        [run] = list(runner.run(ViolationType.SCHEMA_DRIFT, [(contract, contract.tables[0])]))
    finally:
        store.dispose()
    assert run.result.status is CheckStatus.FAIL and run.persisted
    assert sorted(v.severity.value for v in run.violations) == ["critical", "error", "warning"], run.violations
    return run


def timed_emit(emitter: LineageEmitter, run: CheckRun) -> float:
    started = time.perf_counter()
    emitter.emit_violations(run, TRACEPARENT)
    return time.perf_counter() - started


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
        assert timed_emit(emitter, drift_run) < 0.05
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


def test_off_by_default_nothing_sent(clean_env: Path, drift_run: CheckRun) -> None:
    with HTTPRecorder() as recorder:
        os.environ["FLOE_LINEAGE_URL_THAT_DOES_NOT_COUNT"] = recorder.url
        emitter = LineageEmitter.from_env()
        assert not emitter.enabled and emitter.client is None
        assert timed_emit(emitter, drift_run) < 0.05
        time.sleep(0.3)
        assert recorder.requests == []


def test_openlineage_disabled_wins(clean_env: Path, drift_run: CheckRun) -> None:
    with HTTPRecorder() as recorder:
        os.environ["OPENLINEAGE_URL"] = recorder.url
        os.environ["OPENLINEAGE_DISABLED"] = "true"
        emitter = LineageEmitter.from_env()
        assert not emitter.enabled
        emitter.emit_violations(drift_run)
        time.sleep(0.3)
        assert recorder.requests == []


def test_refused_port_does_not_raise_or_block_and_is_counted(
    clean_env: Path, drift_run: CheckRun, telemetry: Telemetry
) -> None:
    os.environ.update({**FAST_FAIL, "OPENLINEAGE__TRANSPORT__URL": f"http://127.0.0.1:{free_port()}"})
    before = telemetry.counter(FAILURES, reason="transport")
    emitter = LineageEmitter.from_env(exit_flush_seconds=None)
    assert emitter.enabled
    assert timed_emit(emitter, drift_run) < 0.05
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
        assert timed_emit(emitter, drift_run) < 0.05
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
    """OPENLINEAGE_URL alone: 5 s timeout and 5 retries per event. The worker is stuck for minutes; the
    checks are not: every call returns at once, and what does not fit the queue is dropped and counted."""
    with HTTPRecorder() as recorder:
        recorder.hang()
        os.environ["OPENLINEAGE_URL"] = recorder.url
        before = telemetry.counter(FAILURES, reason="queue_full")
        emitter = LineageEmitter.from_env(queue_size=4, exit_flush_seconds=None)
        durations = [timed_emit(emitter, drift_run) for _ in range(5)]  # 15 events
        assert max(durations) < 0.05, durations
        assert emitter.flush(0.2) is False
        assert emitter.queued + emitter.dropped == 15
        assert emitter.dropped >= 15 - 4 - 1  # at most queue_size queued + 1 in flight
        assert telemetry.counter(FAILURES, reason="queue_full") - before == emitter.dropped
        started = time.perf_counter()
        emitter.close(0.2)  # bounded, whatever the transport does
        assert time.perf_counter() - started < 2.0
