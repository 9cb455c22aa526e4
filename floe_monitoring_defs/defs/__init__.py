"""Thin Dagster adapters: asset specs, asset checks, jobs, schedules, sensors and resources."""

import logging
from pathlib import Path

import dagster as dg

from floe_monitoring_defs.checks.plan import Plan
from floe_monitoring_defs.config import MonitoringConfig, Settings
from floe_monitoring_defs.defs.alerting import (
    FAILURE_SENSOR,
    FAILURE_SENSOR_DESCRIPTION,
    dispatch_sensor,
    queue_run_failure,
)
from floe_monitoring_defs.defs.assets import observed_tables, registry_spec
from floe_monitoring_defs.defs.checks import build_check_groups, build_registry_check
from floe_monitoring_defs.defs.config_checks import (
    REGISTRY_JOB,
    build_channels_check,
    build_config_check,
    channel_problem_line,
    channels_markdown,
)
from floe_monitoring_defs.defs.executors import checks_executor
from floe_monitoring_defs.defs.resources import (
    ALERT_CHANNELS_KEY,
    IcebergCatalogResource,
    MonitoringStoreResource,
    alert_channels_resource,
)
from floe_monitoring_defs.defs.schedules import contracts_fingerprint, no_overlap_schedule, registry_sensor
from floe_monitoring_defs.defs.sla import SLA_JOB, build_sla_definitions

__all__ = ["REGISTRY_JOB", "build_definitions"]

log = logging.getLogger("floe_monitoring")


def build_definitions(plan: Plan, config: MonitoringConfig, settings: Settings) -> dg.Definitions:
    report = plan.report
    source = str(settings.config_path or "monitoring config")
    # A channel that cannot be built is disabled alone, loudly; its alerts are held in the outbox.
    alert_channels, channels, channel_problems = alert_channels_resource(config.alerts)
    for problem in channel_problems.values():
        log.error(channel_problem_line(source, problem))
    tables = observed_tables(plan)
    specs: list[dg.AssetSpec | dg.AssetsDefinition] = [] if tables is None else [tables]
    specs.append(
        registry_spec(report, str(settings.contracts_dir)).merge_attributes(
            metadata={
                "floe/monitoring_config": source,
                "floe/alert_channels": dg.MetadataValue.md(
                    channels_markdown(list(config.alerts.channels), {n: p.reason for n, p in channel_problems.items()})
                ),
            }
        )
    )
    check_defs = build_check_groups(plan.groups, plan.kinds, config)
    registry_check = build_registry_check(report)
    health_checks = [build_config_check(source, None), build_channels_check(source)]
    running = config.enabled and config.mode == "scheduled"
    executor = checks_executor(config.executor)  # None: Dagster's default, as before the setting existed
    jobs = []
    schedules: list[dg.ScheduleDefinition] = []
    for group in plan.groups:
        tags = {"floe/check_type": group.check_type.value}
        if group.cron is None:
            tags["floe/interval_minutes"] = str(group.minutes)
            every = f"every {group.minutes} min"
        else:
            tags["floe/cron"] = group.cron
            every = f"on cron {group.cron!r} (the contract's own SLA schedule)"
        name = f"{group.name}_checks"
        jobs.append(
            dg.define_asset_job(
                name,
                selection=dg.AssetSelection.checks(*check_defs[group.name]),
                tags=tags,
                description=f"{group.check_type.value} checks {every}",
                executor_def=executor,
            )
        )
        schedules.append(
            no_overlap_schedule(
                f"{group.name}_schedule", name, group.minutes, running=running, tags=tags, cron=group.cron
            )
        )
    jobs.append(
        dg.define_asset_job(
            REGISTRY_JOB,
            selection=dg.AssetSelection.checks(registry_check, *health_checks),
            tags={"floe/check_type": "registry"},
            description="Reports contract files that could not be loaded, the monitoring config and the alert channels",
        )
    )
    schedules.append(
        no_overlap_schedule(
            "floe_contract_registry_schedule", REGISTRY_JOB, 60, running=running, tags={"floe/check_type": "registry"}
        )
    )
    # SLA compliance (defs/sla.py): daily aggregates asset + schedule, retention job + schedule.
    sla = build_sla_definitions(plan, config, running=config.enabled)
    monitored = [*jobs, *(j for j in sla.jobs or () if j.name == SLA_JOB)]  # a failed aggregation alerts too
    contracts_dir = Path(settings.contracts_dir)
    main = dg.Definitions(
        assets=specs,
        asset_checks=[*(d for defs_ in check_defs.values() for d in defs_), registry_check, *health_checks],
        jobs=jobs,
        schedules=schedules,
        sensors=[
            registry_sensor(contracts_dir, contracts_fingerprint(contracts_dir), settings),
            dispatch_sensor(config.alerts),
            dg.run_failure_sensor(
                name=FAILURE_SENSOR,
                monitored_jobs=monitored,
                default_status=dg.DefaultSensorStatus.RUNNING,
                description=FAILURE_SENSOR_DESCRIPTION,
            )(queue_run_failure),
        ],
        resources={
            "iceberg": IcebergCatalogResource(default_catalog=settings.default_catalog),
            "floe_store": MonitoringStoreResource(
                db_url=dg.EnvVar("FLOE_MONITORING_DB_URL") if settings.db_url else None
            ),
            ALERT_CHANNELS_KEY: alert_channels,
            # Each channel on its own too (the same objects): the UI lists every channel, nested in alert_channels.
            **channels,
        },
    )
    return dg.Definitions.merge(main, sla)
