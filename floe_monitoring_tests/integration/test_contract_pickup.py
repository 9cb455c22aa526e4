"""Acceptance 3 of issue 13: with `dagster dev` running (webserver + daemon + the code server it starts), a contract
file dropped into FLOE_CONTRACTS_DIR is picked up without a manual step: `contract_registry_sensor` asks the
webserver to reload the location over GraphQL, the new asset and its checks appear, and the checks job runs them;
a removed file's asset disappears after the next reload.

The test waits on conditions read from the GraphQL API (never on wall-clock assertions); a generous safety timeout
only turns a hang into a failure. Durations are printed for information.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from floe_monitoring_tests.integration.iceberg_helpers import catalog_env, create, make_catalog
from floe_monitoring_tests.integration.test_dagster_location import SCHEMA, contract_doc

pytestmark = pytest.mark.integration

LOCATION = "floe_monitoring_defs"  # `dagster dev -m floe_monitoring_defs` names the location after the module
CHECKS_JOB = "freshness_every_1m_checks"
# Only against a hang: pickup itself takes one or two sensor ticks (60 s) plus a schedule tick (1 min).
SAFETY_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rows(now: datetime, ids: list[str]) -> dict[str, list[Any]]:
    return {
        "id": ids,
        "amount": [Decimal("1.00")] * len(ids),
        "email": [f"{i}@example.com" for i in ids],
        "updated_at": [now - timedelta(minutes=5)] * len(ids),
    }


@dataclass
class DagsterDev:
    url: str
    contracts: Path
    log: Path

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(self.url, json={"query": text, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def wait_for(self, what: str, probe: Callable[[], Any]) -> Any:
        """Poll `probe` until it returns something truthy; fail after the safety timeout with the server's log."""
        start = time.monotonic()
        while time.monotonic() - start < SAFETY_TIMEOUT_SECONDS:
            try:
                value = probe()
            except httpx.HTTPError:
                value = None  # the webserver is still starting (or reloading)
            if value:
                print(f"{what}: after {time.monotonic() - start:.0f} s")
                return value
            time.sleep(POLL_SECONDS)
        tail = self.log.read_text(errors="replace")[-4000:]
        pytest.fail(f"{what}: not seen within the safety timeout of {SAFETY_TIMEOUT_SECONDS:g} s\n{tail}")


ASSET = """
query Asset($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name } } } }
  }
}
"""

EXECUTIONS = """
query Executions($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 5) {
    status
    run { pipelineName status }
  }
}
"""

TICKS = """
query Ticks($location: String!) {
  sensorOrError(sensorSelector: {repositoryLocationName: $location, repositoryName: "__repository__",
                                 sensorName: "contract_registry_sensor"}) {
    ... on Sensor { sensorState { ticks(limit: 20) { status skipReason } } }
  }
}
"""


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[DagsterDev]:
    """`dagster dev` in a controlled environment: tmp DAGSTER_HOME, tmp cwd without `.env`, contracts and a real
    Iceberg SqlCatalog warehouse in tmp, a 1-minute freshness cadence, the webserver on a free loopback port."""
    now = datetime.now(UTC)
    cat = make_catalog(tmp_path)
    create(cat, "shop.good", SCHEMA, _rows(now, ["a", "b"]))
    create(cat, "shop.orders", SCHEMA, _rows(now, ["o1"]))
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "good.yaml").write_text(yaml.safe_dump(contract_doc("good", "good")))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "check_intervals": {
                    "freshness_minutes": 1,
                    "schema_drift_minutes": 1440,
                    "quality_minutes": 1440,
                    "availability_minutes": 1440,
                }
            }
        )
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DAGSTER_HOME": str(home),
        "FLOE_CONTRACTS_DIR": str(contracts),
        "FLOE_MONITORING_CONFIG": str(config),
        "FLOE_MONITORING_DB_URL": f"sqlite:///{tmp_path / 'floe.db'}",
        "FLOE_DAGSTER_GRAPHQL_URL": url,
        **catalog_env(tmp_path),
    }
    log = tmp_path / "dagster_dev.log"
    dagster = str(Path(sys.executable).parent / "dagster")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [dagster, "dev", "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the webserver, daemon and code server end with it
        )
        try:
            yield DagsterDev(url=url, contracts=contracts, log=log)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def test_dropped_contract_is_checked_and_removed_one_stops(dagster_dev: DagsterDev) -> None:
    dev = dagster_dev
    orders = ["shop", "orders"]

    def asset_type() -> str | None:
        data = dev.query(ASSET, {"path": orders})
        return str(data["assetNodeOrError"]["__typename"])

    def good_loaded() -> bool:
        return dev.query(ASSET, {"path": ["shop", "good"]})["assetNodeOrError"]["__typename"] == "AssetNode"

    dev.wait_for("location loaded with contract good", good_loaded)
    assert asset_type() == "AssetNotFoundError"

    (dev.contracts / "orders.yaml").write_text(yaml.safe_dump(contract_doc("orders", "orders")))

    def orders_checks() -> list[str]:
        node = dev.query(ASSET, {"path": orders})["assetNodeOrError"]
        if node["__typename"] != "AssetNode":
            return []
        return sorted(c["name"] for c in node["assetChecksOrError"]["checks"])

    checks = dev.wait_for("orders asset and its checks after the sensor's reload", orders_checks)
    assert "freshness" in checks and "schema_drift" in checks

    def reload_tick() -> list[str]:
        ticks = dev.query(TICKS, {"location": LOCATION})["sensorOrError"]["sensorState"]["ticks"]
        return [t["skipReason"] for t in ticks if (t["skipReason"] or "").startswith("reloaded location")]

    [message] = dev.wait_for("the sensor tick that reloaded", reload_tick)
    assert message == f"reloaded location {LOCATION}: 1 added (orders.yaml), 0 changed, 0 removed"

    def executed() -> list[dict[str, Any]]:
        runs = dev.query(EXECUTIONS, {"path": orders, "check": "freshness"})["assetCheckExecutions"]
        return [e for e in runs if e["status"] == "SUCCEEDED" and e["run"]["pipelineName"] == CHECKS_JOB]

    [execution, *_] = dev.wait_for(f"a passed freshness check of orders in a run of {CHECKS_JOB}", executed)
    assert execution["run"]["status"] in ("STARTED", "SUCCESS")

    (dev.contracts / "orders.yaml").unlink()
    dev.wait_for("orders asset gone after the next reload", lambda: asset_type() == "AssetNotFoundError")
    assert good_loaded()  # the other contract stays monitored
    removed = dev.wait_for(
        "the tick that reloaded for the removal",
        lambda: [m for m in reload_tick() if m.endswith("0 added, 0 changed, 1 removed (orders.yaml)")],
    )
    assert len(removed) == 1  # one reload for the removal: no reload loop
    assert len(reload_tick()) == 2
