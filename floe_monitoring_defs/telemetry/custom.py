"""Custom metrics (FR-046): gauges defined in the monitoring config, fed from check evidence or from
a quality rule's measured value on every run that produces them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics

from floe_monitoring_defs.config import CustomMetricDefinition
from floe_monitoring_defs.telemetry.metrics import METER_NAME

log = logging.getLogger(__name__)


class CustomMetrics:
    def __init__(self, definitions: Sequence[CustomMetricDefinition]) -> None:
        meter = metrics.get_meter(METER_NAME)
        self.definitions = list(definitions)
        self.gauges = {
            d.name: meter.create_gauge(d.name, unit=d.unit, description=d.description) for d in self.definitions
        }

    @staticmethod
    def value(definition: CustomMetricDefinition, check_type: str, details: Mapping[str, Any]) -> float | None:
        src = definition.source
        raw: Any = None
        if src.evidence is not None:
            if src.check_type is None or src.check_type.value != check_type:
                return None
            raw = details.get(src.evidence)
        else:  # a rule's measure, from the `rules` evidence of the check that evaluates rules (quality)
            raw = next((r.get("value") for r in details.get("rules") or [] if r.get("rule") == src.quality_rule), None)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        return float(raw)

    def record(self, check_type: str, details: Mapping[str, Any], labels: Mapping[str, str]) -> None:
        for d in self.definitions:
            value = self.value(d, check_type, details)
            if value is not None:
                self.gauges[d.name].set(value, {k: labels[k] for k in d.labels if k in labels})
