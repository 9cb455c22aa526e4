"""Dagster adapters for alerting: the dispatch sensor and the run-failure sensor, over the typed resources of
defs/resources.py (`alert_channels`: every configured channel, `floe_store`). The routing, outbox and channels
themselves live in `alerting/` (no Dagster).

A channel that cannot be built never fails the load, a step or a tick: a wrong setting disables it (its resource
carries the reason, and no run can change that), an unset secret variable is looked for again at every step and
tick (`AlertChannelResource.setup_for_execution`). Either way its alerts are routed to it and held in the outbox
until it works (`AlertDispatcher(unavailable=...)`).

A sensor tick's delivery is bounded by `alerts.dispatch_budget_seconds` (a check step's eager attempt by
`alerts.eager_dispatch_budget_seconds`): it ends within the budget plus one channel timeout whatever the
receivers do, far inside Dagster's 60 s limit for a sensor evaluation.
"""

import dagster as dg

from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.config import AlertConfig
from floe_monitoring_defs.defs.resources import AlertChannelsResource, MonitoringStoreResource
from floe_monitoring_defs.models import ContractViolationEvent, ViolationSeverity, ViolationType, utcnow
from floe_monitoring_defs.pipeline import drain_spool
from floe_monitoring_defs.store import MonitoringStore

OPERATIONAL_CONTRACT = "floe-monitoring"
OPERATIONAL_VERSION = "0.1.0"


def dispatcher(store: MonitoringStore, alert_channels: AlertChannelsResource, config: AlertConfig) -> AlertDispatcher:
    """A dispatcher over the channels built for this step or tick; the others are `unavailable` (held)."""
    return AlertDispatcher(store.outbox, alert_channels.ready(), config, unavailable=alert_channels.unavailable())


def dispatch_sensor(config: AlertConfig) -> dg.SensorDefinition:
    @dg.sensor(
        name="alert_dispatch_sensor",
        minimum_interval_seconds=config.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Routes and delivers what the alert outbox holds: dedup, rate limit, retries with backoff",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, floe_store: MonitoringStoreResource, alert_channels: AlertChannelsResource
    ) -> dg.SkipReason:
        drain_spool(floe_store.store())  # what was detected while the store was down enters the outbox first
        report = dispatcher(floe_store.store(), alert_channels, config).dispatch()
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
