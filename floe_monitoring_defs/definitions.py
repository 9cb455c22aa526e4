"""Composes the code location: settings -> monitoring config -> contracts (files + store registrations)
-> the plan (check kinds x contracts x cadences) -> Dagster objects. The only place that wires the parts."""

import logging

import dagster as dg

from floe_monitoring_defs.checks.plan import check_kind_keys, plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.config import Settings, load_config
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.contracts.registry import load_all
from floe_monitoring_defs.contracts.servers import server_options
from floe_monitoring_defs.defs import build_definitions
from floe_monitoring_defs.store.registry import read_registrations
from floe_monitoring_defs.telemetry.setup import configure_telemetry

log = logging.getLogger("floe_monitoring")


def load_contracts_and_registrations(settings: Settings) -> LoadReport:
    """The contract files under the contracts directory, plus the contracts registered in the store (FR-004)."""
    return load_all(settings.contracts_dir, read_registrations(), server_options(settings))


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    configure_telemetry()  # OTEL_* environment; a no-op when nothing is configured
    config = load_config(settings.config_path)  # a bad config fails the load: better at deploy than at 3 a.m.
    kinds = check_kinds()
    check_kind_keys(config, kinds, str(settings.config_path or "monitoring config"))
    report = load_contracts_and_registrations(settings)
    if not report.contracts and not report.errors:
        log.info(
            "no contracts found under %s; the code location is idle until contracts are added", settings.contracts_dir
        )
    plan = plan_checks(report, config, kinds)
    for err in plan.report.errors:
        log.warning("contract not loaded: %s", err)
    log.info(
        "loaded %d contracts (%d failed) from %s",
        len(plan.report.contracts),
        len(plan.report.errors),
        settings.contracts_dir,
    )
    return build_definitions(plan, config, settings)
