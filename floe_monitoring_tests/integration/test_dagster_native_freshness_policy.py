"""Issue 14, acceptance 2: each contract's freshness SLA is a Dagster `FreshnessPolicy` on its tables' AssetSpecs.

Read from the loaded definitions (`build_defs()`), every table of a contract with a latency / freshness SLA has a
time-window policy failing at the SLA and warning at `severity_thresholds.warning_pct` of it, whatever the SLA's
spelling (`freshness` / `latency` / `ly`, an ISO-8601 duration or a value with a unit), with the contract's own
`floe.monitoring` thresholds when it has them; an SLA under a minute (Dagster's smallest window) gets none and says
why. The policy agrees with floe's freshness check on real Iceberg tables: a table inside the warning window is
WARNING, past the fail window ERROR.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

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

# (contract, SLA property as written, the SLA, its warning window)
SPELLINGS: list[tuple[str, dict[str, Any], timedelta]] = [
    ("iso", {"property": "freshness", "value": "PT6H", "element": "updated_at"}, timedelta(hours=6)),
    ("days", {"property": "latency", "value": 4, "unit": "d"}, timedelta(days=4)),
    ("synonym", {"property": "ly", "value": 90, "unit": "min", "element": "updated_at"}, timedelta(minutes=90)),
    ("long_unit", {"property": "Latency", "value": 2, "unit": "hours"}, timedelta(hours=2)),
    ("weeks", {"property": "latency", "value": "P2W"}, timedelta(weeks=2)),
]


def windows(policy: dg.FreshnessPolicy | None) -> tuple[timedelta, timedelta | None]:
    """(fail window, warn window) of a time-window policy."""
    assert policy is not None, "no freshness policy"
    fail, warn = getattr(policy, "fail_window", None), getattr(policy, "warn_window", None)
    assert fail is not None, f"{policy!r} is not a time-window policy"
    return fail.to_timedelta(), None if warn is None else warn.to_timedelta()


def write_config(root: Path, monkeypatch: pytest.MonkeyPatch, warning_pct: float) -> None:
    path = root / "monitoring.yaml"
    path.write_text(yaml.safe_dump({"severity_thresholds": {"info_pct": 70, "warning_pct": warning_pct}}))
    monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(path))


def test_every_spelling_of_the_sla_becomes_the_policy(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(warehouse.root, monkeypatch, 75)
    now = datetime.now(UTC)
    for name, written, _ in SPELLINGS:
        warehouse.add(name, name, [written], rows([now]))
    # Two tables under one contract: each gets the policy. The contract's own thresholds override the config's.
    two = contract_doc(
        "pair",
        "pair_a",
        [{"property": "latency", "value": "PT12H"}],
        overrides={"severity_thresholds": {"warning_pct": 50}},
    )
    two["schema"].append({"name": "pair_b", "properties": two["schema"][0]["properties"]})
    for table in ("pair_a", "pair_b"):
        create(warehouse.catalog, f"shop.{table}", SCHEMA, rows([now]))
    (warehouse.contracts / "pair.yaml").write_text(yaml.safe_dump(two))
    warehouse.add("tiny", "tiny", [{"property": "latency", "value": 30, "unit": "s"}], rows([now]))
    warehouse.add("nosla", "nosla", [], rows([now]))

    defs = build_defs()
    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs() if s.key.path[0] == "shop"}
    assert set(specs) == {*(n for n, _, _ in SPELLINGS), "pair_a", "pair_b", "tiny", "nosla"}
    for name, _, sla in SPELLINGS:
        assert windows(specs[name].freshness_policy) == (sla, sla * 0.75), name
    for table in ("pair_a", "pair_b"):
        assert windows(specs[table].freshness_policy) == (timedelta(hours=12), timedelta(hours=6)), table
    # Under Dagster's one-minute minimum: no policy, and the asset says why; no SLA: no policy either.
    assert specs["tiny"].freshness_policy is None
    assert "at least 1 minute" in str(specs["tiny"].metadata["floe/freshness_policy"])
    assert specs["nosla"].freshness_policy is None and "floe/freshness_policy" not in specs["nosla"].metadata


def test_a_warning_share_that_leaves_no_window_gives_a_fail_window_only(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`warning_pct: 100`: floe warns only at the SLA itself, which a warn window cannot say (it must be shorter)."""
    write_config(warehouse.root, monkeypatch, 100)
    warehouse.add("full", "full", [{"property": "latency", "value": "PT3H"}], rows([datetime.now(UTC)]))
    [spec] = [s for s in build_defs().resolve_all_asset_specs() if s.key == dg.AssetKey(["shop", "full"])]
    assert windows(spec.freshness_policy) == (timedelta(hours=3), None)


def test_the_policy_agrees_with_the_freshness_check(warehouse: Warehouse) -> None:
    """Tables aged well inside the policy's windows get the matching floe severity from a real check run."""
    sla = timedelta(hours=10)  # default thresholds: warn from 9 h, fail after 10 h (+ the 60 s clock-skew tolerance)
    now = datetime.now(UTC)
    ages = {"fresh": timedelta(hours=5), "warned": timedelta(hours=9, minutes=30), "stale": timedelta(hours=11)}
    for name, age in ages.items():
        warehouse.add(
            name, name, [{"property": "latency", "value": "PT10H", "element": "updated_at"}], rows([now - age])
        )
    defs = build_defs()
    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs()}
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
    evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    for name, age in ages.items():
        fail, warn = windows(specs[name].freshness_policy)
        assert (fail, warn) == (sla, sla * 0.9)
        assert warn is not None
        dagster_state = "FAIL" if age >= fail else "WARN" if age >= warn else "PASS"
        floe = text(evals[name].metadata, "floe/severity")
        assert {"PASS": "none", "WARN": "warning", "FAIL": "error"}[dagster_state] == floe, (name, floe)
    assert sorted(n for n, e in evals.items() if not e.passed) == ["stale", "warned"]
