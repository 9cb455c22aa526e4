"""Composes the code location: settings -> monitoring config -> contracts -> Dagster objects."""

import logging

import dagster as dg

from floe_monitoring_defs.cadence import effective_interval
from floe_monitoring_defs.checks.runner import Target
from floe_monitoring_defs.config import ConfigError, MonitoringConfig, Settings, load_config
from floe_monitoring_defs.contracts.model import ContractError, LoadReport, MonitoredContract
from floe_monitoring_defs.contracts.registry import load_all
from floe_monitoring_defs.defs import build_definitions
from floe_monitoring_defs.defs.checks import CheckGroup
from floe_monitoring_defs.models import ViolationType
from floe_monitoring_defs.sla.expected import applies
from floe_monitoring_defs.telemetry.setup import configure_telemetry

log = logging.getLogger("floe_monitoring")

# The check types this code location schedules.
SCHEDULED_TYPES = (
    ViolationType.FRESHNESS,
    ViolationType.SCHEMA_DRIFT,
    ViolationType.QUALITY,
    ViolationType.AVAILABILITY,
)


def plan_checks(report: LoadReport, config: MonitoringConfig) -> tuple[list[CheckGroup], LoadReport]:
    """Group every (contract, table) by check type and cadence; a bad per-contract override is a load error."""
    buckets: dict[tuple[ViolationType, int], list[Target]] = {}
    kept: list[MonitoredContract] = []
    errors = list(report.errors)
    for contract in report.contracts:
        try:
            cfg = config.merged(contract.monitoring_overrides, f"{contract.source}: customProperties.floe.monitoring")
        except ConfigError as exc:
            errors.append(ContractError(contract.source, "customProperties.floe.monitoring", str(exc)))
            continue
        kept.append(contract)
        if not cfg.enabled:
            continue
        for check_type in SCHEDULED_TYPES:
            if applies(check_type, contract):
                minutes = effective_interval(cfg.check_intervals.minutes_for(check_type))
                buckets.setdefault((check_type, minutes), []).extend((contract, t) for t in contract.tables)
    ordered = sorted(buckets.items(), key=lambda item: (item[0][0].value, item[0][1]))
    groups = [CheckGroup(t, m, tuple(targets)) for (t, m), targets in ordered]
    return groups, LoadReport(tuple(kept), tuple(errors))


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    configure_telemetry()  # OTEL_* environment; a no-op when nothing is configured
    config = load_config(settings.config_path)  # a bad config fails the load: better at deploy than at 3 a.m.
    report = load_all(settings.contracts_dir)
    if not report.contracts and not report.errors:
        log.info(
            "no contracts found under %s; the code location is idle until contracts are added", settings.contracts_dir
        )
    groups, report = plan_checks(report, config)
    for err in report.errors:
        log.warning("contract not loaded: %s", err)
    log.info(
        "loaded %d contracts (%d failed) from %s", len(report.contracts), len(report.errors), settings.contracts_dir
    )
    return build_definitions(report, groups, config, settings)
