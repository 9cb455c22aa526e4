"""One bad channel never takes the others down (issue 11, acceptance 3), with real receivers on 127.0.0.1.

A channel whose secret variable is unset reports the problem at load (one ERROR line naming the channel and the
variable, the registry asset's metadata) and in every dispatch (the check step's eager attempt and each
`alert_dispatch_sensor` tick record its deliveries as failed with the reason and keep them pending); the other
channels deliver and every check runs. Once the variable is set, the held alerts are delivered. A channel with
a wrong setting (or a secret pasted where a variable's name belongs) is disabled the same way, and the pasted
value appears nowhere.

As in test_alerting_e2e.py, retries are made due by the dispatchers' clock, which the test advances tick by
tick, so nothing sleeps or polls.
"""

import functools
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import REGISTRY_JOB
from floe_monitoring_defs.defs import alerting as alerting_defs
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_defs.defs.config_checks import CHANNELS_CHECK_NAME
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.alerting_receivers import (
    HTTPRecorder,
    cloudevents_responder,
    pagerduty_responder,
    slack_responder,
)
from floe_monitoring_tests.dagster_metadata import text
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

HMAC_SECRET = "hmac-s3cr3t-value-unset-test"
SLACK_PATH = "/services/T0SECRET/B0SECRET/xoxSECRETtoken77"
ROUTING_KEY = "pd-routing-key-set-later-0123456789"
PD_VAR = "FLOE_TEST_PD_ROUTING_KEY"
PASTED = "https://hooks.slack.com/services/T0PASTED/B0PASTED/pastedTOKEN0123456789"
TICK = timedelta(seconds=1)  # > retry_max_seconds below, so every tick finds the held deliveries due

SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "amount", DecimalType(10, 2), required=True),
    NestedField(3, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)


class SteppedClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    stepped = SteppedClock()
    monkeypatch.setattr(alerting_defs, "AlertDispatcher", functools.partial(AlertDispatcher, clock=stepped))
    return stepped


@pytest.fixture
def receivers() -> Iterator[dict[str, HTTPRecorder]]:
    recs = {
        "webhook": HTTPRecorder(cloudevents_responder(HMAC_SECRET)).start(),
        "slack": HTTPRecorder(slack_responder(SLACK_PATH)).start(),
        "pagerduty": HTTPRecorder(pagerduty_responder(ROUTING_KEY)).start(),
    }
    yield recs
    for r in recs.values():
        r.stop()


def contract(name: str, table: str) -> dict[str, Any]:
    return {
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
                "name": table,
                "properties": [
                    {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
                    {
                        "name": "amount",
                        "logicalType": "number",
                        "physicalType": "DECIMAL(10,2)",
                        "required": True,
                        "quality": [{"metric": "nullValues", "mustBe": 0}],
                    },
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
        "slaProperties": [
            {"property": "freshness", "value": "PT1H", "element": "updated_at"},
            {"property": "availability", "value": "99%"},
        ],
    }


@pytest.fixture
def location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receivers: dict[str, HTTPRecorder]) -> Path:
    """Two tables (`orders` stale against PT1H, `items` fresh), their contracts, three channels."""
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    cat = make_catalog(tmp_path)
    now = datetime.now(UTC)
    for table, age in (("orders", timedelta(hours=3)), ("items", timedelta(minutes=5))):
        create(cat, f"shop.{table}", SCHEMA, {"id": ["a"], "amount": [Decimal("1.00")], "updated_at": [now - age]})
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for name in ("orders", "items"):
        (contracts / f"{name}.yaml").write_text(yaml.safe_dump(contract(name, name)))
    (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(channels_config(receivers)))
    monkeypatch.setenv("FLOE_TEST_HMAC", HMAC_SECRET)
    monkeypatch.setenv("FLOE_TEST_SLACK_URL", receivers["slack"].url_for(SLACK_PATH))
    monkeypatch.delenv(PD_VAR, raising=False)
    monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(tmp_path / "monitoring.yaml"))
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    return tmp_path


def channels_config(receivers: dict[str, HTTPRecorder], **channel_overrides: dict[str, Any]) -> dict[str, Any]:
    channels: dict[str, dict[str, Any]] = {
        "ops-webhook": {
            "type": "webhook",
            "url": receivers["webhook"].url_for("/events"),
            "secret_env": "FLOE_TEST_HMAC",
            "timeout_seconds": 2,
        },
        "team-slack": {"type": "slack", "webhook_url_env": "FLOE_TEST_SLACK_URL", "timeout_seconds": 2},
        "pagerduty": {
            "type": "pagerduty",
            "routing_key_env": PD_VAR,
            "url": receivers["pagerduty"].url_for("/v2/enqueue"),
            "timeout_seconds": 2,
        },
    }
    for name, spec in channel_overrides.items():
        channels[name] = {**channels[name], **spec}
    return {
        "alerts": {
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 0.5,
            "channels": channels,
            "routing_rules": [{"channel_name": name, "min_severity": "warning"} for name in channels],
        }
    }


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, clock: SteppedClock) -> str:
    clock.now += TICK
    sensor = defs.resolve_sensor_def("alert_dispatch_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=dict(defs.resources or {})) as ctx:
        return sensor.evaluate_tick(ctx).skip_message or ""


def run_every_checks_job(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.AssetCheckEvaluation]:
    evaluations: list[dg.AssetCheckEvaluation] = []
    repo = defs.get_repository_def()
    for name in sorted(n for n in repo.job_names if n.endswith("_checks")):
        result = defs.resolve_job_def(name).execute_in_process(instance=instance)
        assert result.success, name
        evaluations += result.get_asset_check_evaluations()
    return evaluations


def registry_checks(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    result = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def held(store: MonitoringStore, channel: str) -> list[dict[str, object]]:
    return [d for d in store.outbox.deliveries() if d["channel"] == channel and d["state"] == "pending"]


PD_REASON = f"alerts.channels.pagerduty.routing_key_env: environment variable {PD_VAR} is not set"


def test_an_unset_secret_disables_its_channel_only_and_its_alerts_are_delivered_once_it_is_set(
    location: Path,
    receivers: dict[str, HTTPRecorder],
    clock: SteppedClock,
    telemetry: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config_file = location / "monitoring.yaml"
    caplog.set_level(logging.INFO)
    defs = build_defs()
    # At load: one ERROR line naming the channel and the variable; the registry asset says it too.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"alert channel pagerduty disabled until environment variable {PD_VAR} is set: {config_file}: {PD_REASON}; "
        "its alerts are held in the outbox and retried"
    ]
    registry = {s.key: s for s in defs.resolve_all_asset_specs()}[REGISTRY_KEY]
    assert text(registry.metadata, "floe/alert_channels") == (
        f"| channel | status |\n|---|---|\n| ops-webhook | ready |\n| pagerduty | {PD_REASON} |\n| team-slack | ready |"
    )
    failures_before = telemetry.counter("floe_alert_delivery_failures", channel="pagerduty")
    store = MonitoringStore(os.environ["FLOE_MONITORING_DB_URL"])
    with dg.instance_for_test() as instance:
        # Every check runs: one evaluation per check the location defines, on both contracts.
        evaluations = run_every_checks_job(defs, instance)
        planned = {k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key != REGISTRY_KEY}
        assert {dg.AssetCheckKey(e.asset_key, e.check_name) for e in evaluations} == planned
        assert {(e.asset_key.path[-1], e.check_name) for e in evaluations} >= {
            ("orders", "freshness"),
            ("items", "freshness"),
            ("orders", "quality"),
            ("orders", "availability"),
            ("orders", "schema_drift"),
        }
        [stale] = [e for e in evaluations if e.asset_key.path[-1] == "orders" and e.check_name == "freshness"]
        assert not stale.passed
        # The other channels delivered the violation in the check step; PagerDuty got nothing and holds it.
        [violation] = store.results.violations(contract_name="orders")
        [event] = receivers["webhook"].requests
        assert event.json()["id"] == violation.id
        assert len(receivers["slack"].requests) == 1
        assert receivers["pagerduty"].requests == []
        [pending] = held(store, "pagerduty")
        assert pending["last_error"] == PD_REASON
        assert telemetry.counter("floe_alert_delivery_failures", channel="pagerduty") - failures_before == 1

        checks = registry_checks(defs, instance)
        assert checks["contracts_valid"].passed and checks["monitoring_config_valid"].passed
        channels_check = checks[CHANNELS_CHECK_NAME]
        assert not channels_check.passed and channels_check.severity == dg.AssetCheckSeverity.ERROR
        assert channels_check.description == (
            f"1 of 3 alert channels cannot deliver (their alerts are held): {config_file}: {PD_REASON}"
        )
        assert text(channels_check.metadata, "floe/channels_unavailable") == "pagerduty"

        # Every dispatch says it, and keeps the delivery: nothing is lost, nothing is sent twice elsewhere.
        for n in range(2):
            summary = tick(defs, instance, clock)
            assert summary.endswith(
                f"channels unavailable (their alerts are held and retried): pagerduty (1 held this cycle): {PD_REASON}"
            )
            assert telemetry.counter("floe_alert_delivery_failures", channel="pagerduty") - failures_before == 2 + n
        assert [len(r.requests) for r in receivers.values()] == [1, 1, 0]
        [pending] = held(store, "pagerduty")
        attempts = [a for a in store.outbox.attempts() if a["channel"] == "pagerduty"]
        assert [(a["ok"], a["status"], a["error"]) for a in attempts] == [(False, "channel_unavailable", PD_REASON)] * 3

        # The variable appears (in the process that dispatches): the next tick delivers what was held.
        monkeypatch.setenv(PD_VAR, ROUTING_KEY)
        summary = tick(defs, instance, clock)
        assert "channels unavailable" not in summary
        [page] = receivers["pagerduty"].requests
        assert page.json()["dedup_key"] == "orders:freshness" and page.json()["event_action"] == "trigger"
        assert held(store, "pagerduty") == []
        assert all(d["state"] == "delivered" for d in store.outbox.deliveries())
        tick(defs, instance, clock)  # and only once
        assert [len(r.requests) for r in receivers.values()] == [1, 1, 1]
        assert registry_checks(defs, instance)[CHANNELS_CHECK_NAME].passed
    store.dispose()
    for r in receivers.values():
        assert r.errors == []  # every request was valid for its receiver


def test_a_wrong_setting_or_a_pasted_secret_disables_that_channel_and_the_value_appears_nowhere(
    location: Path,
    receivers: dict[str, HTTPRecorder],
    clock: SteppedClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = channels_config(
        receivers,
        **{"ops-webhook": {"url": "ftp://127.0.0.1/events"}, "team-slack": {"webhook_url_env": PASTED}},
    )
    (location / "monitoring.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv(PD_VAR, ROUTING_KEY)
    caplog.set_level(logging.DEBUG)
    defs = build_defs()
    config_file = location / "monitoring.yaml"
    slack_reason = (
        "alerts.channels.team-slack.webhook_url_env: not the name of an environment variable; give the NAME of an "
        "environment variable that holds the secret, never the secret itself (the value is not shown)"
    )
    webhook_reason = "alerts.channels.ops-webhook.url: must be an http:// or https:// URL"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"alert channel {name} disabled: {config_file}: {reason}; its alerts are held in the outbox until the "
        "config is fixed and the code location reloaded"
        for name, reason in (("ops-webhook", webhook_reason), ("team-slack", slack_reason))
    ]
    texts: list[str] = []
    store = MonitoringStore(os.environ["FLOE_MONITORING_DB_URL"])
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("freshness_every_15m_checks").execute_in_process(instance=instance)
        assert result.success
        texts += [repr(r) for r in instance.all_logs(result.run_id)]
        assert len(receivers["pagerduty"].requests) == 1  # the good channel delivers
        texts.append(tick(defs, instance, clock))
        checks = registry_checks(defs, instance)
        texts += [repr(e.metadata) + (e.description or "") for e in checks.values()]
    assert not checks[CHANNELS_CHECK_NAME].passed
    assert text(checks[CHANNELS_CHECK_NAME].metadata, "floe/channels_unavailable") == "ops-webhook, team-slack"
    assert {str(d["last_error"]) for d in store.outbox.deliveries() if d["state"] == "pending"} == {
        webhook_reason,
        slack_reason,
    }
    texts += [json.dumps(d, default=str) for d in store.outbox.deliveries()]
    texts += [json.dumps(a, default=str) for a in store.outbox.attempts()]
    store.dispose()
    texts.append(repr(defs.get_repository_def().get_top_level_resources()))  # resource config shows in the UI
    texts.append(repr({s.key: s.metadata for s in defs.resolve_all_asset_specs()}))
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, caplog.text]
    blob = "\n".join(texts)
    assert slack_reason in blob  # what was said...
    assert PASTED not in blob and "pastedTOKEN0123456789" not in blob  # ...never with the pasted value
    assert receivers["webhook"].requests == [] and receivers["slack"].requests == []
