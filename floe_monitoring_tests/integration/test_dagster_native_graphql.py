"""Issue 14, acceptance 3: through Dagster's GraphQL API, as the UI reads it, a failing check's description starts
with its severity, and what runs an asset's checks can be read.

The checks jobs run on a real instance against a real Iceberg warehouse; the definitions are then served by a
Dagster code server (`dagster_graphql`'s out-of-process workspace, the same GraphQL schema and resolvers the
webserver uses) and queried: `assetNodes { assetChecksOrError { checks { description jobNames
executionForLatestMaterialization { evaluation { severity description metadataEntries } } } } }`. Dagster lists on
an asset's page only the schedules of jobs that materialize or observe it (`AssetNode.targetingInstigators`), never
those of checks-only jobs, so each check names its schedule in its description and its results' metadata
(`floe/schedule`, `floe/cadence`, `floe/job`); the schedule of that name is read back and runs that job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql
from pyiceberg.schema import Schema

from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_tests.integration.iceberg_helpers import create
from floe_monitoring_tests.integration.test_dagster_native_observations import (
    FRESHNESS_JOB,
    SCHEMA,
    Warehouse,
    contract_doc,
    rows,
    warehouse,
)

pytestmark = pytest.mark.integration

__all__ = ["warehouse"]  # the fixture, imported for pytest

DRIFT_JOB = "schema_drift_every_60m_checks"
RUNS = re.compile(r"Runs (.+): schedule (\S+), job (\S+)$")
LATENCY = [{"property": "latency", "value": "PT10H", "element": "updated_at"}]

CHECKS = """
query Checks($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          description
          jobNames
          executionForLatestMaterialization {
            status
            evaluation {
              severity
              success
              description
              metadataEntries { label ... on TextMetadataEntry { text } }
            }
          }
        }
      }
    }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { schedules { name cronSchedule executionTimezone pipelineName scheduleState { status } } }
    }
  }
}
"""

OBSERVED = """
query Observed($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetObservations(limit: 5) {
        metadataEntries { label ... on TimestampMetadataEntry { timestamp } ... on TextMetadataEntry { text } }
      }
    }
  }
}
"""


@pytest.fixture
def served(warehouse: Warehouse, tmp_path: Path) -> Iterator[tuple[dg.DagsterInstance, Any]]:
    """Four contracts with a drifted, a late, an almost late and a fresh table; both checks jobs run once; then a
    code server for the same definitions and a GraphQL context on the same instance."""
    now = datetime.now(UTC)
    no_email = Schema(*[f for f in SCHEMA.fields if f.name != "email"], identifier_field_ids=[1])
    drifted = {k: v for k, v in rows([now - timedelta(hours=1)]).items() if k != "email"}
    create(warehouse.catalog, "shop.drifted", no_email, drifted)
    (warehouse.contracts / "drifted.yaml").write_text(yaml.safe_dump(contract_doc("drifted", "drifted", LATENCY)))
    warehouse.add("late", "late", LATENCY, rows([now - timedelta(hours=11)]))
    warehouse.add("warned", "warned", LATENCY, rows([now - timedelta(hours=9, minutes=30)]))
    warehouse.add("fresh", "fresh", LATENCY, rows([now - timedelta(hours=1)]))
    module = tmp_path / "floe_location.py"
    module.write_text("from floe_monitoring_defs.definitions import build_defs\n\ndefs = build_defs()\n")
    defs = build_defs()
    with dg.instance_for_test() as instance:
        for job in (DRIFT_JOB, FRESHNESS_JOB):
            assert defs.resolve_job_def(job).execute_in_process(instance=instance).success
        # The code server inherits this process's environment (the warehouse's catalog, contracts and store).
        with define_out_of_process_context(str(module), "defs", instance) as context:
            yield instance, context


def query(context: Any, text: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    result = execute_dagster_graphql(context, text, variables=dict(variables))
    assert not result.errors, result.errors
    return dict(result.data)


def entries(evaluation: Mapping[str, Any]) -> dict[str, str]:
    return {e["label"]: e["text"] for e in evaluation["metadataEntries"] if "text" in e}


def test_failing_checks_lead_with_severity_and_name_what_runs_them(served: tuple[dg.DagsterInstance, Any]) -> None:
    _instance, context = served
    keys = [{"path": ["shop", t]} for t in ("drifted", "late", "warned", "fresh")]
    data = query(context, CHECKS, {"keys": keys})
    checks = {
        (n["assetKey"]["path"][-1], c["name"]): c for n in data["assetNodes"] for c in n["assetChecksOrError"]["checks"]
    }
    [repo] = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s for s in repo["schedules"]}

    def latest(table: str, check: str) -> dict[str, Any]:
        execution = checks[(table, check)]["executionForLatestMaterialization"]
        assert execution is not None, f"{table} {check}: no execution shown"
        evaluation: dict[str, Any] = execution["evaluation"]
        return evaluation

    drift = latest("drifted", "schema_drift")
    assert not drift["success"] and drift["severity"] == "ERROR"
    assert drift["description"].startswith(
        "CRITICAL: Column 'email' declared by the contract is missing from shop.drifted"
    )
    assert entries(drift)["floe/severity"] == "critical"
    late = latest("late", "freshness")
    assert not late["success"] and late["severity"] == "ERROR"
    assert late["description"].startswith("ERROR: Data is 11h ") and "freshness SLA is PT10H" in late["description"]
    warned = latest("warned", "freshness")
    assert not warned["success"] and warned["severity"] == "WARN"
    assert (
        warned["description"].startswith("WARNING: Data is 9h ")
        and "of the PT10H freshness SLA" in warned["description"]
    )
    fresh = latest("fresh", "freshness")
    assert fresh["success"] and fresh["description"] == "PASS: within contract"

    # What runs them: each check's description names its schedule and job, the schedule of that name exists and
    # runs that job at the cadence said, and each result's metadata says the same.
    crons = {"freshness": "*/15 * * * *", "schema_drift": "0 * * * *", "quality": "0 */6 * * *"}
    assert {name for _, name in checks} == set(crons)
    for (table, name), check in checks.items():
        said = RUNS.search(check["description"])
        assert said is not None, check["description"]
        cadence, schedule_name, job = said.groups()
        schedule = schedules[schedule_name]
        assert (schedule["pipelineName"], schedule["cronSchedule"]) == (job, crons[name]), (table, name)
        assert job in check["jobNames"] and schedule["executionTimezone"] == "UTC"
        assert schedule["scheduleState"]["status"] == "RUNNING"
        if name != "quality":  # the quality job was not run here
            md = entries(latest(table, name))
            assert (md["floe/schedule"], md["floe/job"], md["floe/cadence"]) == (schedule_name, job, cadence)
    assert RUNS.search(checks[("late", "freshness")]["description"]).group(1) == "every 15 min"  # type: ignore[union-attr]


def test_the_observation_reaches_the_api_with_the_tables_last_update(served: tuple[dg.DagsterInstance, Any]) -> None:
    """What the asset page's "Recent updates" timeline reads: observations with `dagster/last_updated_timestamp`."""
    instance, context = served
    data = query(context, OBSERVED, {"path": ["shop", "late"]})
    [observation] = data["assetOrError"]["assetObservations"]
    md = {e["label"]: e for e in observation["metadataEntries"]}
    [stored] = instance.fetch_observations(dg.AssetKey(["shop", "late"]), limit=5).records
    assert stored.asset_observation is not None
    last = stored.asset_observation.metadata["dagster/last_updated_timestamp"]
    assert isinstance(last, dg.TimestampMetadataValue)
    assert md["dagster/last_updated_timestamp"]["timestamp"] == pytest.approx(last.value)
    assert md["floe/snapshot_id"]["text"] == stored.asset_observation.metadata["floe/snapshot_id"].value
