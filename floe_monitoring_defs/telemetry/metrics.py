"""The monitor's OpenTelemetry instruments, named as Prometheus exposition shows them (DESIGN).

Instruments come from the global MeterProvider, which is a no-op until a provider is configured,
so recording is always safe and costs next to nothing when telemetry is off.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from opentelemetry import metrics

METER_NAME = "floe.monitoring"


class MonitorMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self.violations = meter.create_counter(
            "floe_contract_violations", unit="1", description="Contract violations detected"
        )
        self.freshness = meter.create_gauge(
            "floe_contract_freshness_seconds", unit="s", description="Age of the newest data of a contract table"
        )
        self.availability = meter.create_gauge(
            "floe_contract_availability_ratio", unit="1", description="Rolling 24 h availability, 0..1"
        )
        self.quality = meter.create_gauge(
            "floe_contract_quality_score", unit="1", description="Weighted quality score, 0..1"
        )
        self.duration = meter.create_histogram(
            "floe_contract_check_duration_seconds", unit="s", description="Duration of one check execution"
        )
        self.delivery_failures = meter.create_counter(
            "floe_alert_delivery_failures", unit="1", description="Alert deliveries that failed, per channel"
        )
        self.suppressed = meter.create_counter(
            "floe_alerts_suppressed", unit="1", description="Alerts suppressed by dedup or rate limit"
        )
        self.engine_unavailable = meter.create_counter(
            "floe_quality_engine_unavailable",
            unit="1",
            description="Quality checks skipped because the quality engine could not start",
        )

    def record_violation(self, contract: str, check_type: str, severity: str) -> None:
        self.violations.add(1, {"contract": contract, "type": check_type, "severity": severity})

    def record_duration(self, contract: str, check_type: str, seconds: float) -> None:
        self.duration.record(seconds, {"contract": contract, "check_type": check_type})

    def set_gauge(self, check_type: str, contract: str, value: float, attrs: Mapping[str, str] | None = None) -> None:
        gauges = {"freshness": self.freshness, "availability": self.availability, "quality": self.quality}
        gauge = gauges.get(check_type)
        if gauge is not None:
            gauge.set(value, {"contract": contract, **(attrs or {})})


@functools.cache
def monitor_metrics() -> MonitorMetrics:
    """Instruments bound to the global provider (cached: create once per process)."""
    return MonitorMetrics(metrics.get_meter(METER_NAME))
