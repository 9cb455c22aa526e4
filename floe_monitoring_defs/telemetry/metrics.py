"""The monitor's OpenTelemetry instruments, named as Prometheus exposition shows them (DESIGN).

Instruments come from the global MeterProvider, which is a no-op until a provider is configured,
so recording is always safe and costs next to nothing when telemetry is off.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

from opentelemetry import metrics

METER_NAME = "floe.monitoring"


@dataclass(frozen=True)
class GaugeSpec:
    """A gauge a check kind sets to its measured value after each run (e.g. the data's age)."""

    name: str
    unit: str
    description: str


class MonitorMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self._meter = meter
        self._gauges: dict[str, metrics._Gauge] = {}  # the synchronous Gauge (exported as _Gauge by the API)
        self._lock = threading.Lock()
        self.violations = meter.create_counter(
            "floe_contract_violations", unit="1", description="Contract violations detected"
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

        # The local spool of check records the store could not take (store/spool.py); `reason` of a drop:
        # max_files, max_bytes, max_age, unreadable, rejected_by_store, spool_unwritable.
        self.spool_spooled = meter.create_counter(
            "floe_spool_spooled", unit="1", description="Check records spooled locally because the store was down"
        )
        self.spool_drained = meter.create_counter(
            "floe_spool_drained", unit="1", description="Spooled check records moved into the store"
        )
        self.spool_dropped = meter.create_counter(
            "floe_spool_dropped", unit="1", description="Check records lost: past the spool's bounds, or unusable"
        )

    # The spool's counters (store/spool.py `SpoolCounters`; the store cannot import telemetry).
    def spooled(self, count: int) -> None:
        self.spool_spooled.add(count)

    def drained(self, count: int) -> None:
        self.spool_drained.add(count)

    def dropped(self, count: int, reason: str) -> None:
        self.spool_dropped.add(count, {"reason": reason})

    def record_violation(self, contract: str, check_type: str, severity: str) -> None:
        self.violations.add(1, {"contract": contract, "type": check_type, "severity": severity})

    def record_duration(self, contract: str, check_type: str, seconds: float) -> None:
        self.duration.record(seconds, {"contract": contract, "check_type": check_type})

    def set_gauge(self, spec: GaugeSpec, contract: str, value: float) -> None:
        """Set a check kind's gauge (created on first use) for one contract."""
        with self._lock:
            gauge = self._gauges.get(spec.name)
            if gauge is None:
                gauge = self._gauges[spec.name] = self._meter.create_gauge(
                    spec.name, unit=spec.unit, description=spec.description
                )
        gauge.set(value, {"contract": contract})


@functools.cache
def monitor_metrics() -> MonitorMetrics:
    """Instruments bound to the global provider (cached: create once per process)."""
    return MonitorMetrics(metrics.get_meter(METER_NAME))
