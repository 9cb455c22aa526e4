"""Thin Dagster adapters: asset specs, asset checks, jobs, schedules, sensors and resources."""

from pathlib import Path

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from floe_monitoring_defs.config import MonitoringConfig, Settings
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.defs.alerting import channel_resources, dispatch_sensor, failure_sensor
from floe_monitoring_defs.defs.assets import registry_spec, table_spec
from floe_monitoring_defs.defs.checks import CheckGroup, build_check_groups, build_registry_check
from floe_monitoring_defs.defs.resources import IcebergCatalogResource, MonitoringStoreResource
from floe_monitoring_defs.defs.schedules import checks_job, contracts_fingerprint, no_overlap_schedule, registry_sensor
from floe_monitoring_defs.defs.sla import build_sla_definitions

REGISTRY_JOB = "floe_contract_registry_job"


def job_name(group: CheckGroup) -> str:
    return f"{group.name}_checks"


def build_definitions(
    report: LoadReport,
    groups: list[CheckGroup],
    config: MonitoringConfig,
    settings: Settings,
    *,
    resources: dict[str, object] | None = None,
) -> dg.Definitions:
    specs = [table_spec(c, t) for c in report.contracts for t in c.tables]
    specs.append(registry_spec(report, str(settings.contracts_dir)))
    channels = channel_resources(config.alerts)  # a bad channel config fails the load, naming the key
    keys = sorted(channels)
    check_defs = build_check_groups(groups, config, keys)
    registry_check = build_registry_check(report)
    running = config.enabled and config.mode == "scheduled"
    jobs: list[UnresolvedAssetJobDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    for group in groups:
        members = check_defs[group.name]
        tags = {"floe/check_type": group.check_type.value, "floe/interval_minutes": str(group.minutes)}
        name = job_name(group)
        jobs.append(checks_job(name, members, tags, f"{group.check_type.value} checks every {group.minutes} min"))
        schedules.append(no_overlap_schedule(f"{group.name}_schedule", name, group.minutes, running=running, tags=tags))
    jobs.append(
        checks_job(
            REGISTRY_JOB,
            [registry_check],
            {"floe/check_type": "registry"},
            "Reports contract files that could not be loaded",
        )
    )
    schedules.append(
        no_overlap_schedule(
            "floe_contract_registry_schedule", REGISTRY_JOB, 60, running=running, tags={"floe/check_type": "registry"}
        )
    )
    # -- SLA compliance (defs/sla.py): daily aggregates asset + schedule, retention job + schedule --------
    sla = build_sla_definitions(report, config, running=config.enabled)
    jobs.append(sla.job)  # a failed aggregation run alerts like any monitoring run
    # -- end SLA compliance ---------------------------------------------------------------------------------
    return dg.Definitions(
        assets=[*specs, sla.asset],
        asset_checks=[*(d for defs_ in check_defs.values() for d in defs_), registry_check],
        jobs=[*jobs, sla.cleanup_job],
        schedules=[*schedules, *sla.schedules],
        sensors=[
            registry_sensor(Path(settings.contracts_dir), contracts_fingerprint(Path(settings.contracts_dir))),
            dispatch_sensor(keys, config.alerts),
            failure_sensor(jobs),
        ],
        resources=resources
        or {
            "iceberg": IcebergCatalogResource(default_catalog=settings.default_catalog),
            "floe_store": MonitoringStoreResource(
                db_url=dg.EnvVar("FLOE_MONITORING_DB_URL") if settings.db_url else None
            ),
            **channels,
        },
    )
