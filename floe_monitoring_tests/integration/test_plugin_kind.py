"""A check kind added through the `floe.check_kinds` entry point alone, with no edit to the package, runs end
to end: planned and scheduled, executed by its checks job in one Dagster step, stored, reported as a Dagster
check result with its evidence, and aggregated by `contract_sla_daily` with its own cadence."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from floe_monitoring_defs.checks.plan import check_kind_keys, plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.config import ConfigError, MonitoringConfig
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.models import ViolationType
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t
from floe_monitoring_tests.integration.iceberg_helpers import catalog_env, create, make_catalog
from floe_monitoring_tests.integration.test_dagster_location import SCHEMA, contract_doc
from floe_monitoring_tests.plugin_kind import NAME, SnapshotRowsKind, register_plugin_kind

pytestmark = pytest.mark.integration


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin's distribution metadata on the import path, as `pip install` of a plugin would leave it."""
    root = register_plugin_kind(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    yield root


@pytest.fixture
def location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugin: Path) -> Iterator[Path]:
    """Three tables: `full` and `empty` in contracts tagged for the plugin kind (`empty` with its own cadence),
    and `other`, whose contract is not."""
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    cat = make_catalog(tmp_path)
    now = datetime.now(UTC)
    row: dict[str, list[Any]] = {
        "id": ["a"],
        "amount": [Decimal("1.00")],
        "email": ["a@example.com"],
        "updated_at": [now],
    }
    create(cat, "shop.full", SCHEMA, row)
    create(cat, "shop.empty", SCHEMA)  # no snapshot at all
    create(cat, "shop.other", SCHEMA, row)
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    full = {**contract_doc("full", "full"), "tags": ["rows"]}
    empty = {
        **contract_doc("empty", "empty"),
        "tags": ["rows"],
        "customProperties": [
            {"property": "floe.monitoring", "value": {"check_intervals": {f"{NAME}_minutes": 10}}},
        ],
    }
    (contracts / "full.yaml").write_text(yaml.safe_dump(full))
    (contracts / "empty.yaml").write_text(yaml.safe_dump(empty))
    (contracts / "other.yaml").write_text(yaml.safe_dump(contract_doc("other", "other")))
    for key in [k for k in os.environ if k.startswith(("FLOE_", "OPENLINEAGE", "OTEL_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    (tmp_path / "dagster_home").mkdir()
    yield contracts


def test_the_entry_point_registers_the_kind(plugin: Path) -> None:
    kinds = check_kinds()
    assert kinds[NAME] is SnapshotRowsKind
    assert {"freshness", "schema_drift", "quality", "availability"} <= set(kinds)


def test_without_the_entry_point_the_kind_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NAME not in check_kinds()  # nothing registers it: the package itself knows no such kind


def test_the_kind_is_planned_with_its_own_cadence_key(location: Path, plugin: Path) -> None:
    defs = build_defs()
    repo = defs.get_repository_def()
    assert {f"{NAME}_every_30m_checks", f"{NAME}_every_10m_checks"} <= set(repo.job_names)
    schedule = defs.resolve_schedule_def(f"{NAME}_every_30m_schedule")
    assert schedule.cron_schedule == "*/30 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    checks = {k for k in defs.resolve_asset_graph().asset_check_keys if k.name == NAME}
    # Only the contracts the kind applies to get its check.
    assert checks == {
        dg.AssetCheckKey(dg.AssetKey(["shop", "full"]), NAME),
        dg.AssetCheckKey(dg.AssetKey(["shop", "empty"]), NAME),
    }


def test_the_scheduled_job_runs_stores_reports_and_aggregates(location: Path) -> None:
    defs = build_defs()
    with dg.instance_for_test() as instance:
        schedule = defs.resolve_schedule_def(f"{NAME}_every_30m_schedule")
        ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.now(UTC))
        [request] = schedule.evaluate_tick(ctx).run_requests or []
        assert request.tags["floe/check_type"] == NAME
        full = defs.resolve_job_def(f"{NAME}_every_30m_checks").execute_in_process(instance=instance, tags=request.tags)
        empty = defs.resolve_job_def(f"{NAME}_every_10m_checks").execute_in_process(instance=instance)
        assert full.success and empty.success
        steps = [e for e in full.all_events if e.event_type_value == "STEP_START"]
        [passed] = full.get_asset_check_evaluations()
        [failed] = empty.get_asset_check_evaluations()
    assert len(steps) == 1
    assert passed.check_name == NAME and passed.passed and passed.metadata["snapshot_rows"].value == 1
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.WARN
    assert failed.metadata["floe/severity"].value == "warning" and failed.metadata["snapshot_rows"].value == 0

    url = os.environ["FLOE_MONITORING_DB_URL"]
    store = MonitoringStore(url)
    try:
        results = {r.contract_name: r for r in store.results.check_results(check_type=ViolationType(NAME))}
        assert results["full"].status.value == "pass" and results["empty"].status.value == "fail"
        [violation] = store.results.violations(contract_name="empty")
        assert violation.event.violation_type.value == NAME and violation.event.severity.value == "warning"
        [alert] = store.outbox.entries(contract_name="empty")
        assert alert.id == violation.id and alert.event.violation_type.value == NAME

        # Partitions end with yesterday: move the run's rows to yesterday noon, then aggregate that day through
        # Dagster (the rows stay exactly as the step wrote them otherwise).
        day = datetime.now(UTC).date() - timedelta(days=1)
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        with store.db.engine.begin() as conn:
            conn.execute(sa.update(t.contract_check_results).values(checked_at=noon))
            conn.execute(sa.update(t.contract_violations).values(detected_at=noon))
        with dg.instance_for_test() as instance:
            sla = defs.resolve_job_def("contract_sla_daily_job").execute_in_process(
                instance=instance, partition_key=day.isoformat()
            )
        assert sla.success
        rows = {(a.contract_name, a.check_type): a for a in store.aggregates.daily_aggregates(start=day)}
    finally:
        store.dispose()
    full_day, empty_day = rows[("full", NAME)], rows[("empty", NAME)]
    assert (full_day.totals.total, full_day.totals.passed) == (1, 1)
    assert (empty_day.totals.total, empty_day.totals.failed, empty_day.totals.by_severity()["warning"]) == (1, 1, 1)
    # Expected checks come from the kind's cadence: 1440 / 30 (its default) and 1440 / 10 (the override).
    assert (full_day.interval_minutes, full_day.expected_checks) == (30, 48)
    assert (empty_day.interval_minutes, empty_day.expected_checks) == (10, 144)
    assert ("other", NAME) not in rows


def test_a_key_of_no_installed_kind_is_a_config_error(plugin: Path) -> None:
    kinds = check_kinds()
    check_kind_keys(MonitoringConfig.model_validate({"check_intervals": {f"{NAME}_minutes": 5}}), kinds, "m.yaml")
    with pytest.raises(ConfigError, match=r"m\.yaml: check_intervals\.snapshot_row_minutes: no installed check kind"):
        check_kind_keys(
            MonitoringConfig.model_validate({"check_intervals": {"snapshot_row_minutes": 5}}), kinds, "m.yaml"
        )
    plan = plan_checks(LoadReport((), ()), MonitoringConfig(), kinds)
    assert plan.groups == () and plan.expectations(99.0) == {}


def test_dagster_job_execute_runs_the_plugin_kind(location: Path, plugin: Path) -> None:
    """`dagster job execute` in a subprocess finds the kind when its distribution is on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")} | {
        "FLOE_CONTRACTS_DIR": str(location),
        "FLOE_MONITORING_DB_URL": os.environ["FLOE_MONITORING_DB_URL"],
        "PYTHONPATH": os.pathsep.join([str(plugin), str(Path(__file__).resolve().parents[2])]),
    }
    dagster = Path(sys.executable).parent / "dagster"
    out = subprocess.run(
        [str(dagster), "job", "execute", "-m", "floe_monitoring_defs", "-j", f"{NAME}_every_30m_checks"],
        env=env,
        cwd=location.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    store = MonitoringStore(os.environ["FLOE_MONITORING_DB_URL"])
    try:
        [result] = store.results.check_results(check_type=ViolationType(NAME))
    finally:
        store.dispose()
    assert (result.contract_name, result.status.value, result.details["rows"]) == ("full", "pass", 1)
