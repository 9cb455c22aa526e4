"""An SLA's own `scheduler: cron` + `schedule` (ODCS) sets that check's cadence for its contract."""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from floe_monitoring_defs.cadence import cron_interval, parse_cron
from floe_monitoring_defs.checks.plan import plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.config import MonitoringConfig, Settings
from floe_monitoring_defs.contracts.model import (
    ExpectedColumn,
    FreshnessSLA,
    LoadReport,
    MonitoredContract,
    MonitoredTable,
    TableRef,
)
from floe_monitoring_defs.defs import build_definitions


@pytest.mark.parametrize(
    ("cron", "minutes"),
    [
        ("*/15 * * * *", 15),
        ("0 * * * *", 60),
        ("0 6 * * *", 1440),
        ("30 */2 * * *", 120),
        ("5,35 * * * *", 30),
        ("0 9-17 * * *", None),
        ("0 0 * * 1", None),
        ("0 0 1 * *", None),
    ],
)
def test_cron_spacing(cron: str, minutes: int | None) -> None:
    assert cron_interval(cron) == minutes


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * *", "5-field"),
        ("0 6 * * MON", "day of week 'MON'"),
        ("61 * * * *", "minute '61' is outside 0..59"),
        ("*/0 * * * *", "the step must be a positive number"),
    ],
)
def test_unsupported_crons_are_refused_naming_the_field(cron: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cron(cron)


def contract(name: str, schedules: dict[str, str]) -> MonitoredContract:
    table = MonitoredTable(name, TableRef(("shop",), name, catalog="c"), (ExpectedColumn("id", "id", "string"),))
    base = MonitoredContract(name, "1.0.0", name, f"/x/{name}.yaml", (table,))
    return replace(base, freshness=FreshnessSLA(timedelta(hours=6), "PT6H"), schedules=schedules)


def test_an_sla_cron_makes_its_own_group_job_and_schedule(tmp_path: Path) -> None:
    report = LoadReport((contract("daily", {"freshness": "0 6 * * *"}), contract("plain", {})), ())
    plan = plan_checks(report, MonitoringConfig(), check_kinds())
    fresh = {g.name: g for g in plan.groups if g.check_type.value == "freshness"}
    assert set(fresh) == {"freshness_cron_0_6_x_x_x", "freshness_every_15m"}
    assert [c.name for c, _ in fresh["freshness_cron_0_6_x_x_x"].targets] == ["daily"]
    exp = plan.expectations(99.0)
    assert exp[("daily", "freshness")].interval_minutes == 1440 and exp[("plain", "freshness")].interval_minutes == 15
    defs = build_definitions(plan, MonitoringConfig(), Settings(tmp_path, None, None, None))
    schedule = defs.resolve_schedule_def("freshness_cron_0_6_x_x_x_schedule")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "UTC"
    job = defs.resolve_job_def("freshness_cron_0_6_x_x_x_checks")
    assert job.tags["floe/cron"] == "0 6 * * *"
    assert dg.AssetKey(["shop", "daily"]) in {k.asset_key for k in defs.resolve_asset_graph().asset_check_keys}


def test_a_cron_the_monitor_cannot_read_is_a_contract_error() -> None:
    plan = plan_checks(
        LoadReport((contract("odd", {"freshness": "0 6 * * MON"}),), ()), MonitoringConfig(), check_kinds()
    )
    assert all(c.name != "odd" for g in plan.groups for c, _ in g.targets)
    [error] = plan.report.errors
    assert error.field == "slaProperties.schedule" and "day of week 'MON'" in error.message
