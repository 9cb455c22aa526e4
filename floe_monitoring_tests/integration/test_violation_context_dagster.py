"""Root-cause context, its Dagster parts (issue 16 acceptance 2): the runs that wrote the asset, the upstream status.

One real Dagster instance (`instance_for_test`), real Iceberg tables (pyiceberg SqlCatalog) and the real floe store
(SQLite in tmp). A second, small "code location" (plain `@dg.asset`s materialized into the same instance with
`dg.materialize`) writes the monitored table `shop.orders` (a loader appending late data: still stale) and observes
it (an audit asset logging an `AssetObservation`). floe's freshness job runs through Dagster
(`execute_in_process`) before and after; `shop.orders` declares `shop.raw_orders` upstream
(`customProperties` `floe.upstream`), which floe finds stale too. The second run's violation on `shop.orders` must
name the loader's and the auditor's runs (and not floe's own observing run) and the upstream's failing freshness,
in the stored violation and in the check's `floe/context` metadata.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
import yaml

from floe_monitoring_defs.contracts import parse_document
from floe_monitoring_defs.contracts.errors import ContractLoadError
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs.context import DagsterRunsProvider
from floe_monitoring_defs.models import ViolationType
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import create
from floe_monitoring_tests.integration.test_dagster_native_observations import (
    FRESHNESS_JOB,
    SCHEMA,
    Warehouse,
    contract_doc,
    rows,
    warehouse,
)
from floe_monitoring_tests.lineage_schemas import facet_errors

pytestmark = pytest.mark.integration
__all__ = ["warehouse"]  # the fixture, imported for pytest

STALE = [{"property": "latency", "value": 1, "unit": "h", "element": "updated_at"}]
FACET_URL = "https://floe.dev/schemas/lineage/1-0-0/FloeContextRunFacet.json#/$defs/FloeContextRunFacet"


def orders_contract(upstream: Any) -> dict[str, Any]:
    doc = contract_doc("orders", "orders", STALE)
    doc["schema"][0]["customProperties"] = [{"property": "floe.upstream", "value": upstream}]
    return doc


def other_location(warehouse: Warehouse, old: datetime) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """Another team's code: a loader that writes `shop.orders` (late data: the table stays stale) and an audit
    asset that observes it."""

    @dg.asset(key=["shop", "orders"])
    def load_orders() -> None:
        table = warehouse.catalog.load_table("shop.orders")
        table.append(pa.table(rows([old], "late"), schema=table.schema().as_arrow()))

    @dg.asset(key=["audit", "orders_audit"])
    def audit_orders(context: dg.AssetExecutionContext) -> None:
        context.log_event(dg.AssetObservation(asset_key=["shop", "orders"], metadata={"audited_rows": 2}))

    return load_orders, audit_orders


def test_violation_names_the_runs_that_wrote_the_asset_and_the_failing_upstream(warehouse: Warehouse) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    warehouse.add("raw_orders", "raw_orders", STALE, rows([old]))  # upstream, stale: its freshness fails
    create(warehouse.catalog, "shop.orders", SCHEMA, rows([old]))
    (warehouse.contracts / "orders.yaml").write_text(yaml.safe_dump(orders_contract(["shop.raw_orders"])))
    defs = build_defs()
    job = defs.resolve_job_def(FRESHNESS_JOB)
    store = MonitoringStore(f"sqlite:///{warehouse.root / 'floe.db'}")
    try:
        with dg.instance_for_test() as instance:
            first = job.execute_in_process(instance=instance)  # floe observes both tables; raw_orders fails
            assert first.success
            load_orders, audit_orders = other_location(warehouse, old)
            loaded = dg.materialize([load_orders], instance=instance)
            audited = dg.materialize([audit_orders], instance=instance)
            assert loaded.success and audited.success
            second = job.execute_in_process(instance=instance)
            assert second.success
            [evaluation] = [e for e in second.get_asset_check_evaluations() if e.asset_key.path == ["shop", "orders"]]

        [run, *_] = [r for r in store.results.check_results(contract_name="orders", check_type=ViolationType.FRESHNESS)]
        assert run.violation is not None
        stored = [v.event for v in store.results.violations(contract_name="orders")]
    finally:
        store.dispose()

    newest = max(stored, key=lambda e: e.timestamp)
    ctx = newest.context
    assert ctx is not None
    # Newest first; one entry a run; floe's own observing run (the first freshness run) is not listed.
    assert [(r["run_id"], r["status"], r["event"]) for r in ctx["runs"]] == [
        (audited.run_id, "SUCCESS", "observation"),
        (loaded.run_id, "SUCCESS", "materialization"),
    ]
    assert first.run_id not in json.dumps(ctx)
    materialized = ctx["runs"][1]
    assert materialized["job_name"] == "__ephemeral_asset_job__" and materialized["code_location"] is None
    assert materialized["started_at"] <= materialized["time"] <= materialized["ended_at"]
    # The upstream's latest floe status: its freshness check failed.
    [up] = ctx["upstream"]
    assert (up["asset"], up["check"], up["status"]) == ("shop.raw_orders", "freshness", "fail")
    assert up["severity"] is not None and up["time"] is not None
    assert "notes" not in ctx  # every part answered within the budget
    assert facet_errors({**ctx, "_producer": "https://example.com/floe", "_schemaURL": FACET_URL}, "ctx") == []

    # The same in the check's Dagster metadata.
    md = evaluation.metadata["floe/context"]
    assert isinstance(md, dg.MarkdownMetadataValue)
    text = md.value
    assert f"Recent runs writing the table: {audited.run_id[:8]}" in text
    assert "Upstream: shop.raw_orders freshness fail" in text
    shown = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert shown["runs"] == ctx["runs"] and shown["upstream"] == ctx["upstream"]


def test_an_upstream_floe_never_checked_reads_unknown(warehouse: Warehouse) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    create(warehouse.catalog, "shop.orders", SCHEMA, rows([old]))
    (warehouse.contracts / "orders.yaml").write_text(yaml.safe_dump(orders_contract("shop.elsewhere, shop.other")))
    with dg.instance_for_test() as instance:
        result = build_defs().resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
        assert result.success
        [evaluation] = result.get_asset_check_evaluations()
    md = evaluation.metadata["floe/context"]
    assert isinstance(md, dg.MarkdownMetadataValue)
    ctx = json.loads(md.value.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert ctx["runs"] == []  # only floe has touched the asset (and this run's observation comes after the check)
    assert [(u["asset"], u["status"]) for u in ctx["upstream"]] == [
        ("shop.elsewhere", "unknown"),
        ("shop.other", "unknown"),
    ]


@pytest.mark.parametrize("bad", [["orders"], "shop.", [1], {"t": "shop.x"}])
def test_floe_upstream_must_name_tables(bad: Any) -> None:
    with pytest.raises(ContractLoadError, match=r"schema\[0\]\.customProperties\.floe\.upstream"):
        parse_document(orders_contract(bad), "orders.yaml")


def test_floe_upstream_of_the_contract_applies_to_each_table() -> None:
    doc = contract_doc("orders", "orders", STALE)
    doc["customProperties"].append({"property": "floe.upstream", "value": ["shop.raw_orders", "shop.raw_orders"]})
    [table] = parse_document(doc, "orders.yaml").tables
    assert table.upstream == ("shop.raw_orders",)
    assert parse_document(contract_doc("orders", "orders", STALE), "orders.yaml").tables[0].upstream == ()


def test_floe_observations_are_read_past_not_listed() -> None:
    """A floe observation in a run floe's jobs did not launch (a check executed by hand from the UI: no floe run
    tag) is still floe's: left out by its `floe/table` metadata, and read past, page after page, to the runs
    before it."""
    key = dg.AssetKey(["shop", "orders"])

    @dg.asset(key=["team", "auditor"])
    def auditor(context: dg.AssetExecutionContext) -> None:
        context.log_event(dg.AssetObservation(asset_key=key, metadata={"audited_rows": 2}))

    @dg.asset(key=["team", "floe_by_hand"])
    def floe_by_hand(context: dg.AssetExecutionContext) -> None:
        for i in range(12):  # more than two pages of `limit` 5 (max_runs 1)
            context.log_event(dg.AssetObservation(asset_key=key, metadata={"floe/table": "shop.orders", "n": i}))

    with dg.instance_for_test() as instance:
        audited = dg.materialize([auditor], instance=instance)
        assert audited.success and dg.materialize([floe_by_hand], instance=instance).success
        provider = DagsterRunsProvider(instance, None, 1, asset_key=lambda t: key)
        assert [(r["run_id"], r["event"]) for r in provider.runs(key)] == [(audited.run_id, "observation")]
        assert DagsterRunsProvider(instance, None, 0, asset_key=lambda t: key).parts(*_any_target()) == {}


def _any_target() -> tuple[Any, Any, str]:
    contract = parse_document(contract_doc("orders", "orders", STALE), "orders.yaml")
    return contract, contract.tables[0], "freshness"
