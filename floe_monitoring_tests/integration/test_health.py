"""`floe health` (FR-005, issue 13 acceptance 2) on a real Iceberg SqlCatalog warehouse, a contract file and a
SQLite store holding results written through the check pipeline with an injected clock.

Time is injected everywhere: the pipeline records checks at NOW, and health is asked "as of" a chosen time
(`check_health(now=...)`, the CLI's hidden `--as-of`), so the wall clock never decides a verdict.
"""

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, IntegerType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.alerting.delivery import CircuitBreaker
from floe_monitoring_defs.checks.plan import plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.config import MonitoringConfig, Settings
from floe_monitoring_defs.contracts.registry import load_all
from floe_monitoring_defs.health import check_health
from floe_monitoring_defs.models import ViolationType
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PASSWORD = "h34lth-S3cret-pw"


def _contract_doc() -> dict[str, Any]:
    return {
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
                "namespace": "shop",
                # ODCS requires it; the pyiceberg config of the catalog (the environment) takes precedence
                "catalogUrl": "sqlite:///unused.db",
            }
        ],
        "schema": [
            {
                "name": "orders",
                "properties": [
                    {"name": "order_id", "logicalType": "string", "primaryKey": True, "required": True},
                    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(10,2)", "required": True},
                    {"name": "qty", "logicalType": "integer", "physicalType": "INT"},
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
        "slaProperties": [{"property": "freshness", "value": "PT2H", "element": "updated_at"}],
    }


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on exit: nothing listens there


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A healthy deployment: warehouse + contract + store with every planned check recorded at NOW. Yields the
    environment `floe health` reads (also set in this process, for the CLI)."""
    cat = make_catalog(tmp_path)
    schema = Schema(
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "amount", DecimalType(10, 2), required=True),
        NestedField(3, "qty", IntegerType(), required=False),
        NestedField(4, "updated_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )
    rows: dict[str, list[Any]] = {
        "order_id": [f"o{i}" for i in range(5)],
        "amount": [Decimal("1.50")] * 5,
        "qty": list(range(5)),
        "updated_at": [NOW - timedelta(minutes=10 + i) for i in range(5)],
    }
    create(cat, "shop.orders", schema, rows)
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "orders.yaml").write_text(yaml.safe_dump(_contract_doc()), "utf-8")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = catalog_env(tmp_path) | {"FLOE_CONTRACTS_DIR": str(contracts), "FLOE_MONITORING_DB_URL": store_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    store = MonitoringStore(store_url)  # created and migrated here, as the code location would
    try:
        settings = Settings.from_env(env)
        plan = plan_checks(load_all(settings.contracts_dir), MonitoringConfig(), check_kinds())
        assert plan.groups and not plan.report.errors, plan.report.errors
        pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), clock=Clock(NOW))
        for group in plan.groups:
            runs = list(pipeline.run(group.check_type, group.targets))
            assert runs, group.name
    finally:
        store.dispose()
    yield env


def _interval_minutes(kind: str, env: dict[str, str]) -> int:
    settings = Settings.from_env(env)
    plan = plan_checks(load_all(settings.contracts_dir), MonitoringConfig(), check_kinds())
    [planned] = plan.contracts
    minutes = planned.intervals[kind]
    assert minutes is not None
    return minutes


def test_healthy_deployment_exits_0(deployment: dict[str, str]) -> None:
    report = check_health(now=NOW + timedelta(minutes=1), environ=deployment)
    assert report.problems == []
    assert report.status == "healthy"
    assert report.exit_code() == 0
    payload = json.loads(report.render_json())
    assert payload["store"]["state"] == "up"
    assert [c["name"] for c in payload["catalogs"]] == [CATALOG]
    assert payload["catalogs"][0]["state"] == "up"
    assert payload["contracts"]["loaded"] == 1
    kinds = {k["kind"] for k in payload["check_kinds"]}
    assert ViolationType.FRESHNESS.value in kinds
    assert all(not k["stale"] for k in payload["check_kinds"])
    assert payload["outbox"]["pending"] >= 0

    result = CliRunner().invoke(cli, ["health", "--format", "json", "--as-of", "2026-11-28T12:01:00"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "healthy"


def test_store_down_is_unhealthy_and_the_password_is_never_shown(
    deployment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://floe:{PASSWORD}@127.0.0.1:{_closed_port()}/floe"
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", url)
    env = deployment | {"FLOE_MONITORING_DB_URL": url}
    report = check_health(now=NOW + timedelta(minutes=1), environ=env)
    assert report.status == "unhealthy"
    assert report.exit_code() == 2
    assert report.exit_code("unhealthy") == 2
    assert report.store["state"] == "down"
    for fmt in ("json", "table"):
        result = CliRunner().invoke(cli, ["health", "--format", fmt, "--as-of", "2026-11-28T12:01:00"])
        assert result.exit_code == 2, result.output
        assert PASSWORD not in result.output
        assert "127.0.0.1" in result.output  # the store is named, masked
    payload = json.loads(CliRunner().invoke(cli, ["health", "--format", "json"]).output)
    assert payload["store"]["state"] == "down"
    assert "***" in payload["store"]["url"]


def test_catalog_down_is_degraded(deployment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = f"sqlite:///{tmp_path / 'no-such-dir' / 'catalog.db'}"
    key = f"PYICEBERG_CATALOG__{CATALOG.upper()}__URI"
    monkeypatch.setenv(key, gone)
    report = check_health(now=NOW + timedelta(minutes=1), environ=deployment | {key: gone}, catalog_timeout_s=5.0)
    assert [c["state"] for c in report.catalogs] == ["down"]
    assert report.status == "degraded"
    assert report.exit_code() == 1
    assert report.exit_code("unhealthy") == 0
    result = CliRunner().invoke(cli, ["health", "--as-of", "2026-11-28T12:01:00"])
    assert result.exit_code == 1, result.output
    probe = CliRunner().invoke(cli, ["health", "--fail-on", "unhealthy", "--as-of", "2026-11-28T12:01:00"])
    assert probe.exit_code == 0, probe.output


def test_stale_check_kind_is_degraded(deployment: dict[str, str]) -> None:
    minutes = _interval_minutes(ViolationType.FRESHNESS.value, deployment)
    just_fresh = check_health(now=NOW + timedelta(minutes=2 * minutes), environ=deployment)
    fresh = {k["kind"]: k for k in just_fresh.check_kinds}
    assert fresh[ViolationType.FRESHNESS.value]["stale"] is False
    later = NOW + timedelta(minutes=2 * minutes, seconds=1)
    report = check_health(now=later, environ=deployment)
    kinds = {k["kind"]: k for k in report.check_kinds}
    assert kinds[ViolationType.FRESHNESS.value]["stale"] is True
    assert kinds[ViolationType.FRESHNESS.value]["stale_contracts"] == ["orders"]
    assert report.status == "degraded"
    assert report.exit_code() == 1
    assert all(c["state"] == "up" for c in report.catalogs)


def test_channels_configured_and_unavailable_without_their_secrets(
    deployment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hmac = "hmac-H34lth-value-42"
    config = tmp_path / "monitoring.yaml"
    channels = {
        "hook": {"type": "webhook", "url": "http://127.0.0.1:9/events", "secret_env": "FLOE_TEST_HEALTH_HMAC"},
        "team-slack": {"type": "slack", "webhook_url_env": "FLOE_TEST_HEALTH_SLACK"},
    }
    config.write_text(yaml.safe_dump({"alerts": {"channels": channels}}), "utf-8")
    env = deployment | {"FLOE_MONITORING_CONFIG": str(config), "FLOE_TEST_HEALTH_HMAC": hmac}
    report = check_health(now=NOW + timedelta(minutes=1), environ=env)
    by_name = {c["name"]: c for c in report.channels}
    assert by_name["hook"]["state"] == "configured"
    assert by_name["hook"]["circuit"] == "unknown"  # no attempt stored, no breaker in this process
    assert by_name["hook"]["last_delivery"] is None
    assert by_name["team-slack"]["state"] == "unavailable"
    assert "FLOE_TEST_HEALTH_SLACK" in by_name["team-slack"]["reason"]
    assert report.status == "degraded"
    for fmt in ("json", "table"):
        monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(config))
        monkeypatch.setenv("FLOE_TEST_HEALTH_HMAC", hmac)
        result = CliRunner().invoke(cli, ["health", "--format", fmt, "--as-of", "2026-11-28T12:01:00"])
        assert result.exit_code == 1, result.output
        assert "team-slack" in result.output
        assert hmac not in result.output


def test_health_never_creates_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(tmp_path / "none"))
    result = CliRunner().invoke(cli, ["health", "--format", "json", "--as-of", "2026-11-28T12:01:00"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.output)["store"]["state"] == "down"
    assert list(home.iterdir()) == []


def test_an_open_circuit_known_in_process_degrades(
    deployment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "monitoring.yaml"
    hook = {"type": "webhook", "url": "http://127.0.0.1:9/events"}
    config.write_text(yaml.safe_dump({"alerts": {"channels": {"hook": hook}}}), "utf-8")
    env = deployment | {"FLOE_MONITORING_CONFIG": str(config)}
    at = NOW + timedelta(minutes=1)
    breaker = CircuitBreaker()
    closed = check_health(now=at, environ=env, breakers={"hook": breaker})
    assert [(c["name"], c["state"], c["circuit"]) for c in closed.channels] == [("hook", "configured", "closed")]
    assert closed.status == "healthy"
    assert breaker.record(True, at, threshold=1, cooldown=timedelta(minutes=5))  # opens it until at + 5 min
    report = check_health(now=at, environ=env, breakers={"hook": breaker})
    assert [c["circuit"] for c in report.channels] == ["open"]
    assert report.status == "degraded"
    assert report.exit_code() == 1
