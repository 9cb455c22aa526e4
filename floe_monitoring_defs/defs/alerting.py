"""Dagster adapters for alerting: one resource per configured channel, the dispatch sensor and the
run-failure sensor. The routing, outbox and channels themselves live in `alerting/` (no Dagster).

A channel that cannot be built never fails the load: a wrong setting disables it (its resource carries the
reason, and no run can change that), an unset secret variable is looked for again at every dispatch. Either
way its alerts are routed to it and held in the outbox until it works (`AlertDispatcher(unavailable=...)`).

The channels built are kept for the life of the process (`alerting.delivery.ChannelCache`), as long as their
settings and secrets stay the same, so their pooled HTTP clients, connections and circuit breakers last across
sensor ticks and check steps; a changed channel replaces (and closes) the kept one, and all are closed at exit.
A sensor tick's delivery is bounded by `alerts.dispatch_budget_seconds` (a check step's eager attempt by
`alerts.eager_dispatch_budget_seconds`): it ends within the budget plus one channel timeout whatever the
receivers do, far inside Dagster's 60 s limit for a sensor evaluation.
"""

import atexit
import json
from collections.abc import Sequence
from typing import Any

import dagster as dg

from floe_monitoring_defs.alerting.channels.base import (
    AlertChannel,
    ChannelConfigError,
    ChannelProblem,
    build_channel,
    open_channels,
)
from floe_monitoring_defs.alerting.delivery import ChannelCache
from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.config import AlertConfig, channel_key
from floe_monitoring_defs.defs.resources import MonitoringStoreResource
from floe_monitoring_defs.models import ContractViolationEvent, ViolationSeverity, ViolationType, utcnow
from floe_monitoring_defs.pipeline import drain_spool
from floe_monitoring_defs.store import MonitoringStore

OPERATIONAL_CONTRACT = "floe-monitoring"
OPERATIONAL_VERSION = "0.1.0"

# Channels kept across sensor ticks and check steps of this process (pooled clients, circuit breakers).
CHANNELS = ChannelCache()
atexit.register(CHANNELS.close)


class AlertChannelResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # generic only for resource factories
    """One configured alert channel. `spec_json` holds no secret: secrets are named by `*_env` keys and
    read from the environment into SecretStr when the channel is built, at run time.

    `disabled_reason`: set at load when the channel's own settings are wrong (then `spec_json` is `{}`: a wrong
    setting may be a secret pasted where a variable's name belongs, and resource config shows in the UI)."""

    channel_name: str
    spec_json: str
    disabled_reason: str = ""

    def channel(self) -> AlertChannel:
        """The channel built from the environment of this process; ChannelConfigError when it cannot be."""
        if self.disabled_reason:
            raise ChannelConfigError(self.disabled_reason)
        return build_channel(self.channel_name, json.loads(self.spec_json))


def resource_key(channel_name: str) -> str:
    return "alert_channel_" + channel_key(channel_name)


def channel_resources(config: AlertConfig) -> tuple[dict[str, AlertChannelResource], dict[str, ChannelProblem]]:
    """A resource for every configured channel, and the problem of each one that cannot be built now. A bad
    channel never fails the load: it is disabled (wrong settings) or waits for its secret (unset variable)."""
    _, problems = open_channels(config.channels)
    out: dict[str, AlertChannelResource] = {}
    for name, spec in config.channels.items():
        problem = problems.get(name)
        wrong = problem is not None and problem.variable is None
        out[resource_key(name)] = AlertChannelResource(
            channel_name=name,
            spec_json="{}" if wrong else json.dumps(spec, sort_keys=True, default=str),
            disabled_reason=problem.reason if problem is not None and wrong else "",
        )
    return out, problems


def channels_from(resources: Any, keys: Sequence[str]) -> tuple[dict[str, AlertChannel], dict[str, str]]:
    """The channels that can be built now, and channel name -> why for the others."""
    channels: dict[str, AlertChannel] = {}
    unavailable: dict[str, str] = {}
    for key in keys:
        res: AlertChannelResource = getattr(resources, key)
        try:
            ch = res.channel()
        except ChannelConfigError as exc:
            unavailable[res.channel_name] = str(exc)
            continue
        channels[ch.name] = CHANNELS.reuse(ch)
    return channels, unavailable


def dispatcher(store: MonitoringStore, resources: Any, keys: Sequence[str], config: AlertConfig) -> AlertDispatcher:
    channels, unavailable = channels_from(resources, keys)
    return AlertDispatcher(store.outbox, channels, config, unavailable=unavailable)


def dispatch_sensor(keys: Sequence[str], config: AlertConfig) -> dg.SensorDefinition:
    @dg.sensor(
        name="alert_dispatch_sensor",
        minimum_interval_seconds=config.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={"floe_store", *keys},
        description="Routes and delivers what the alert outbox holds: dedup, rate limit, retries with backoff",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        floe_store: MonitoringStoreResource = context.resources.floe_store
        drain_spool(floe_store.store())  # what was detected while the store was down enters the outbox first
        report = dispatcher(floe_store.store(), context.resources, keys, config).dispatch()
        if report.failed or report.held:
            context.log.warning(f"alert delivery: {report.summary()}")
        return dg.SkipReason(report.summary())

    return _sensor


def operational_event(job_name: str, run_id: str, message: str) -> ContractViolationEvent:
    return ContractViolationEvent(
        contract_name=OPERATIONAL_CONTRACT,
        contract_version=OPERATIONAL_VERSION,
        violation_type=ViolationType.AVAILABILITY,
        severity=ViolationSeverity.ERROR,
        message=f"Monitoring run {run_id} of {job_name} failed: {message}"[:1000],
        timestamp=utcnow(),
        check_duration_seconds=0.0,
        metadata={"job": job_name, "run_id": run_id, "operational": "run_failure"},
    )


FAILURE_SENSOR = "monitoring_run_failure_sensor"
FAILURE_SENSOR_DESCRIPTION = "Turns a failed monitoring run into an operational alert through the same router"


def queue_run_failure(context: dg.RunFailureSensorContext, floe_store: MonitoringStoreResource) -> None:
    """The body of `monitoring_run_failure_sensor` (a `run_failure_sensor` over the monitoring jobs): a failed
    monitoring run becomes an OPERATIONAL alert in the outbox, which alert_dispatch_sensor routes through the
    same rules, dedup and retries as any violation."""
    run = context.dagster_run
    first_line = (context.failure_event.message or "run failed").splitlines()[0]
    floe_store.store().outbox.enqueue(
        AlertKind.OPERATIONAL.value,
        operational_event(run.job_name, run.run_id, first_line),
        utcnow(),
        alert_id=_run_alert_id(run.run_id),
    )
    context.log.info(f"operational alert queued for failed run {run.run_id} of {run.job_name}")


def _run_alert_id(run_id: str) -> str:
    """One alert id per failed run, so a re-evaluated sensor tick cannot enqueue it twice."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"floe-monitoring:run-failure:{run_id}"))
