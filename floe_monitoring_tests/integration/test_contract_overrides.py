"""Per-contract overrides everywhere (issue 16 scope 2, FR-045; acceptance 3), through the code location.

Two contracts on real Iceberg tables, one store (SQLite and PostgreSQL), real CloudEvents receivers on
127.0.0.1. `orders` follows the global config: freshness every 15 min, the spec's severity bands, the global
rule to `global-hook`. `payments` overrides all of it in `customProperties` `floe.monitoring`: freshness every
5 min (its own schedule and job, and the SLA expectations count with it), `info_pct` 40 / `warning_pct` 60 (its
table at 70 % of its SLA grades WARNING; under the global bands it passes), and its alerts replace the global
rules with one to `pager`, a channel the global rules never use. The deliveries follow: eagerly from the check
step, from `alert_dispatch_sensor`, and from `floe alerts dispatch` (which loads no contract at all: the
entry carries its settings). `floe contracts list` shows what differs and where it came from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType, TimestamptzType

from floe_monitoring_defs.checks.plan import plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.config import load_config
from floe_monitoring_defs.contracts.loader import load_contracts
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import checks as checks_defs
from floe_monitoring_defs.models import ViolationSeverity
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, cloudevents_responder
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "updated_at", TimestamptzType(), required=True),
)

PAYMENTS_OVERRIDES: dict[str, Any] = {
    "check_intervals": {"freshness_minutes": 5},
    "severity_thresholds": {"info_pct": 40, "warning_pct": 60},
    "alerts": {
        "routing": "replace",
        "routing_rules": [{"channel_name": "pager", "min_severity": "warning"}],
        "dedup_window_minutes": 10,
        "rate_limit_per_contract": 3,
    },
}


def contract(name: str, sla: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "schema": [
            {
                "name": name,
                "properties": [
                    {"name": "id", "logicalType": "string", "required": True},
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
        "slaProperties": [{"property": "freshness", "value": sla, "element": "updated_at"}],
    }
    if overrides:
        doc["customProperties"] = [{"property": "floe.monitoring", "value": overrides}]
    return doc


@pytest.fixture
def receivers() -> Iterator[dict[str, HTTPRecorder]]:
    recs = {name: HTTPRecorder(cloudevents_responder()).start() for name in ("global-hook", "pager")}
    yield recs
    for r in recs.values():
        r.stop()


@pytest.fixture
def location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receivers: dict[str, HTTPRecorder], store_url: str
) -> Path:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    cat = make_catalog(tmp_path)
    now = datetime.now(UTC)
    create(cat, "shop.orders", SCHEMA, {"id": ["a"], "updated_at": [now - timedelta(hours=3)]})  # 300 % of PT1H
    create(cat, "shop.payments", SCHEMA, {"id": ["a"], "updated_at": [now - timedelta(hours=7)]})  # 70 % of PT10H
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract("orders", "PT1H")))
    (contracts / "payments.yaml").write_text(yaml.safe_dump(contract("payments", "PT10H", PAYMENTS_OVERRIDES)))
    config = {
        "alerts": {
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 0.5,
            "channels": {
                name: {"type": "webhook", "url": rec.url_for(f"/{name}"), "timeout_seconds": 2}
                for name, rec in receivers.items()
            },
            "routing_rules": [{"channel_name": "global-hook", "min_severity": "warning"}],
        },
    }
    (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(tmp_path / "monitoring.yaml"))
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", store_url)
    return tmp_path


def received(recorder: HTTPRecorder) -> list[dict[str, Any]]:
    return [r.json() for r in recorder.requests if r.status == 202]


def run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str) -> None:
    assert defs.resolve_job_def(job).execute_in_process(instance=instance).success


def test_schedule_severity_and_eager_deliveries_follow_the_override(
    location: Path, receivers: dict[str, HTTPRecorder]
) -> None:
    defs = build_defs()
    # Its own interval: its own job and schedule (checks of one type and cadence run together).
    jobs = {j.name: j for j in defs.resolve_all_job_defs()}
    assert {"freshness_every_5m_checks", "freshness_every_15m_checks"} <= set(jobs)
    assert defs.resolve_schedule_def("freshness_every_5m_schedule").cron_schedule == "*/5 * * * *"
    with dg.instance_for_test() as instance:
        run(defs, instance, "freshness_every_15m_checks")
        run(defs, instance, "freshness_every_5m_checks")
    store = MonitoringStore(os.environ["FLOE_MONITORING_DB_URL"])
    [orders] = store.results.violations(contract_name="orders")
    [payments] = store.results.violations(contract_name="payments")
    assert orders.event.severity is ViolationSeverity.ERROR  # 300 % of its SLA
    assert payments.event.severity is ViolationSeverity.WARNING  # 70 % >= its own warning_pct 60 (global: pass)
    # Delivered from the check steps (no sensor tick ran), each to its own routes only.
    assert [b["id"] for b in received(receivers["global-hook"])] == [orders.id]
    assert [b["id"] for b in received(receivers["pager"])] == [payments.id]
    [entry] = store.outbox.entries(contract_name="payments")
    assert entry.settings is not None and entry.settings["dedup_window_minutes"] == 10
    rules = [{"channel_name": "pager", "min_severity": "warning", "contract_filter": None}]
    assert entry.settings["routing_rules"] == rules
    assert store.outbox.entries(contract_name="orders")[0].settings is None  # the global config decides it
    store.dispose()


def test_sla_expectations_follow_the_contracts_interval(location: Path) -> None:
    config = load_config(location / "monitoring.yaml")
    plan = plan_checks(load_contracts([location / "contracts"]), config, check_kinds())
    got = plan.expectations(default_target_pct=99.0)
    assert got[("payments", "freshness")].interval_minutes == 5
    assert got[("orders", "freshness")].interval_minutes == 15


def test_sensor_routes_with_the_entrys_settings(
    location: Path, receivers: dict[str, HTTPRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The eager attempt fails (as when the step dies after recording): the sensor decides what it wrote."""

    def broken(*_: object, **__: object) -> Any:
        raise RuntimeError("eager dispatch down for the test")

    monkeypatch.setattr(checks_defs, "dispatcher", broken)
    defs = build_defs()
    with dg.instance_for_test() as instance:
        run(defs, instance, "freshness_every_15m_checks")
        run(defs, instance, "freshness_every_5m_checks")
        assert received(receivers["pager"]) == [] and received(receivers["global-hook"]) == []
        sensor = defs.resolve_sensor_def("alert_dispatch_sensor")
        with dg.build_sensor_context(instance=instance, definitions=defs, resources=dict(defs.resources or {})) as ctx:
            summary = sensor.evaluate_tick(ctx).skip_message or ""
    assert "routed 2" in summary
    assert [b["data"]["contractName"] for b in received(receivers["pager"])] == ["payments"]
    assert [b["data"]["contractName"] for b in received(receivers["global-hook"])] == ["orders"]


def test_dispatch_cli_without_contracts_uses_the_entrys_settings(
    location: Path, receivers: dict[str, HTTPRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`floe alerts dispatch` reads no contract (here: its contracts directory is gone)."""
    monkeypatch.setattr(checks_defs, "dispatcher", lambda *_a, **_k: (_ for _ in ()).throw(RuntimeError("down")))
    defs = build_defs()
    with dg.instance_for_test() as instance:
        run(defs, instance, "freshness_every_5m_checks")
    env = {"FLOE_CONTRACTS_DIR": str(location / "nowhere")}
    res = CliRunner().invoke(cli, ["alerts", "dispatch", "--once"], env=env, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert [b["data"]["contractName"] for b in received(receivers["pager"])] == ["payments"]
    assert received(receivers["global-hook"]) == []


def test_contracts_list_shows_effective_values_and_their_sources(location: Path) -> None:
    res = CliRunner().invoke(cli, ["contracts", "list", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    by_name = {c["name"]: c for c in doc["contracts"]}
    assert by_name["orders"]["overrides"] == [] and doc["errors"] == []
    got = {o["key"]: o for o in by_name["payments"]["overrides"]}
    source = f"contract {location / 'contracts' / 'payments.yaml'}: customProperties.floe.monitoring"
    assert got["check_intervals.freshness_minutes"] == {
        "key": "check_intervals.freshness_minutes",
        "value": 5,
        "source": source,
        "global_value": 15,
        "global_source": "default",
    }
    assert got["alerts.routing_rules"]["global_source"] == f"config {location / 'monitoring.yaml'}"
    assert [r["channel_name"] for r in got["alerts.routing_rules"]["value"]] == ["pager"]
    assert set(got) == {
        "check_intervals.freshness_minutes",
        "severity_thresholds.info_pct",
        "severity_thresholds.warning_pct",
        "alerts.routing_rules",
        "alerts.dedup_window_minutes",
        "alerts.rate_limit_per_contract",
    }
    table = CliRunner().invoke(cli, ["contracts", "list"], catch_exceptions=False).output
    assert "payments: settings that differ from the global config" in table
    assert "alerts.routing_rules = [pager>=warning]" in table and "global [global-hook>=warning] from config" in table


def test_a_route_to_an_undefined_channel_refuses_that_contract_only(location: Path) -> None:
    bad = dict(PAYMENTS_OVERRIDES, alerts={"routing_rules": [{"channel_name": "nope", "min_severity": "error"}]})
    (location / "contracts" / "payments.yaml").write_text(yaml.safe_dump(contract("payments", "PT10H", bad)))
    defs = build_defs()
    assert "freshness_every_5m_checks" not in {j.name for j in defs.resolve_all_job_defs()}  # refused
    res = CliRunner().invoke(cli, ["contracts", "list", "--format", "json"], catch_exceptions=False)
    doc = json.loads(res.output)
    assert [c["name"] for c in doc["contracts"]] == ["orders"]
    [error] = doc["errors"]
    assert "payments.yaml" in error and "alerts.routing_rules[0].channel_name" in error and "'nope'" in error
