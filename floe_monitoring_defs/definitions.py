"""Composes the code location: settings -> monitoring config -> contracts (files + store registrations)
-> the plan (check kinds x contracts x cadences) -> Dagster objects. The only place that wires the parts.

An invalid monitoring config (or FLOE_* setting) never takes the code location down and never reaches the user
as a traceback: the location loads with the `floe/contract_registry` asset and its failing
`monitoring_config_valid` check only (no contract checks, no alert dispatch; defs/config_checks.py), plus one
ERROR log line with each problem as `file: dotted.key: message`. `dagster definitions validate` exits 1 with
that message instead (a validation that passed would hide the problem), and `build_defs(strict=True)` raises
the `ConfigError` for callers that report it themselves (the `floe` CLI).

`defs` is the `@dg.definitions` entry point: Dagster calls it when it loads the code location (`dagster dev`,
`dagster api grpc` / `code-server start -m floe_monitoring_defs` through the package's lazy `location`, `dg dev`
and `dg check defs` through this module, the `[tool.dg]` target), so importing this module builds nothing.
"""

import functools
import logging
import os
from pathlib import Path

import dagster as dg

from floe_monitoring_defs.checks.plan import check_kind_keys, plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.config import ConfigError, Settings, load_config, require_durable_store
from floe_monitoring_defs.contract_set import load_contracts_and_registrations
from floe_monitoring_defs.defs import build_definitions
from floe_monitoring_defs.defs.config_checks import config_error_definitions
from floe_monitoring_defs.telemetry.redaction import install_redaction, register_url_secrets
from floe_monitoring_defs.telemetry.setup import configure_telemetry

log = logging.getLogger("floe_monitoring")

# Set by `dagster definitions validate` while it loads code locations (dagster/_cli/definitions.py).
VALIDATION_CLI_ENV = "DAGSTER_IS_DEFS_VALIDATION_CLI"


def build_defs(settings: Settings | None = None, *, strict: bool = False) -> dg.Definitions:
    """The code location's definitions. A `ConfigError` gives the config-error definitions (module docstring);
    with `strict` it is raised instead."""
    configure_telemetry()  # OTEL_* environment; a no-op when nothing is configured
    # Secrets are masked in every log record of this process (telemetry/redaction.py): the store's password
    # now, each channel's secrets when the channels are built below.
    install_redaction()
    register_url_secrets(os.environ.get("FLOE_MONITORING_DB_URL"))
    try:
        settings = settings or Settings.from_env()
        require_durable_store(settings)  # a pod without FLOE_MONITORING_DB_URL would lose its store
        return _build(settings)
    except ConfigError as exc:
        if strict:
            raise
        return _config_error(exc, settings)


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, built from the FLOE_* environment when Dagster loads it, once per process."""
    return _location()


@functools.cache
def _location() -> dg.Definitions:
    # Dagster calls a `@dg.definitions` function twice while it loads a location (to resolve the target, then for
    # its repository): without the cache every load would build twice, and log each problem twice. A reload (the
    # UI, the registry sensor) starts a new code server process, which builds anew.
    return build_defs()


def _build(settings: Settings) -> dg.Definitions:
    config = load_config(settings.config_path)
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


def _config_error(error: ConfigError, settings: Settings | None) -> dg.Definitions:
    lines = str(error).splitlines()
    if os.environ.get(VALIDATION_CLI_ENV) == "1":
        # Dagster prints a definitions module's exception with its stack; an exit with the message is one clean
        # line per problem and a failed validation (exit code 1).
        raise SystemExit("\n".join(f"floe-monitoring: invalid monitoring config: {line}" for line in lines))
    log.error(
        "invalid monitoring config, no checks are scheduled until it is fixed and the code location reloaded: %s",
        "; ".join(lines),
    )
    contracts_dir = (
        settings.contracts_dir if settings is not None else Path(os.environ.get("FLOE_CONTRACTS_DIR") or "./contracts")
    )
    return config_error_definitions(error, contracts_dir)
