"""Issue 14, scope 3: every check result's description leads with floe's severity, and Dagster's severity and the
result's metadata follow DESIGN (WARN for WARNING, ERROR for ERROR / CRITICAL and for a check that could not
complete; `floe/severity` for filtering). Real Dagster runs over a real Iceberg warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import yaml
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_tests.dagster_metadata import text
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
LATENCY = [{"property": "latency", "value": "PT10H", "element": "updated_at"}]


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}


def test_each_finding_is_listed_worst_first_with_its_own_severity(warehouse: Warehouse) -> None:
    """A removed column (CRITICAL) and an added one (WARNING) in one result: led by CRITICAL, the other marked."""
    fields = [f for f in SCHEMA.fields if f.name != "email"] + [NestedField(9, "note", StringType(), required=False)]
    schema = Schema(*fields, identifier_field_ids=[1])
    data = {k: v for k, v in rows([datetime.now(UTC)]).items() if k != "email"} | {"note": ["n"]}
    create(warehouse.catalog, "shop.mixed", schema, data)
    (warehouse.contracts / "mixed.yaml").write_text(yaml.safe_dump(contract_doc("mixed", "mixed", LATENCY)))
    with dg.instance_for_test() as instance:
        result = build_defs().resolve_job_def(DRIFT_JOB).execute_in_process(instance=instance)
    mixed = evaluations(result)["mixed"]
    assert not mixed.passed and mixed.severity == dg.AssetCheckSeverity.ERROR
    assert mixed.description == (
        "CRITICAL: Column 'email' declared by the contract is missing from shop.mixed; "
        "Column 'note' (string, optional) in shop.mixed is not in the contract (WARNING)"
    )
    assert text(mixed.metadata, "floe/severity") == "critical"


def test_warning_info_error_and_a_check_that_could_not_complete(warehouse: Warehouse) -> None:
    now = datetime.now(UTC)
    warehouse.add("warned", "warned", LATENCY, rows([now - timedelta(hours=9, minutes=30)]))  # 95 %
    warehouse.add("early", "early", LATENCY, rows([now - timedelta(hours=8, minutes=30)]))  # 85 %: passes
    warehouse.add("stale", "stale", LATENCY, rows([now - timedelta(hours=12)]))
    (warehouse.contracts / "gone.yaml").write_text(yaml.safe_dump(contract_doc("gone", "gone", LATENCY)))  # no table
    with dg.instance_for_test() as instance:
        result = build_defs().resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
    evals = evaluations(result)
    assert (evals["warned"].passed, evals["warned"].severity) == (False, dg.AssetCheckSeverity.WARN)
    assert (evals["warned"].description or "").startswith("WARNING: Data is 9h ")
    assert evals["early"].passed and (evals["early"].description or "").startswith("INFO: early warning: Data is 8h ")
    assert text(evals["early"].metadata, "floe/severity") == "info"
    assert (evals["stale"].passed, evals["stale"].severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert (evals["stale"].description or "").startswith("ERROR: Data is 12h ")
    gone = evals["gone"]
    assert (gone.passed, gone.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert gone.description == "ERROR (check could not complete): table shop.gone does not exist in catalog 'floetest'"
    assert text(gone.metadata, "floe/status") == "error"
    for name, evaluation in evals.items():  # what a filter or a reader keys on, on every result
        md = evaluation.metadata
        assert (text(md, "floe/check_type"), text(md, "floe/schedule")) == (
            "freshness",
            "freshness_every_15m_schedule",
        ), name


def test_an_escalated_critical_says_from_what_and_why(warehouse: Warehouse) -> None:
    """The 4th failure of the same contract and check type within 24 h is CRITICAL (critical_count 3)."""
    warehouse.add("stale", "stale", LATENCY, rows([datetime.now(UTC) - timedelta(hours=12)]))
    job = build_defs().resolve_job_def(FRESHNESS_JOB)
    with dg.instance_for_test() as instance:
        descriptions = []
        for _ in range(4):
            [evaluation] = job.execute_in_process(instance=instance).get_asset_check_evaluations()
            descriptions.append(evaluation.description or "")
    assert [d.split(":", 1)[0] for d in descriptions] == [
        "ERROR",
        "ERROR",
        "ERROR",
        "CRITICAL (escalated from ERROR",
    ]
    assert descriptions[3].startswith(
        "CRITICAL (escalated from ERROR: 3 earlier failures of this check within the critical window): Data is 12h "
    )
    assert text(evaluation.metadata, "floe/severity") == "critical"
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
