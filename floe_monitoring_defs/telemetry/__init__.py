"""Telemetry: OpenTelemetry metrics (and, later, spans and OpenLineage events). No Dagster imports."""
