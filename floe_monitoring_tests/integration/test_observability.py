"""Metrics and spans of real checks runs: the Prometheus exposition parsed with prometheus_client's
own parser, one span per check, and the W3C trace context carried to an alert receiver.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import yaml
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, free_port
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "amount", DecimalType(10, 2), required=True),
    NestedField(3, "email", StringType(), required=False),
    NestedField(4, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)
FAMILIES = {
    "floe_contract_violations": "counter",
    "floe_contract_freshness_seconds": "gauge",
    "floe_contract_availability_ratio": "gauge",
    "floe_contract_quality_score": "gauge",
    "floe_contract_check_duration_seconds": "histogram",
    "floe_alert_delivery_failures": "counter",
}
JOBS = ("freshness_every_15m_checks", "quality_every_360m_checks", "availability_every_5m_checks")


@pytest.fixture
def webhook() -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as rec:
        yield rec


@pytest.fixture
def location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: HTTPRecorder) -> Path:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    cat = make_catalog(tmp_path)
    now = datetime.now(UTC)
    create(
        cat,
        "obs.stale_t",
        SCHEMA,
        {
            "id": [str(i) for i in range(10)],
            "amount": [Decimal("1.00")] * 10,
            "email": [None] * 5 + ["x@example.com"] * 5,  # 50 % null: rule fails
            "updated_at": [now - timedelta(hours=3)] * 10,
        },
    )
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": "urn:obs",
        "name": "obs_stale",
        "version": "3.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "obs"}
        ],
        "schema": [
            {
                "name": "stale_t",
                "properties": [
                    {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
                    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(10,2)", "required": True},
                    {
                        "name": "email",
                        "logicalType": "string",
                        "classification": "pii",
                        "quality": [{"metric": "nullValues", "unit": "percent", "mustBeLessThan": 5}],
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
    (contracts / "obs.yaml").write_text(yaml.safe_dump(doc))
    config = {
        "custom_metrics": [
            {
                "name": "obs_rows_checked",
                "description": "rows a quality run read",
                "labels": ["contract", "table"],
                "source": {"check_type": "quality", "evidence": "rows_checked"},
            },
            {"name": "obs_email_null_pct", "unit": "1", "source": {"quality_rule": "stale_t.email.nullValues"}},
        ],
        "alerts": {
            "retry_base_seconds": 60,
            "channels": {
                "hook": {"type": "webhook", "url": webhook.url_for("/e"), "timeout_seconds": 1},
                "down": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/e", "timeout_seconds": 1},
            },
            "routing_rules": [
                {"channel_name": "hook", "min_severity": "warning"},
                {"channel_name": "down", "min_severity": "warning"},
            ],
        },
    }
    (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(tmp_path / "monitoring.yaml"))
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    return tmp_path


def scrape(registry: Any) -> dict[str, Any]:
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        thread.join(timeout=5)
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_exposition_matches_the_run(location: Path, telemetry: Any) -> None:
    defs = build_defs()
    evals: dict[str, dg.AssetCheckEvaluation] = {}
    with dg.instance_for_test() as instance:
        for job in JOBS:
            result = defs.resolve_job_def(job).execute_in_process(instance=instance)
            evals.update({e.check_name: e for e in result.get_asset_check_evaluations()})
    families = scrape(telemetry.registry)
    for name, kind in FAMILIES.items():
        assert families[name].type == kind, name

    def samples(name: str, suffix: str = "") -> list[Any]:
        return [s for s in families[name].samples if s.name == name + suffix and s.labels.get("contract") != "x"]

    violations = {
        (s.labels["type"], s.labels["severity"]): s.value
        for s in samples("floe_contract_violations", "_total")
        if s.labels["contract"] == "obs_stale"
    }
    assert violations[("freshness", "error")] == 1
    assert violations[("quality", "error")] >= 1
    [age] = [s for s in samples("floe_contract_freshness_seconds") if s.labels["contract"] == "obs_stale"]
    assert age.value == pytest.approx(evals["freshness"].metadata["age_seconds"].value, abs=1e-3)  # rounded to ms
    [ratio] = [s for s in samples("floe_contract_availability_ratio") if s.labels["contract"] == "obs_stale"]
    assert ratio.value == 1.0
    [score] = [s for s in samples("floe_contract_quality_score") if s.labels["contract"] == "obs_stale"]
    assert score.value == pytest.approx(evals["quality"].metadata["quality_score"].value)
    counts = {
        s.labels["check_type"]: s.value
        for s in samples("floe_contract_check_duration_seconds", "_count")
        if s.labels["contract"] == "obs_stale"
    }
    assert counts == {"freshness": 1, "quality": 1, "availability": 1}
    buckets = {s.labels["le"] for s in samples("floe_contract_check_duration_seconds", "_bucket")}
    assert "0.005" in buckets and "300.0" in buckets  # seconds, not milliseconds
    failures = [s for s in families["floe_alert_delivery_failures"].samples if s.labels.get("channel") == "down"]
    assert failures and failures[0].value >= 1


def test_one_span_per_check_and_traceparent_reaches_the_receiver(
    location: Path, telemetry: Any, webhook: HTTPRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    lineage = HTTPRecorder().start()
    monkeypatch.setenv("OPENLINEAGE_URL", lineage.url)
    defs = build_defs()
    telemetry.spans.clear()
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("freshness_every_15m_checks").execute_in_process(instance=instance).success
    checks = [s for s in telemetry.spans.get_finished_spans() if s.name.startswith("floe.check.")]
    [span] = checks
    attrs = dict(span.attributes or {})
    assert attrs["floe.contract.name"] == "obs_stale" and attrs["floe.contract.version"] == "3.0.0"
    assert attrs["floe.check.type"] == "freshness" and attrs["floe.check.status"] == "fail"
    assert attrs["floe.violation.severity"] == "error" and attrs["floe.violation.type"] == "freshness"
    assert isinstance(attrs["floe.check.duration_ms"], int)
    [req] = webhook.wait_for(1)
    version, trace_id, _span_id, flags = req.headers["traceparent"].split("-")
    assert version == "00" and int(trace_id, 16) == span.context.trace_id and int(flags, 16) & 1
    assert req.json()["data"]["metadata"]["traceparent"].split("-")[1] == trace_id
    [ol] = lineage.wait_for(1)
    lineage.stop()
    event = ol.json()
    assert ol.path == "/api/v1/lineage" and event["eventType"] == "FAIL"
    assert event["run"]["facets"]["contractViolation"]["contractName"] == "obs_stale"
    assert event["run"]["facets"]["floe_trace"]["traceparent"].split("-")[1] == trace_id


def test_custom_metrics_are_emitted_on_every_run(location: Path, telemetry: Any) -> None:
    defs = build_defs()
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("quality_every_360m_checks").execute_in_process(instance=instance).success
    families = scrape(telemetry.registry)
    [rows] = families["obs_rows_checked"].samples
    assert rows.value == 10 and rows.labels["table"] == "obs.stale_t" and rows.labels["contract"] == "obs_stale"
    [pct] = [s for s in families["obs_email_null_pct"].samples]
    assert pct.value == 50.0 and set(pct.labels) >= {"contract"} and "table" not in pct.labels
