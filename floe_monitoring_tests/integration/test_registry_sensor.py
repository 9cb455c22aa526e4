"""contract_registry_sensor against a real loopback GraphQL stand-in (HTTPRecorder): what it asks the webserver,
what its tick says, and that it never loops reloads (issue 13, scope 4)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from floe_monitoring_defs.config import Settings
from floe_monitoring_defs.defs.schedules import (
    REGISTRY_SENSOR_INTERVAL_SECONDS,
    contracts_fingerprint,
    registry_sensor,
)
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, RecordedRequest, Reply
from floe_monitoring_tests.integration.test_dagster_location import contract_doc

pytestmark = pytest.mark.integration

LOCATION = "floe-monitoring"


def location_entry(_request: RecordedRequest) -> Reply:
    """What the webserver answers to a reload whose new location loaded."""
    entry = {
        "__typename": "WorkspaceLocationEntry",
        "name": LOCATION,
        "locationOrLoadError": {"__typename": "RepositoryLocation"},
    }
    return Reply.json(200, {"data": {"reloadRepositoryLocation": entry}})


@pytest.fixture
def graphql() -> Iterator[HTTPRecorder]:
    with HTTPRecorder(location_entry) as recorder:
        yield recorder


@pytest.fixture
def contracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FLOE_DAGSTER_GRAPHQL_URL", "FLOE_DAGSTER_LOCATION_NAME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    MonitoringStore(f"sqlite:///{tmp_path / 'floe.db'}").dispose()  # the store exists, with no registrations
    directory = tmp_path / "contracts"
    directory.mkdir()
    (directory / "good.yaml").write_text(yaml.safe_dump(contract_doc("good", "good")))
    return directory


def settings(contracts: Path, url: str | None) -> Settings:
    return Settings(
        contracts_dir=contracts,
        config_path=None,
        db_url=None,
        default_catalog=None,
        dagster_graphql_url=url,
        dagster_location_name=LOCATION,
    )


def tick(sensor: dg.SensorDefinition, cursor: str | None = None) -> tuple[str, str | None]:
    """One evaluation: (its skip message, the cursor it leaves)."""
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        result = sensor.evaluate_tick(context)
    return result.skip_message or "", result.cursor if result.cursor is not None else cursor


def test_interval_keeps_pickup_within_two_minutes(contracts: Path) -> None:
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, None))
    assert sensor.minimum_interval_seconds == REGISTRY_SENSOR_INTERVAL_SECONDS <= 60


def test_unchanged_contracts_ask_for_nothing(contracts: Path, graphql: HTTPRecorder) -> None:
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url_for("/g")))
    message, cursor = tick(sensor)
    assert message == "1 contracts, unchanged since load" and cursor is None
    assert graphql.requests == []


def test_added_file_reloads_the_location_once(contracts: Path, graphql: HTTPRecorder) -> None:
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url_for("/g")))
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")))
    message, cursor = tick(sensor)
    assert message == f"reloaded location {LOCATION}: 1 added (orders.yaml), 0 changed, 0 removed"
    [request] = graphql.requests
    assert request.path == "/g" and request.method == "POST"
    body = request.json()
    assert body["variables"] == {"name": LOCATION} and "reloadRepositoryLocation" in body["query"]

    # the same state again (the old location still answering): no second reload
    again, _ = tick(sensor, cursor)
    assert again.startswith(f"reload of location {LOCATION} already done for these contracts (1 added")
    assert len(graphql.requests) == 1
    # the reloaded location has the new file as loaded: nothing to do
    reloaded = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url))
    message, _ = tick(reloaded, cursor)
    assert message == "2 contracts, unchanged since load" and len(graphql.requests) == 1
    # a further change is a new state: reloaded again
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders", freshness="PT2H")))
    message, _ = tick(sensor, cursor)
    assert message == f"reloaded location {LOCATION}: 1 added (orders.yaml), 0 changed, 0 removed"
    assert len(graphql.requests) == 2


def test_changed_and_removed_files_are_named(contracts: Path, graphql: HTTPRecorder) -> None:
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")))
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url))
    (contracts / "orders.yaml").unlink()
    (contracts / "good.yaml").write_text(yaml.safe_dump(contract_doc("good", "good", freshness="PT3H")))
    message, _ = tick(sensor)
    assert message == f"reloaded location {LOCATION}: 0 added, 1 changed (good.yaml), 1 removed (orders.yaml)"


def test_failed_reload_is_retried_next_tick(contracts: Path, graphql: HTTPRecorder) -> None:
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url_for("/g")))
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")))
    graphql.fail(503, count=1)
    message, cursor = tick(sensor)
    assert message == (
        f"reload failed: {graphql.url_for('/g')} answered HTTP 503; will retry next tick "
        "(1 added (orders.yaml), 0 changed, 0 removed)"
    )
    message, _ = tick(sensor, cursor)
    assert message.startswith(f"reloaded location {LOCATION}: 1 added")
    assert len(graphql.requests) == 2


def test_a_location_that_fails_to_load_is_reported_without_its_stack(contracts: Path, graphql: HTTPRecorder) -> None:
    def load_error(_request: RecordedRequest) -> Reply:
        error = {"__typename": "PythonError", "message": "ImportError: no module x\n  File 'a.py', line 1"}
        entry = {"__typename": "WorkspaceLocationEntry", "name": LOCATION, "locationOrLoadError": error}
        return Reply.json(200, {"data": {"reloadRepositoryLocation": entry}})

    graphql.responder = load_error
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url))
    (contracts / "good.yaml").unlink()
    message, _ = tick(sensor)
    assert message == (
        f"reload failed: location {LOCATION} failed to load: ImportError: no module x; will retry next tick "
        "(0 added, 0 changed, 1 removed (good.yaml))"
    )


def test_unknown_location_and_unreachable_webserver(contracts: Path, graphql: HTTPRecorder) -> None:
    graphql.responder = lambda _r: Reply.json(
        200,
        {"data": {"reloadRepositoryLocation": {"__typename": "RepositoryLocationNotFound", "message": "no loc"}}},
    )
    url = f"http://floe:hunter2pw@127.0.0.1:{graphql.port}/graphql"
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, url))
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")))
    message, _ = tick(sensor)
    assert message.startswith(
        f"reload failed: http://***@127.0.0.1:{graphql.port}/graphql refused the reload (RepositoryLocationNotFound)"
        ": no loc; will retry"
    )
    graphql.stop()
    message, _ = tick(sensor)
    assert message.startswith(f"reload failed: http://***@127.0.0.1:{graphql.port}/graphql unreachable (")
    assert "hunter2pw" not in message


def test_without_a_graphql_url_the_change_is_reported(contracts: Path) -> None:
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, None))
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")))
    message, cursor = tick(sensor)
    assert message == (
        "contracts changed since load: 1 added (orders.yaml), 0 changed, 0 removed; "
        "FLOE_DAGSTER_GRAPHQL_URL not set, reload the code location"
    )
    assert json.loads(cursor or "")["reloaded"] is False


def test_url_and_location_name_from_the_environment(contracts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_DAGSTER_GRAPHQL_URL", " http://dagster-webserver:80/graphql ")
    monkeypatch.setenv("FLOE_DAGSTER_LOCATION_NAME", "floe")
    s = Settings.from_env()
    assert (s.dagster_graphql_url, s.dagster_location_name) == ("http://dagster-webserver:80/graphql", "floe")


def test_a_registration_in_the_store_is_a_change(contracts: Path, graphql: HTTPRecorder, tmp_path: Path) -> None:
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url))
    store = MonitoringStore(f"sqlite:///{tmp_path / 'floe.db'}")
    doc = contract_doc("third", "third")
    store.registry.register("third", "1.2.3", doc, {}, None, datetime.now(UTC))
    store.dispose()
    message, _ = tick(sensor)
    assert message == f"reloaded location {LOCATION}: 1 added (store:third), 0 changed, 0 removed"


def test_an_unreachable_store_is_not_a_removal(
    contracts: Path, graphql: HTTPRecorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MonitoringStore(f"sqlite:///{tmp_path / 'floe.db'}")
    store.registry.register("third", "1.2.3", contract_doc("third", "third"), {}, None, datetime.now(UTC))
    store.dispose()
    loaded = contracts_fingerprint(contracts)
    assert "store:third" in loaded
    sensor = registry_sensor(contracts, loaded, settings(contracts, graphql.url))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", "postgresql+psycopg2://floe:pw@127.0.0.1:1/floe")
    message, _ = tick(sensor)
    assert message == "2 contracts, unchanged since load" and graphql.requests == []


def test_a_cursor_of_the_previous_version_is_tolerated(contracts: Path, graphql: HTTPRecorder) -> None:
    sensor = registry_sensor(contracts, contracts_fingerprint(contracts), settings(contracts, graphql.url))
    (contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")))
    old = json.dumps({"added": ["x"], "removed": [], "changed": []})
    message, _ = tick(sensor, old)
    assert message.startswith(f"reloaded location {LOCATION}: 1 added (orders.yaml)")
