"""One span per check execution (FR-034) and the W3C trace context carried onward (FR-035)."""

from __future__ import annotations

from opentelemetry import propagate, trace

TRACER_NAME = "floe.monitoring"


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the active span, for alert requests and OpenLineage events."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")
