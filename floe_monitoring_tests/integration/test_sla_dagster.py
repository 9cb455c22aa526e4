"""`contract_sla_daily` through Dagster: partitions, re-materialization, range backfills, schedules, retention job."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from floe_monitoring_defs.checks.plan import Plan, plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.config import ConfigError, MonitoringConfig
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs.resources import MonitoringStoreResource
from floe_monitoring_defs.defs.sla import (
    CLEANUP_JOB,
    CLEANUP_SCHEDULE,
    SLA_JOB,
    SLA_SCHEDULE,
    build_sla_asset,
    build_sla_definitions,
)
from floe_monitoring_defs.sla.settings import SLASettings
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.dagster_metadata import record_number, table_records, text
from floe_monitoring_tests.integration.sla_history import History, generate, write
from floe_monitoring_tests.integration.test_dagster_location import contract_doc

pytestmark = pytest.mark.integration


def no_contracts(config: MonitoringConfig) -> Plan:
    """The plan of a code location without contracts (the SLA definitions need no more)."""
    return plan_checks(LoadReport((), ()), config, check_kinds())


NOW = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
SETTINGS = SLASettings(start_date=date(2026, 1, 1))


@pytest.fixture
def populated(store_url: str) -> Iterator[tuple[str, History]]:
    MonitoringStore(store_url).db.upgrade()
    h = generate(seed=7, now=NOW, days=5, contracts=3)
    write(store_url, h)
    yield store_url, h


Row = tuple[tuple[str, str], dict[str, Any], int | None, float | None, float | None]


def _rows(url: str, day: date) -> list[Row]:
    """The stored rows of a day (key, totals, expected checks, coverage %, target %), floats to 9 significant
    digits: PostgreSQL's parallel SUM adds floats in no fixed order, so the same rows can give averages that
    differ in the last bits."""

    def rounded(value: Any) -> Any:
        return float(f"{value:.9g}") if isinstance(value, float) else value

    store = MonitoringStore(url)
    try:
        return [
            (
                r.key,
                {k: rounded(v) for k, v in asdict(r.totals).items()},
                r.expected_checks,
                rounded(r.coverage_pct),
                r.target_pct,
            )
            for r in store.aggregates.daily_aggregates(start=day, end=day + timedelta(days=1))
        ]
    finally:
        store.dispose()


def _materialize(
    asset: dg.AssetsDefinition,
    url: str,
    instance: dg.DagsterInstance,
    *,
    partition: str | None = None,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [asset],
        partition_key=partition,
        instance=instance,
        tags=tags,
        resources={"floe_store": MonitoringStoreResource(db_url=url)},
    )


def test_rematerializing_a_partition_does_not_double_count(populated: tuple[str, History]) -> None:
    url, h = populated
    asset = build_sla_asset(h.expectations, SETTINGS, clock=lambda: NOW)
    day = date(2026, 3, 3)
    with dg.instance_for_test() as instance:
        first = _materialize(asset, url, instance, partition=day.isoformat())
        rows_once = _rows(url, day)
        second = _materialize(asset, url, instance, partition=day.isoformat())
        rows_twice = _rows(url, day)
    assert first.success and second.success
    assert rows_once == rows_twice
    ran = {(r["contract_name"], r["check_type"]) for r in h.results if r["checked_at"].date() == day}
    assert {key for key, *_ in rows_once} == set(h.expectations) | ran  # `retired` ran but is not expected
    [event] = second.get_asset_materialization_events()
    md = event.materialization.metadata
    assert event.materialization.partition == "2026-03-03"
    assert md["dagster/row_count"].value == len(rows_once)
    records = table_records(md, "day")
    assert {r.data["contract"] for r in records} == {"contract_00", "contract_01", "contract_02", "retired"}
    checks = sum(record_number(r, "total") for r in records)
    assert md["floe/checks"].value == checks == sum(tot["total"] for _, tot, *_ in rows_once)
    assert [r.data["contract"] for r in records if r.data["expected"] is None] == ["retired"]


def test_a_partition_range_is_one_run_with_per_day_materializations(populated: tuple[str, History]) -> None:
    url, h = populated
    asset = build_sla_asset(h.expectations, SETTINGS, clock=lambda: NOW)
    with dg.instance_for_test() as instance:
        result = _materialize(
            asset,
            url,
            instance,
            tags={
                "dagster/asset_partition_range_start": "2026-03-01",
                "dagster/asset_partition_range_end": "2026-03-04",
            },
        )
        assert result.success
        events = result.get_asset_materialization_events()
        materialized = instance.get_materialized_partitions(asset.key)
    by_partition: dict[str, Mapping[str, dg.MetadataValue]] = {}
    for e in events:
        assert e.materialization.partition is not None
        by_partition[e.materialization.partition] = e.materialization.metadata
    assert sorted(by_partition) == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    for key, md in by_partition.items():
        day = date.fromisoformat(key)
        rows = _rows(url, day)
        assert md["floe/date"].value == key and md["dagster/row_count"].value == len(rows)
        assert md["floe/checks"].value == sum(tot["total"] for _, tot, *_ in rows)
    assert materialized == {"2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"}
    assert len([e for e in result.all_events if e.event_type_value == "STEP_START"]) == 1  # one run, one step
    store = MonitoringStore(url)
    try:
        assert store.aggregates.aggregated_days(date(2026, 2, 1), date(2026, 4, 1)) == {
            date(2026, 3, d) for d in range(1, 5)
        }
    finally:
        store.dispose()


def test_a_day_past_retention_is_not_aggregated_again(populated: tuple[str, History]) -> None:
    url, h = populated
    day = date(2026, 3, 3)
    store = MonitoringStore(url)
    try:
        store.aggregates.aggregate_day(day, h.expectations, now=NOW)
        kept = _rows(url, day)
        store.retention.cleanup(NOW + timedelta(days=91), retention_days=90)  # the raw rows are gone
    finally:
        store.dispose()
    later = NOW + timedelta(days=91)
    asset = build_sla_asset(h.expectations, SETTINGS, retention_days=90, clock=lambda: later)
    with dg.instance_for_test() as instance:
        result = _materialize(asset, url, instance, partition=day.isoformat())
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert "retention" in text(event.materialization.metadata, "floe/skipped")
    assert _rows(url, day) == kept  # not replaced by the zeros the deleted rows would give


@pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition` is deprecated")
def test_schedules_and_jobs() -> None:
    sla = build_sla_definitions(no_contracts(MonitoringConfig()), MonitoringConfig(), running=True, settings=SETTINGS)
    defs = dg.Definitions.merge(
        sla, dg.Definitions(resources={"floe_store": MonitoringStoreResource(db_url="sqlite:///unused.db")})
    )
    dg.Definitions.validate_loadable(defs)
    schedule = defs.resolve_schedule_def(SLA_SCHEDULE)
    assert schedule.cron_schedule == "15 0 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance,
            repository_def=defs.get_repository_def(),
            scheduled_execution_time=datetime(2026, 3, 2, 0, 15, tzinfo=UTC),
        )
        [request] = schedule.evaluate_tick(ctx).run_requests or []
    assert request.partition_key == "2026-03-01"  # the day that just ended
    cleanup = defs.resolve_schedule_def(CLEANUP_SCHEDULE)
    assert cleanup.cron_schedule == "45 0 * * *" and cleanup.job_name == CLEANUP_JOB
    assert defs.resolve_job_def(SLA_JOB).partitions_def is not None
    stopped = build_sla_definitions(
        no_contracts(MonitoringConfig()), MonitoringConfig(), running=False, settings=SETTINGS
    )
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in stopped.schedules or ())


def test_retention_job_deletes_old_rows_and_keeps_aggregates(populated: tuple[str, History]) -> None:
    url, h = populated
    store = MonitoringStore(url)
    try:
        aggregates = store.aggregates
        for d in range(1, 6):
            aggregates.aggregate_day(date(2026, 3, d), h.expectations, now=NOW)
        before = aggregates.daily_aggregates()
        config = MonitoringConfig(retention_days=1)
        sla = build_sla_definitions(
            no_contracts(config), config, running=True, settings=SETTINGS, clock=lambda: NOW + timedelta(days=1)
        )
        [job] = [j for j in sla.jobs or () if j.name == CLEANUP_JOB]
        assert isinstance(job, dg.JobDefinition)
        # Frozen at NOW + 1 day with a 1-day retention: every generated row (before NOW) is past the window.
        result = job.execute_in_process(resources={"floe_store": MonitoringStoreResource(db_url=url)})
        assert result.success
        [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        md = output.step_output_data.metadata
        assert md["floe/results_deleted"].value == len(h.results)
        assert md["floe/violations_deleted"].value == len(h.violations)
        assert store.results.check_results() == [] and store.results.violations() == []
        assert aggregates.daily_aggregates() == before
    finally:
        store.dispose()


def _location(tmp_path: Path) -> dict[str, str]:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for name in ("orders", "customers"):
        (contracts / f"{name}.yaml").write_text(yaml.safe_dump(contract_doc(name, name)))
    home = tmp_path / "dagster_home"
    home.mkdir()
    return {
        "FLOE_CONTRACTS_DIR": str(contracts),
        "DAGSTER_HOME": str(home),
        "FLOE_MONITORING_DB_URL": f"sqlite:///{tmp_path / 'floe.db'}",
        "FLOE_SLA_START_DATE": "2026-01-01",
    }


def test_code_location_has_the_sla_asset_and_schedules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in _location(tmp_path).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("FLOE_MONITORING_CONFIG", raising=False)
    defs = build_defs()
    # Validation reads Dagster's defs-state storage from the current instance: give it a live one (an
    # instance an earlier test created and dropped would otherwise be found dead behind a weakref).
    with dg.instance_for_test():
        dg.Definitions.validate_loadable(defs)
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    sla = specs[dg.AssetKey("contract_sla_daily")]
    assert sla.group_name == "floe" and sla.partitions_def is not None
    assert sla.partitions_def.get_first_partition_key() == "2026-01-01"
    assert defs.resolve_schedule_def(SLA_SCHEDULE).default_status == dg.DefaultScheduleStatus.RUNNING
    cleanup = defs.resolve_job_def(CLEANUP_JOB)  # the retention job, scheduled by the retention schedule
    assert [node.name for node in cleanup.nodes] == ["floe_retention_cleanup"]
    assert cleanup.tags["floe/check_type"] == "retention"
    assert defs.resolve_schedule_def(CLEANUP_SCHEDULE).job_name == CLEANUP_JOB
    monkeypatch.setenv("FLOE_SLA_START_DATE", "yesterday")
    with pytest.raises(ConfigError, match=r"^FLOE_SLA_START_DATE: not a date \(YYYY-MM-DD\): 'yesterday'$"):
        build_defs(strict=True)  # without strict, the location loads with the failing monitoring_config_valid check


def test_dagster_asset_materialize_cli_with_a_partition_range(tmp_path: Path) -> None:
    """`dagster asset materialize -m floe_monitoring_defs --select contract_sla_daily --partition-range a...b`."""
    env = {**os.environ, **_location(tmp_path)}
    env.pop("FLOE_MONITORING_CONFIG", None)
    store = MonitoringStore(env["FLOE_MONITORING_DB_URL"])
    try:
        from floe_monitoring_defs.models import CheckResult, CheckStatus, ViolationType

        first = datetime.now(UTC).date() - timedelta(days=3)  # within the retention window of today
        second = first + timedelta(days=1)
        for i in range(96 * 2):  # orders' freshness every 15 minutes over two days, one tick in ten missed
            if i % 10 == 3:
                continue
            at = datetime.combine(first, datetime.min.time(), tzinfo=UTC) + timedelta(minutes=15 * i, seconds=5)
            store.results.record_check(
                CheckResult(
                    contract_name="orders",
                    check_type=ViolationType.FRESHNESS,
                    status=CheckStatus.PASS,
                    duration_seconds=0.1,
                    timestamp=at,
                ),
                [],
                table_name="shop.orders",
            )
        dagster = str(Path(sys.executable).parent / "dagster")
        for args in (["--partition-range", f"{first}...{second}"], ["--partition", str(second)]):
            proc = subprocess.run(
                [
                    dagster,
                    "asset",
                    "materialize",
                    "-m",
                    "floe_monitoring_defs",
                    "--select",
                    "contract_sla_daily",
                    *args,
                ],
                capture_output=True,
                text=True,
                cwd=tmp_path,  # not the repo: Dagster loads a `.env` from there (`floe demo` writes one)
                env=env,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
        rows = {(r.date, r.key): r for r in store.aggregates.daily_aggregates()}
        assert {d for d, _ in rows} == {first, second}
        day1 = rows[(first, ("orders", "freshness"))]
        assert (day1.totals.total, day1.expected_checks) == (86, 96)  # cadence from the loaded contract
        assert day1.coverage_pct == pytest.approx(86 / 96 * 100)
        # Expected but never run: a row with coverage 0 %.
        idle = rows[(first, ("customers", "schema_drift"))]
        assert (idle.totals.total, idle.expected_checks, idle.coverage_pct) == (0, 24, 0.0)
    finally:
        store.dispose()
