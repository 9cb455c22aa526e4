"""Root-cause context on real Iceberg tables (issue 16 acceptance 1): what a violation says about its cause.

Each scenario runs the core pipeline (`CheckPipeline`) on a real SqlCatalog table with a real store (SQLite and
PostgreSQL): a passing check first (the store's "last pass"), then the change that breaks the contract, then the
failing check. The context is asserted in the stored violation, in the CloudEvent a loopback receiver validated
(official schema + SDK), and in the `floe_context` OpenLineage facet validated against its JSON Schema.

Clocks: the checks' clock is the real time taken after each table change (snapshots carry real commit times, and
"since the last pass" compares the two), advanced by the test where a check must see the data as old; nothing
here measures time.
"""

import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from openlineage.client.serde import Serde
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.alerting.channels.base import build_channel
from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.config import MonitoringConfig, parse_config
from floe_monitoring_defs.contracts import MonitoredContract, MonitoredTable, parse_document
from floe_monitoring_defs.models import CheckStatus, ContractViolationEvent, ViolationType
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.telemetry.lineage import build_run_events
from floe_monitoring_tests import alerting_receivers
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, cloudevents_responder, parse_cloudevent
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog
from floe_monitoring_tests.lineage_schemas import assert_valid_lineage, facet_errors

pytestmark = pytest.mark.integration
http_recorder = alerting_receivers.http_recorder  # fixture

F, D, Q = ViolationType.FRESHNESS, ViolationType.SCHEMA_DRIFT, ViolationType.QUALITY
SECRET = "secret-person"  # in every non-null email: must never reach a context

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "email", StringType(), required=False),
    NestedField(3, "updated_at", TimestamptzType(), required=False),
)
PROPS: list[dict[str, Any]] = [
    {"name": "id", "logicalType": "integer"},
    {"name": "email", "logicalType": "string", "classification": "pii"},
    {"name": "updated_at", "logicalType": "timestamp"},
]


SERVER = {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "crm"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    yield s
    s.dispose()


def contract(*, quality: list[dict[str, Any]] | None = None, freshness: str | None = "PT1H") -> MonitoredContract:
    props = [dict(p, quality=quality) if quality and p["name"] == "email" else p for p in PROPS]
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": "urn:customers",
        "name": "customers",
        "version": "1.0.0",
        "servers": [SERVER],
        "schema": [{"name": "customers", "properties": props}],
        "slaProperties": [{"property": "freshness", "value": freshness}] if freshness else [],
    }
    return parse_document(doc, "customers.yaml")


def rows(n: int, nulls: int, at: datetime, start: int = 0) -> dict[str, list[Any]]:
    return {
        "id": list(range(start, start + n)),
        "email": [None if i < nulls else f"{SECRET}-{start + i}@example.com" for i in range(n)],
        "updated_at": [at - timedelta(seconds=i) for i in range(n)],
    }


def append(table: Table, data: Mapping[str, list[Any]], **summary: str) -> None:
    table.append(pa.table(dict(data), schema=table.schema().as_arrow()), snapshot_properties=summary)


def check(
    store: MonitoringStore,
    kind: ViolationType,
    c: MonitoredContract,
    clock: Clock,
    config: MonitoringConfig | None = None,
    **pipeline: Any,
) -> CheckRun:
    p = CheckPipeline(IcebergSource(), store, config or MonitoringConfig(), clock=clock, **pipeline)
    [run] = list(p.run(kind, [(c, t) for t in c.tables]))
    return run


def stored_context(store: MonitoringStore, run: CheckRun) -> dict[str, Any]:
    """The context of the run's stored violations (one context per check: every violation carries it)."""
    stored = {v.id: v.event for v in store.results.violations(contract_name=run.contract.name)}
    contexts = [stored[i].context for i in run.violation_ids]
    assert contexts and all(ctx == contexts[0] for ctx in contexts)
    assert contexts[0] is not None
    return contexts[0]


def assert_facet_valid(run: CheckRun) -> dict[str, Any]:
    [event, *_] = build_run_events(run)
    wire = json.loads(Serde.to_json(event))
    assert_valid_lineage(wire)
    facet = wire["run"]["facets"]["floe_context"]
    assert facet["_schemaURL"].endswith("FloeContextRunFacet.json#/$defs/FloeContextRunFacet")
    return dict(facet)


def snapshot_id(table: Table) -> str:
    snap = table.current_snapshot()
    assert snap is not None
    return str(snap.snapshot_id)


# -- acceptance 1 -------------------------------------------------------------------------------------


def test_drift_carries_the_snapshot_and_time_of_the_schema_change(catalog: SqlCatalog, store: MonitoringStore) -> None:
    table = create(catalog, "crm.customers", SCHEMA, rows(10, 0, datetime.now(UTC)))
    before = snapshot_id(table)
    c = contract(freshness=None)
    assert check(store, D, c, Clock(datetime.now(UTC))).result.status is CheckStatus.PASS  # the last pass
    with table.update_schema() as update:
        update.add_column("segment", StringType())  # not in the contract: drift
    table.refresh()
    changed_ms = table.metadata.last_updated_ms
    append(table, {**rows(5, 0, datetime.now(UTC), start=10), "segment": ["b2b"] * 5})
    after = table.current_snapshot()
    assert after is not None and after.schema_id == table.metadata.current_schema_id

    run = check(store, D, c, Clock(datetime.now(UTC)))
    assert run.result.status is CheckStatus.FAIL
    ctx = stored_context(store, run)
    change = ctx["history"]["schema_change"]
    assert change["schema_id"] == table.metadata.current_schema_id and change["previous_schema_id"] == 0
    assert change["changed_at"] == datetime.fromtimestamp(changed_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert change["snapshot_id_at_change"] == before  # the commit changed the schema, not the data
    assert change["first_snapshot"]["snapshot_id"] == str(after.snapshot_id)
    assert change["first_snapshot"]["committed_at"] == datetime.fromtimestamp(after.timestamp_ms / 1000, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    # Since the last pass: only the append written with the new schema.
    assert [s["snapshot_id"] for s in ctx["history"]["snapshots"]] == [str(after.snapshot_id)]
    assert ctx["pattern"]["failures_24h"] == 1 and ctx["pattern"]["last_pass_at"] is not None
    facet = assert_facet_valid(run)
    assert facet["history"]["schema_change"]["first_snapshot"]["snapshot_id"] == str(after.snapshot_id)


def test_stale_table_carries_its_last_data_changing_snapshot(catalog: SqlCatalog, store: MonitoringStore) -> None:
    loaded = datetime.now(UTC)
    table = create(catalog, "crm.customers", SCHEMA, rows(10, 0, loaded))
    append(table, rows(7, 0, loaded, start=10))
    last = table.current_snapshot()
    assert last is not None
    c = contract()
    clock = Clock(datetime.now(UTC))
    assert check(store, F, c, clock).result.status is CheckStatus.PASS
    clock.now += timedelta(hours=3)  # nothing written since: stale against PT1H
    run = check(store, F, c, clock)
    assert run.result.status is CheckStatus.FAIL
    ctx = stored_context(store, run)
    lc = ctx["history"]["last_data_change"]
    assert (lc["snapshot_id"], lc["operation"], lc["added_records"], lc["total_records"]) == (
        str(last.snapshot_id),
        "append",
        7,
        17,
    )
    assert ctx["history"]["snapshots"] == []  # nothing committed since the last pass: that is the finding
    assert ctx["pattern"]["episode_started_at"] == ctx["generated_at"]  # this check began the episode
    assert_facet_valid(run)


def test_append_doubling_nulls_carries_that_snapshots_summary(
    catalog: SqlCatalog, store: MonitoringStore, http_recorder: HTTPRecorder
) -> None:
    table = create(catalog, "crm.customers", SCHEMA, rows(100, 5, datetime.now(UTC)))
    rule = [{"name": "email_nulls", "metric": "nullValues", "unit": "percent", "mustBeLessThan": 6}]
    c = contract(quality=rule, freshness=None)
    http_recorder.responder = cloudevents_responder()
    config = parse_config(
        {
            "alerts": {
                "channels": {"hook": {"type": "webhook", "url": http_recorder.url_for("/events")}},
                "routing_rules": [{"channel_name": "hook", "min_severity": "warning"}],
            }
        },
        "test",
    )
    channel = build_channel("hook", config.alerts.channels["hook"], environ={})

    def dispatcher() -> AlertDispatcher:
        return AlertDispatcher(store.outbox, {"hook": channel}, config.alerts)

    assert check(store, Q, c, Clock(datetime.now(UTC)), config).result.status is CheckStatus.PASS  # 5 %
    writer = {"engine-name": "spark", "spark.app.id": "app-20261128-0042", "loader.note": f"{SECRET} was here"}
    append(table, rows(50, 5, datetime.now(UTC), start=100), **writer)  # nulls 5 -> 10: 6.7 %
    appended = table.current_snapshot()
    assert appended is not None
    run = check(store, Q, c, Clock(datetime.now(UTC)), config, dispatcher=dispatcher)
    assert run.result.status is CheckStatus.FAIL

    ctx = stored_context(store, run)
    [snap] = ctx["history"]["snapshots"]
    assert snap["snapshot_id"] == str(appended.snapshot_id) and snap["operation"] == "append"
    assert (snap["added_records"], snap["total_records"], snap["added_data_files"]) == (50, 150, 1)
    # Who wrote it, from the summary; other summary keys (anything a writer put there) are left out.
    assert snap["writer"] == {"engine-name": "spark", "spark.app.id": "app-20261128-0042"}
    # Delivered: the receiver validated the CloudEvent; the context is its data's `context` object.
    requests = http_recorder.wait_for(len(run.violation_ids))
    assert len(requests) == len(run.violation_ids) >= 1
    for request in requests:
        data = parse_cloudevent(request).get_data()
        assert data["context"] == ctx and "floe_context" not in data["metadata"]
        # No value of the classified column anywhere in what left.
        assert SECRET not in request.body.decode()
    assert SECRET not in json.dumps(ctx)
    assert_facet_valid(run)


# -- budget, bounds, parts --------------------------------------------------------------------------


class Stuck:
    """A provider whose source never answers (a hung event log)."""

    name = "runs"

    def __init__(self) -> None:
        self.release = threading.Event()

    def parts(self, contract: MonitoredContract, table: MonitoredTable, check_type: str) -> Mapping[str, Any]:
        self.release.wait(30)
        return {"runs": [{"run_id": "never", "status": "SUCCESS"}]}


class Broken:
    name = "upstream"

    def parts(self, contract: MonitoredContract, table: MonitoredTable, check_type: str) -> Mapping[str, Any]:
        raise RuntimeError("instance unavailable")


def test_a_slow_or_failing_part_is_left_out_with_a_note(catalog: SqlCatalog, store: MonitoringStore) -> None:
    create(catalog, "crm.customers", SCHEMA, rows(3, 0, datetime.now(UTC)))
    config = parse_config({"context": {"budget_ms": 50}}, "test")
    pipeline = CheckPipeline(IcebergSource(), store, config, clock=Clock(datetime.now(UTC) + timedelta(hours=3)))
    stuck = Stuck()
    pipeline.runner.add_context_provider(stuck)
    pipeline.runner.add_context_provider(Broken())
    c = contract()
    try:
        [run] = list(pipeline.run(F, [(c, t) for t in c.tables]))
    finally:
        stuck.release.set()
    ctx = run.violations[0].context
    assert ctx is not None and "runs" not in ctx and "upstream" not in ctx
    assert any(n.startswith("runs: not ready within the 50 ms budget") for n in ctx["notes"])
    assert any(n.startswith("upstream: unavailable (RuntimeError: instance unavailable)") for n in ctx["notes"])
    assert "history" in ctx and "pattern" in ctx  # the parts that answered stand


def test_context_off_and_size_bound(catalog: SqlCatalog, store: MonitoringStore) -> None:
    table = create(catalog, "crm.customers", SCHEMA, rows(3, 0, datetime.now(UTC)))
    for i in range(30):
        append(table, rows(1, 0, datetime.now(UTC), start=10 + i))
    c = contract()
    late = Clock(datetime.now(UTC) + timedelta(hours=3))
    off = check(store, F, c, late, parse_config({"context": {"enabled": False}}, "test"))
    assert off.result.status is CheckStatus.FAIL and off.context is None
    assert all(v.context is None for v in off.violations)
    small = check(store, F, c, late, parse_config({"context": {"max_bytes": 1500, "max_snapshots": 25}}, "test"))
    text = small.violations[0].metadata["floe_context"]
    ctx = json.loads(text)
    assert len(text.encode()) <= 1500 and ctx["truncated"] is True
    assert 0 < len(ctx["history"]["snapshots"]) < 25  # the oldest dropped first: the newest stays
    assert ctx["history"]["snapshots"][0]["snapshot_id"] == snapshot_id(table)
    assert_facet_valid(small)


def test_context_facet_schema_rejects_a_context_of_the_wrong_shape() -> None:
    bad = {
        "_producer": "https://example.com/floe",
        "_schemaURL": "https://floe.dev/schemas/lineage/1-0-0/FloeContextRunFacet.json#/$defs/FloeContextRunFacet",
        "version": 1,
        "check_type": "freshness",
        "table": "crm.customers",
        "generated_at": "2026-01-01T00:00:00Z",
        "history": {"snapshots": [{"snapshot_id": 12, "committed_at": "yesterday", "operation": "append"}]},
    }
    problems = facet_errors(bad, "floe_context")
    assert any("snapshot_id" in p for p in problems) and any("committed_at" in p for p in problems)


def test_violation_events_without_context_read_as_none() -> None:
    event = ContractViolationEvent(
        contract_name="c",
        contract_version="1",
        violation_type=F,
        severity="error",
        message="m",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        check_duration_seconds=0.0,
        metadata={"floe_context": "not json"},
    )
    assert event.context is None
