"""The monitoring config and the alert channels as checks on `floe/contract_registry`, and the definitions a
code location falls back to when its monitoring config is invalid.

- `monitoring_config_valid`: the config the definitions were built from is valid (it always is when the
  location loaded normally); under an invalid config it fails with each problem as `file: dotted.key: message`.
- `alert_channels_ready`: every configured channel can be built in the process that runs the check (its
  settings valid, its secret variables set: the `alert_channels` resource builds them for the step as it does for
  every check step and dispatch tick); a failing one is listed with its reason, which names the key and, for a
  secret, the variable's NAME only.

An invalid config does not take the code location down, and nothing runs under a config the team did not
write: `config_error_definitions` has the registry asset with the config check only (its job, an hourly
schedule, and a sensor that runs it once per distinct error so the failure shows right after the load). No
contract check is scheduled and no alert is dispatched; the outbox keeps what it holds until the config is
fixed and the location reloaded.
"""

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg

from floe_monitoring_defs.alerting.channels.base import ChannelProblem
from floe_monitoring_defs.config import ConfigError, ConfigProblem
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_defs.defs.resources import AlertChannelsResource
from floe_monitoring_defs.defs.schedules import no_overlap_schedule

CONFIG_CHECK_NAME = "monitoring_config_valid"
CHANNELS_CHECK_NAME = "alert_channels_ready"
REGISTRY_JOB = "floe_contract_registry_job"  # runs the registry's checks; the same name under an invalid config
CONFIG_ERROR_SENSOR = "monitoring_config_error_sensor"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def problems_markdown(error: ConfigError) -> str:
    if not error.problems:
        return f"| file | key | problem |\n|---|---|---|\n| | | {_cell(str(error))} |"
    rows = "\n".join(f"| `{p.source}` | `{p.key}` | {_cell(p.message)} |" for p in error.problems)
    return f"| file | key | problem |\n|---|---|---|\n{rows}"


def channels_markdown(names: Sequence[str], problems: Mapping[str, str]) -> str:
    if not names:
        return "No alert channels configured (alerts stay in the outbox, unrouted)."
    rows = "\n".join(f"| {n} | {_cell(problems[n]) if n in problems else 'ready'} |" for n in sorted(names))
    return f"| channel | status |\n|---|---|\n{rows}"


def channel_problem_line(source: str, problem: ChannelProblem) -> str:
    """The load-time log line of a channel that cannot deliver (names the variable, never a value)."""
    if problem.variable is not None:
        return (
            f"alert channel {problem.channel} disabled until environment variable {problem.variable} is set: "
            f"{source}: {problem.reason}; its alerts are held in the outbox and retried"
        )
    return (
        f"alert channel {problem.channel} disabled: {source}: {problem.reason}; its alerts are held in the outbox "
        "until the config is fixed and the code location reloaded"
    )


def _config_error_result(error: ConfigError) -> dg.AssetCheckResult:
    problems: Sequence[ConfigProblem] = error.problems
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"invalid monitoring config, no checks scheduled: {error}"[:2000],
        metadata={
            "floe/status": "error",
            "floe/severity": "error",
            "floe/config_files": ", ".join(sorted({p.source for p in problems})) or "-",
            "floe/config_keys": ", ".join(p.key for p in problems) or "-",
            "floe/problems": dg.MetadataValue.md(problems_markdown(error)),
        },
    )


def build_config_check(source: str, error: ConfigError | None) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=REGISTRY_KEY,
        name=CONFIG_CHECK_NAME,
        description="The monitoring config (FLOE_MONITORING_CONFIG) is valid; under an invalid one no check runs",
    )
    def _config_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        if error is not None:
            context.log.error(f"invalid monitoring config: {error}")
            return _config_error_result(error)
        return dg.AssetCheckResult(
            passed=True,
            # `source` is the file, or the words "monitoring config" when none is set (the spec defaults)
            description=(
                f"monitoring config {source} is valid"
                if source != "monitoring config"
                else "monitoring config is valid"
            ),
            metadata={"floe/status": "pass", "floe/severity": "none", "floe/config_files": source},
        )

    return _config_check


def build_channels_check(source: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=REGISTRY_KEY,
        name=CHANNELS_CHECK_NAME,
        description="Every configured alert channel can deliver: its settings are valid and its secrets are set",
    )
    def _channels_check(
        context: dg.AssetCheckExecutionContext, alert_channels: AlertChannelsResource
    ) -> dg.AssetCheckResult:
        channels, unavailable = alert_channels.ready(), alert_channels.unavailable()
        names = [*channels, *unavailable]
        for name, reason in sorted(unavailable.items()):
            context.log.error(f"alert channel {name} cannot deliver: {source}: {reason}")
        description = (
            f"{len(channels)} alert channels ready"
            if not unavailable
            else f"{len(unavailable)} of {len(names)} alert channels cannot deliver (their alerts are held): "
            + "; ".join(f"{source}: {reason}" for _, reason in sorted(unavailable.items()))
        )
        return dg.AssetCheckResult(
            passed=not unavailable,
            severity=dg.AssetCheckSeverity.ERROR,
            description=description[:2000],
            metadata={
                "floe/status": "fail" if unavailable else "pass",
                "floe/severity": "error" if unavailable else "none",
                "floe/channels_ready": len(channels),
                "floe/channels_unavailable": ", ".join(sorted(unavailable)) or "none",
                "floe/channels": dg.MetadataValue.md(channels_markdown(names, unavailable)),
            },
        )

    return _channels_check


def config_error_definitions(error: ConfigError, contracts_dir: Path) -> dg.Definitions:
    """What loads under an invalid monitoring config: the registry asset and its failing config check."""
    spec = dg.AssetSpec(
        key=REGISTRY_KEY,
        description="The data contracts this code location monitors. NOT MONITORING: the monitoring config is invalid.",
        group_name="floe",
        kinds={"yaml"},
        metadata={
            "floe/contracts_dir": str(contracts_dir),
            "floe/config_error": str(error)[:2000],
            "floe/problems": dg.MetadataValue.md(problems_markdown(error)),
        },
    )
    check = build_config_check("", error)
    tags = {"floe/check_type": "registry"}
    job = dg.define_asset_job(
        REGISTRY_JOB,
        selection=dg.AssetSelection.checks(check),
        tags=tags,
        description="Reports the invalid monitoring config (no contract is checked until it is fixed)",
    )
    run_key = hashlib.sha256(str(error).encode()).hexdigest()[:16]

    @dg.sensor(
        name=CONFIG_ERROR_SENSOR,
        job_name=REGISTRY_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the config check once per distinct config error, so it fails right after the load",
    )
    def _sensor(_context: dg.SensorEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=run_key, tags=tags)  # Dagster launches one run per run_key

    schedule = no_overlap_schedule("floe_contract_registry_schedule", REGISTRY_JOB, 60, running=True, tags=tags)
    return dg.Definitions(assets=[spec], asset_checks=[check], jobs=[job], schedules=[schedule], sensors=[_sensor])
