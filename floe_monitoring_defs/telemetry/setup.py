"""OpenTelemetry providers from the standard `OTEL_*` environment (FR-036); no-op by default.

- `OTEL_EXPORTER_OTLP_ENDPOINT` (or the `_METRICS_` / `_TRACES_` variants) set: metrics and spans are
  pushed with the OTLP/HTTP exporters (the way to go with Dagster, whose runs are short processes).
- `OTEL_EXPORTER_PROMETHEUS_PORT` set (host `OTEL_EXPORTER_PROMETHEUS_HOST`, default 127.0.0.1): a
  Prometheus exposition endpoint in this process, on a private registry.
- `OTEL_SDK_DISABLED=true`: nothing, whatever else is set.
Histogram buckets are in seconds. Configuring twice in one process is a no-op.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace

log = logging.getLogger(__name__)

SERVICE_NAME = "floe-contract-monitor"
DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_lock = threading.Lock()


@dataclass
class TelemetryState:
    metrics_exporters: list[str] = field(default_factory=list)
    tracing: bool = False
    prometheus_registry: Any = None
    prometheus_server: Any = None


_state: TelemetryState | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def configure_telemetry(environ: Mapping[str, str] | None = None) -> TelemetryState:
    """Install meter/tracer providers once per process according to the environment."""
    global _state
    with _lock:
        if _state is not None:
            return _state
        env = os.environ if environ is None else environ
        state = TelemetryState()
        if _truthy(env.get("OTEL_SDK_DISABLED")):
            _state = state
            return state
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
        readers: list[MetricReader] = []
        otlp = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if otlp or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(timeout=_timeout(env))))
            state.metrics_exporters.append("otlp")
        port = env.get("OTEL_EXPORTER_PROMETHEUS_PORT")
        if port:
            reader = _prometheus(state, env.get("OTEL_EXPORTER_PROMETHEUS_HOST") or "127.0.0.1", int(port))
            if reader is not None:
                readers.append(reader)
                state.metrics_exporters.append("prometheus")
        if readers:
            views = [
                View(
                    instrument_name="floe_contract_check_duration_seconds",
                    aggregation=ExplicitBucketHistogramAggregation(boundaries=DURATION_BUCKETS_SECONDS),
                )
            ]
            metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers, views=views))
        if otlp or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider = TracerProvider(resource=resource)
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=_timeout(env))))
            trace.set_tracer_provider(provider)
            state.tracing = True
        if state.metrics_exporters or state.tracing:
            log.info(
                "telemetry: metrics via %s, tracing %s",
                state.metrics_exporters or "nothing",
                "on" if state.tracing else "off",
            )
        _state = state
        return state


def _timeout(env: Mapping[str, str]) -> float:
    """OTLP export timeout: OTEL_EXPORTER_OTLP_TIMEOUT (ms, the standard's unit), else 3 s (not the SDK's
    10 s: a Dagster run process flushes at exit, and a hung collector must not hold each run for long)."""
    raw = env.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        return float(raw) / 1000.0 if raw else 3.0
    except ValueError:
        return 3.0


def _prometheus(state: TelemetryState, host: str, port: int) -> Any:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:  # another process of this code location serves it already
        log.warning("Prometheus endpoint %s:%s not started: %s", host, port, exc.strerror)
        return None
    state.prometheus_registry, state.prometheus_server = registry, server
    return PrometheusMetricReader(registry=registry)
