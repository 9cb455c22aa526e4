"""The OpenLineage FAIL events of contract violations, validated offline against the official schemas.

Events are built by the pure functions of `telemetry.lineage`, serialized with the client's own
`Serde.to_dict` (what every transport sends), and checked by `lineage_schemas.lineage_errors`: the core
OpenLineage 2-0-2 schema with formats on, plus each facet against its own schema. Negative controls
prove each schema actually rejects what it should, so these tests can fail.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.serde import Serde
from openlineage.client.transport import Transport
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.contracts import MonitoredContract, parse_document
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    RecordedCheck,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.telemetry import lineage
from floe_monitoring_defs.telemetry.lineage import (
    CONTRACT_VIOLATION_FACET,
    JOB_NAMESPACE,
    TRACE_FACET,
    LineageEmitter,
    build_run_event,
    build_run_events,
    contract_violation_facet,
    lineage_configured,
    lineage_emitter,
)
from floe_monitoring_tests.alerting_receivers import violation_event
from floe_monitoring_tests.lineage_schemas import (
    CONTRACT_VIOLATION_FILE,
    KNOWN_DEVIATION,
    SCHEMAS,
    contract_violation_validator,
    lineage_errors,
    load,
    ref_validator,
)

S = ViolationSeverity
T = ViolationType
WHEN = datetime(2026, 11, 28, 12, 0, 5, 123456, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

PINNED = {  # the vendored files, byte for byte (sources in contract/schemas/README.md)
    "OpenLineage.json": "69f68bee00b9beac88a87059c0102410e7bb05f3f43c46d02a0409831eceb0d2",
    "DataQualityAssertionsDatasetFacet.json": "65c785790728ccf3f1fe326a0a064a91934b242807a015c2c3e99bde913abc56",
    "ErrorMessageRunFacet.json": "b11b4ee8b0f99f6846264f87cad48390255c7ef142ce623216660c7097be0ea6",
    "contract-violation-facet.json": "b95e14dfc7eb00f96ba6a7571ab9c62c4d406e3339f938acbdcd0f4b786f4d3f",
    "TagsRunFacet.json": "87c2bce2b8325c3788416ed99f98171e35c4f1a692be878c73e65fa7915ca2fb",
    "FloeTraceRunFacet.json": "b215bc8657ef792d8886407350e33de7915b027be2a05887c5c9c906b4c5e6bc",
    "FloeContextRunFacet.json": "dfba41fb43723b2b299a48addbbcbbf43ad69ebd2dfca8090d3c5c56b4f88838",
}


# -- fixtures ---------------------------------------------------------------------------------------


def orders_contract() -> MonitoredContract:
    server = {
        "server": "prod",
        "type": "iceberg",
        "namespace": "sales",
        "catalog": "lake",
        "catalogUrl": "https://user:s3cret@catalog.example.com/api?token=abc",
    }
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": "urn:orders",
        "name": "orders",
        "version": "1.2.0",
        "servers": [server],
        "schema": [
            {
                "name": "orders",
                "properties": [
                    {"name": "order_id", "logicalType": "string", "primaryKey": True, "required": True},
                    {"name": "email", "logicalType": "string", "classification": "pii"},
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
        "slaProperties": [{"property": "freshness", "value": "PT6H", "element": "updated_at"}],
    }
    return parse_document(doc, "orders.yaml")


def violation(**overrides: Any) -> ContractViolationEvent:
    values: dict[str, Any] = {"timestamp": WHEN, "metadata": {"table": "sales.orders", "drift": "stale"}}
    values.update(overrides)
    return violation_event(**values)


def check_run(
    violations: list[ContractViolationEvent],
    ids: tuple[str, ...] | None = None,
    contract: MonitoredContract | None = None,
) -> CheckRun:
    c = contract or orders_contract()
    check_type = violations[0].violation_type if violations else T.FRESHNESS
    failing = any(v.severity >= S.WARNING for v in violations)
    status = CheckStatus.FAIL if failing else CheckStatus.PASS
    result = CheckResult(
        contract_name=c.name, check_type=check_type, status=status, duration_seconds=0.01, timestamp=WHEN
    )
    return CheckRun(
        c,
        c.tables[0],
        CheckOutcome(check_type, status),
        result,
        tuple(violations),
        RecordedCheck(result.id, tuple(ids) if ids is not None else tuple(f"viol-{i}" for i in range(len(violations)))),
    )


DRIFT = [
    violation(
        violation_type=T.SCHEMA_DRIFT,
        severity=S.CRITICAL,
        element="updated_at",
        expected_value="timestamp",
        actual_value=None,
        message="Column updated_at was removed",
        metadata={"drift": "column_removed"},
    ),
    violation(
        violation_type=T.SCHEMA_DRIFT,
        severity=S.WARNING,
        element="status",
        expected_value=None,
        actual_value="string",
        message="Column status was added",
        metadata={"drift": "column_added"},
    ),
    violation(
        violation_type=T.SCHEMA_DRIFT,
        severity=S.INFO,
        element=None,
        expected_value=None,
        actual_value=None,
        message="early warning",
        metadata={"drift": "something_minor"},
    ),
]


def serialized(run: CheckRun, traceparent: str | None = TRACEPARENT) -> list[dict[str, Any]]:
    return [Serde.to_dict(e) for e in build_run_events(run, traceparent)]


class Capture(Transport):
    """An in-memory transport: what the client would hand to HTTP, serialized the same way."""

    kind = "capture"

    def __init__(self, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = fail
        self.gate = gate
        self.entered = threading.Event()
        self.threads: list[threading.Thread] = []  # the threads that called emit (the sending thread)

    def emit(self, event: Any) -> None:
        self.threads.append(threading.current_thread())
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise ConnectionError("receiver down")
        self.events.append(json.loads(Serde.to_json(event)))


# -- the vendored schema files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PINNED))
def test_schema_file_is_the_pinned_copy(name: str) -> None:
    assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == PINNED[name]
    readme = (SCHEMAS / "README.md").read_text()
    assert name in readme and PINNED[name] in readme


# -- the contractViolation facet --------------------------------------------------------------------


def test_facet_has_exactly_the_schema_keys_and_validates() -> None:
    schema = load(CONTRACT_VIOLATION_FILE)
    facet = contract_violation_facet(violation())
    assert set(facet) == set(schema["properties"])
    assert facet["_producer"] == "floe"
    assert facet["_schemaURL"] == "https://floe.dev/schemas/contract-violation-facet.json"
    assert facet["timestamp"] == "2026-11-28T12:00:05.123456Z"
    assert (facet["contractName"], facet["contractVersion"], facet["violationType"], facet["severity"]) == (
        "orders",
        "1.2.0",
        "freshness",
        "error",
    )
    contract_violation_validator().validate(facet)


@pytest.mark.parametrize("vtype", list(ViolationType))
@pytest.mark.parametrize("severity", list(ViolationSeverity))
def test_every_type_and_severity_is_in_the_schema_enums(vtype: ViolationType, severity: ViolationSeverity) -> None:
    contract_violation_validator().validate(
        contract_violation_facet(violation(violation_type=vtype, severity=severity))
    )


def test_null_element_expected_actual() -> None:
    v = violation(element=None, expected_value=None, actual_value=None)
    facet = contract_violation_facet(v)
    assert facet["element"] is None and facet["expectedValue"] is None and facet["actualValue"] is None
    contract_violation_validator().validate(facet)  # explicit JSON nulls are allowed
    [event] = serialized(check_run([v]))
    on_wire = event["run"]["facets"][CONTRACT_VIOLATION_FACET]
    assert not {"element", "expectedValue", "actualValue"} & set(on_wire)  # the client drops nulls
    [assertion] = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertion == {
        "assertion": "stale",
        "success": False,
        "severity": "error",
        "name": "freshness.stale",
        "description": v.message,
    }
    assert lineage_errors(event) == []


@pytest.mark.parametrize(
    ("change", "validator"),
    [
        ({"checkDurationSeconds": 0.2}, "additionalProperties"),  # the reference impl's extra keys
        ({"affectedConsumers": ["x"]}, "additionalProperties"),
        ({"severity": "fatal"}, "enum"),
        ({"violationType": "freshness_violation"}, "enum"),  # ADR-0028's legacy values
        ({"contractVersion": "1.2"}, "pattern"),
        ({"_producer": "https://github.com/obsidian-owl/floe"}, "const"),  # the reference impl's producer
        ({"_schemaURL": "https://raw.githubusercontent.com/x/main/facet.json"}, "const"),
        ({"timestamp": "yesterday"}, "format"),
        ({"element": 3}, "type"),
        ({"timestamp": None}, "type"),
    ],
)
def test_broken_facet_is_rejected(change: dict[str, Any], validator: str) -> None:
    facet = {**contract_violation_facet(violation()), **change}
    errors = list(contract_violation_validator().iter_errors(facet))
    assert [e.validator for e in errors] == [validator]


def test_facet_without_timestamp_is_rejected() -> None:
    facet = contract_violation_facet(violation())
    del facet["timestamp"]  # the reference impl's omission
    assert [e.validator for e in contract_violation_validator().iter_errors(facet)] == ["required"]


# -- whole RunEvents --------------------------------------------------------------------------------


def test_one_fail_event_per_warning_or_worse_violation_all_valid() -> None:
    run = check_run(DRIFT)
    events = serialized(run)
    assert len(events) == 2  # the INFO early warning is not emitted
    for event, v in zip(events, DRIFT[:2], strict=True):
        assert lineage_errors(event) == []
        assert event["eventType"] == "FAIL"
        assert event["eventTime"] == "2026-11-28T12:00:05.123456Z"
        assert event["producer"] == lineage.PRODUCER and event["producer"].startswith("https://github.com/")
        assert event["job"] == {"namespace": JOB_NAMESPACE, "name": "orders.schema_drift", "facets": {}}
        facets = event["run"]["facets"]
        assert set(facets) == {CONTRACT_VIOLATION_FACET, "errorMessage", TRACE_FACET}
        assert facets[CONTRACT_VIOLATION_FACET]["severity"] == v.severity.value
        assert facets["errorMessage"] == {
            "_producer": lineage.PRODUCER,
            "_schemaURL": facets["errorMessage"]["_schemaURL"],
            "message": v.message,
            "programmingLanguage": "python",
        }
        assert facets[TRACE_FACET]["traceparent"] == TRACEPARENT
        [dataset] = event["inputs"]
        assert (dataset["namespace"], dataset["name"]) == ("iceberg://lake", "sales.orders")
        assertions = dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
        assert [(a["assertion"], a.get("column"), a["severity"], a["success"]) for a in assertions] == [
            ("column_removed", "updated_at", "critical", False),
            ("column_added", "status", "warning", False),
        ]
        assert event["outputs"] == []
    run_ids = [e["run"]["runId"] for e in events]
    assert len(set(run_ids)) == 2 and all(uuid.UUID(r).version == 5 for r in run_ids)


def test_run_id_is_stable_per_violation_id() -> None:
    first = serialized(check_run(DRIFT[:1], ids=("abc",)))[0]["run"]["runId"]
    again = serialized(check_run(DRIFT[:1], ids=("abc",)))[0]["run"]["runId"]
    other = serialized(check_run(DRIFT[:1], ids=("abd",)))[0]["run"]["runId"]
    unstored = serialized(check_run(DRIFT[:1], ids=()))[0]["run"]["runId"]  # not persisted: from its identity
    assert first == again and first != other
    assert unstored == serialized(check_run(DRIFT[:1], ids=()))[0]["run"]["runId"] != first
    assert uuid.UUID(unstored).version == 5


def test_quality_rule_assertion_uses_the_metric_and_rule_name() -> None:
    v = violation(
        violation_type=T.QUALITY,
        severity=S.ERROR,
        element="order_id",
        expected_value="0",
        actual_value="3",
        message="Quality rule no_dup_ids failed",
        metadata={"drift": "rule_failed", "rule": "no_dup_ids", "metric": "duplicateValues"},
    )
    [event] = serialized(check_run([v]))
    [a] = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert (a["assertion"], a["name"], a["column"], a["expected"], a["actual"]) == (
        "duplicateValues",
        "no_dup_ids",
        "order_id",
        "0",
        "3",
    )
    assert lineage_errors(event) == []


def test_no_trace_facet_without_traceparent_and_catalog_fallbacks() -> None:
    [event] = serialized(check_run(DRIFT[:1]), traceparent=None)
    assert TRACE_FACET not in event["run"]["facets"]
    assert lineage_errors(event) == []
    nameless = dataclasses.replace(orders_contract().tables[0].ref, catalog=None)  # floe dialect, FLOE_CATALOG
    assert Serde.to_dict(build_run_event(DRIFT[0], nameless))["inputs"][0]["namespace"] == "iceberg://default"
    named = build_run_event(DRIFT[0], nameless, default_catalog="prod_lake")
    assert Serde.to_dict(named)["inputs"][0]["namespace"] == "iceberg://prod_lake"


def test_nothing_of_the_catalog_url_or_metadata_reaches_the_event() -> None:
    secret = "SENTINEL-7c1e"
    v = violation(metadata={"drift": "stale", "reason": secret, "sample": secret})
    text = json.dumps(serialized(check_run([v])))
    assert secret not in text
    assert "s3cret" not in text and "token=abc" not in text and "catalog.example.com" not in text


def test_only_info_findings_emit_nothing() -> None:
    assert build_run_events(check_run(DRIFT[2:])) == []
    assert build_run_events(check_run([])) == []


# -- negative controls: the schemas catch broken events ---------------------------------------------


def _event() -> dict[str, Any]:
    return serialized(check_run(DRIFT[:1]))[0]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.update(eventType="FAILED"), "core: eventType"),
        (lambda e: e["run"].update(runId="run-42"), "core: run/runId"),
        (lambda e: e.update(eventTime="yesterday"), "core: eventTime"),
        (lambda e: e["job"].pop("name"), "core: job"),
        (
            lambda e: e["run"]["facets"]["errorMessage"].pop("_producer"),
            ("core: run/facets/errorMessage", "run.facets.errorMessage"),
        ),  # both the core and the facet schema
        (lambda e: e["run"]["facets"]["errorMessage"].pop("programmingLanguage"), "run.facets.errorMessage"),
        (lambda e: e["run"]["facets"][CONTRACT_VIOLATION_FACET].update(extra=1), "run.facets.contractViolation"),
        (
            lambda e: e["run"]["facets"][CONTRACT_VIOLATION_FACET].update(severity="fatal"),
            "run.facets.contractViolation/severity",
        ),
        (lambda e: e["run"]["facets"][TRACE_FACET].update(traceparent="00-xyz"), "run.facets.floe_trace/traceparent"),
        (
            lambda e: e["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0].pop("success"),
            "inputs[0].inputFacets.dataQualityAssertions/assertions/0",
        ),
        (
            lambda e: e["run"]["facets"].update(unknown={"_producer": "https://x", "_schemaURL": "https://x/y#/z"}),
            "run.facets.unknown: no vendored schema",
        ),
    ],
)
def test_broken_event_is_rejected(mutate: Any, expected: str | tuple[str, ...]) -> None:
    event = _event()
    assert lineage_errors(event) == []
    broken = copy.deepcopy(event)
    mutate(broken)
    problems = lineage_errors(broken)
    assert problems and all(p.startswith(expected) for p in problems), problems


def test_core_alone_misses_a_dq_assertion_without_success() -> None:
    """Why facets are validated separately: the core schema does not look inside them."""
    event = _event()
    del event["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"]
    from floe_monitoring_tests.lineage_schemas import RUN_EVENT_REF

    assert list(ref_validator(RUN_EVENT_REF, formats=False).iter_errors(event)) == []
    assert lineage_errors(event) != []


def test_the_one_known_conflict_between_the_specs() -> None:
    """floe's facet pins `_producer` to "floe"; OpenLineage's BaseFacet says `format: uri`.

    JSON Schema 2020-12 treats `format` as an annotation: without the opt-in format checker the event is
    valid; with it, exactly that one field of that one facet is reported, nothing else.
    """
    from floe_monitoring_tests.lineage_schemas import RUN_EVENT_REF

    event = _event()
    assert list(ref_validator(RUN_EVENT_REF, formats=False).iter_errors(event)) == []
    assert lineage_errors(event, allow_known=False) == [
        "core: run/facets/contractViolation/_producer: 'floe' is not a 'uri' [format]"
    ]
    assert KNOWN_DEVIATION[0] == ("run", "facets", "contractViolation", "_producer")


# -- the emitter, with an in-memory transport -------------------------------------------------------


def test_emitter_sends_valid_events_off_the_calling_thread() -> None:
    capture = Capture()
    emitter = LineageEmitter(transport=capture, exit_flush_seconds=None)
    emitter.emit_violations(check_run(DRIFT), TRACEPARENT)
    assert emitter.flush(5)
    assert len(capture.events) == 2 and emitter.sent == 2 and emitter.failed == 0
    for event in capture.events:
        assert lineage_errors(event) == []
        assert set(event["run"]["facets"]) == {CONTRACT_VIOLATION_FACET, "errorMessage", TRACE_FACET, "tags"}
    emitter.close(1)
    emitter.emit_violations(check_run(DRIFT))  # closed: a no-op
    assert emitter.flush(1) and len(capture.events) == 2


def test_traceparent_defaults_to_the_active_span() -> None:
    capture = Capture()
    emitter = LineageEmitter(transport=capture, exit_flush_seconds=None)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("check") as span:
        emitter.emit_violations(check_run(DRIFT[:1]))
        ctx = span.get_span_context()
    assert emitter.flush(5)
    [event] = capture.events
    assert event["run"]["facets"][TRACE_FACET]["traceparent"] == (
        f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    )
    assert trace.get_current_span().get_span_context().is_valid is False
    emitter.close(1)


def test_traceparent_precedence_explicit_then_the_violations_then_the_active_span() -> None:
    recorded = "00-11111111111111111111111111111111-2222222222222222-01"
    v = violation(metadata={"drift": "stale", "traceparent": recorded})
    capture = Capture()
    emitter = LineageEmitter(transport=capture, exit_flush_seconds=None)
    with TracerProvider().get_tracer("test").start_as_current_span("later"):
        emitter.emit_violations(check_run([v]))  # the check span's, recorded by the runner, wins
        emitter.emit_violations(check_run([v]), TRACEPARENT)  # an explicit one wins over both
    assert emitter.flush(5)
    assert [e["run"]["facets"][TRACE_FACET]["traceparent"] for e in capture.events] == [recorded, TRACEPARENT]
    emitter.close(1)


def test_transport_errors_are_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    emitter = LineageEmitter(transport=Capture(fail=True), exit_flush_seconds=None, log_every=3)
    for _ in range(4):
        emitter.emit_violations(check_run(DRIFT[:1]))
    assert emitter.flush(5)
    assert (emitter.failed, emitter.sent) == (4, 0)
    warnings = [r for r in caplog.records if r.name == lineage.__name__ and r.levelname == "WARNING"]
    assert len(warnings) == 2  # the 1st and the 3rd failure (log_every=3)
    assert "ConnectionError" in warnings[0].getMessage()
    emitter.close(1)


def test_a_full_queue_drops_and_counts() -> None:
    gate = threading.Event()
    capture = Capture(gate=gate)
    emitter = LineageEmitter(transport=capture, queue_size=2, exit_flush_seconds=None)
    emitter.emit_violations(check_run(DRIFT[:1]))
    assert capture.entered.wait(5)  # the worker holds event 1 in the (stuck) transport
    for _ in range(4):
        emitter.emit_violations(check_run(DRIFT[:1]))
    assert (emitter.queued, emitter.dropped) == (3, 2)
    assert emitter.flush(0.05) is False  # stuck: flush gives up on time
    gate.set()
    assert emitter.flush(5)
    assert len(capture.events) == 3
    emitter.close(1)


def test_a_broken_run_is_counted_not_raised() -> None:
    emitter = LineageEmitter(transport=Capture(), exit_flush_seconds=None)
    broken = check_run(DRIFT[:1])
    object.__setattr__(broken, "table", None)  # build fails on table.ref
    emitter.emit_violations(broken)
    assert emitter.build_errors == 1 and emitter.queued == 0
    emitter.close(1)


def test_disabled_emitter_is_a_no_op() -> None:
    emitter = LineageEmitter.disabled()
    emitter.emit_violations(check_run(DRIFT))
    assert not emitter.enabled and emitter.queued == 0 and emitter.flush(0) and emitter.client is None
    assert emitter._worker is None  # no thread for a disabled emitter


@pytest.mark.parametrize(
    ("env", "file", "expected"),
    [
        ({}, False, False),
        ({"OPENLINEAGE_URL": "http://127.0.0.1:5000"}, False, True),
        ({"OPENLINEAGE__TRANSPORT__TYPE": "console"}, False, True),
        ({"OPENLINEAGE_CONFIG": "/etc/openlineage.yml"}, False, True),
        ({}, True, True),
        ({"OPENLINEAGE_URL": "http://127.0.0.1:5000", "OPENLINEAGE_DISABLED": "true"}, False, False),
        ({"OPENLINEAGE_DISABLED": "TRUE"}, True, False),
        ({"OPENLINEAGE_URL": ""}, False, False),
    ],
)
def test_configured_only_by_the_clients_own_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], file: bool, expected: bool
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if file:
        (tmp_path / "openlineage.yml").write_text("transport:\n  type: console\n")
    assert lineage_configured(env, cwd=tmp_path) is expected


def test_home_openlineage_yml_counts_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".openlineage").mkdir()
    assert lineage_configured({}, cwd=tmp_path) is False
    (tmp_path / ".openlineage" / "openlineage.yml").write_text("transport:\n  type: console\n")
    assert lineage_configured({}, cwd=tmp_path) is True


def test_the_sending_thread_ends_when_idle_and_comes_back() -> None:
    capture = Capture()
    emitter = LineageEmitter(transport=capture, exit_flush_seconds=None, idle_seconds=0.05)
    emitter.emit_violations(check_run(DRIFT[:1]))
    assert emitter.flush(5)
    [worker] = capture.threads
    worker.join(30)  # it ends on its own once idle; the timeout only guards against a hang
    assert not worker.is_alive() and emitter._worker is None  # an emitter nobody uses leaves no thread behind
    emitter.emit_violations(check_run(DRIFT[:1]))
    assert emitter.flush(5) and len(capture.events) == 2


def test_at_exit_the_queue_gets_a_bounded_time_and_leftovers_count_as_dropped() -> None:
    gate = threading.Event()
    emitter = LineageEmitter(transport=Capture(gate=gate), exit_flush_seconds=0.1)
    for _ in range(3):
        emitter.emit_violations(check_run(DRIFT[:1]))
    # Its own 0.1 s bound applies, not the far deadline: were it to wait for the queue, the gated events
    # would drain (Capture gives up on the gate after 10 s each) and nothing would count as dropped.
    emitter._at_exit(deadline=time.monotonic() + 300)
    assert not gate.is_set() and emitter.dropped == 3 and emitter.pending == 3
    gate.set()
    emitter.close(1)


def test_lineage_emitter_is_shared_per_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(key)
    off = lineage_emitter()
    assert not off.enabled and lineage_emitter() is off
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "noop")
    on = lineage_emitter()
    assert on.enabled and on is not off and lineage_emitter() is on
    on.close(1)
