"""Prometheus Alertmanager channel: `POST {url}/api/v2/alerts`, one alert per item, `endsAt` on recovery.

Alertmanager identifies an alert by its label set, so the labels are the incident identity
(alertname, contract, contract_version, violation_type, severity) and everything else goes into
annotations. Label names are legacy-valid (`[a-zA-Z_][a-zA-Z0-9_]*`), the rule Alertmanager 0.25
enforces. A firing alert's `endsAt` is its time + `firing_ttl_minutes` (24 h by default), because Alertmanager
would otherwise resolve it after its `resolve_timeout` (5 min), long before the router's dedup window
lets a persisting violation be re-sent. A resolved one carries the same labels with `endsAt` = the
time the check passed, which drops it from `GET /api/v2/alerts`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from floe_monitoring_defs.alerting.channels.base import ChannelConfig
from floe_monitoring_defs.alerting.channels.common import (
    USER_AGENT,
    PooledHttpChannel,
    context_summary,
    endpoint,
    http_post,
    http_url_problem,
    is_resolved,
    nothing_to_send,
    rfc3339,
    secret_problems,
    truncate,
)
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind, DeliveryResult, HealthStatus
from floe_monitoring_defs.models import ViolationSeverity, ensure_utc

CONTEXT_ANNOTATION_MAX = 2000

ALERTNAME_VIOLATION = "ContractViolation"
ALERTNAME_OPERATIONAL = "ContractMonitorFailure"


class AlertmanagerConfig(ChannelConfig):
    """`alerts.channels.<name>` of `type: alertmanager`."""

    url: str  # base URL, e.g. http://alertmanager:9093
    dagster_url: str | None = None  # Dagster UI base for generatorURL; else the batch's dagster_url
    # A firing alert's endsAt = event time + this. Alertmanager resolves an alert that has no endsAt
    # after its resolve_timeout (5 min by default), shorter than the router's dedup window, so a
    # persisting violation would look resolved; None leaves endsAt out (resolve_timeout applies).
    firing_ttl_minutes: float | None = 24 * 60


def _started_at(item: AlertItem, ends_at: datetime) -> datetime:
    """When a resolved alert started: metadata `started_at` if usable, else 1 s before it ended.

    Alertmanager answers 400 when endsAt is not after startsAt.
    """
    raw = item.event.metadata.get("started_at")
    if raw:
        try:
            started = ensure_utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        except ValueError:
            started = None
        if started is not None and started < ends_at:
            return started
    return ends_at - timedelta(seconds=1)


def generator_url(base: str | None, item: AlertItem) -> str | None:
    """Link to the asset in the Dagster UI (asset key = Iceberg namespace + table, metadata `table`)."""
    if not base:
        return None
    root = base.rstrip("/") + "/assets"
    meta = item.event.metadata
    if meta.get("asset_key"):  # slash-separated, as the Dagster UI shows it
        parts = meta["asset_key"].split("/")
    elif meta.get("table"):  # the Iceberg identifier namespace.table the runner records
        parts = meta["table"].split(".")
    else:
        return root
    return root + "/" + "/".join(quote(part, safe="") for part in parts if part)


def alert(
    item: AlertItem,
    batch: AlertBatch,
    dagster_url: str | None,
    force_resolved: bool = False,
    firing_ttl: timedelta | None = None,
) -> dict[str, Any]:
    """One `postableAlert` (api/v2/openapi.yaml v0.25.0)."""
    ev = item.event
    labels = {
        "alertname": ALERTNAME_OPERATIONAL if item.kind is AlertKind.OPERATIONAL else ALERTNAME_VIOLATION,
        "severity": ev.severity.value,
        "contract": ev.contract_name,
        "contract_version": ev.contract_version,
        "violation_type": ev.violation_type.value,
    }
    consumers = sorted(set(ev.affected_consumers) | set(batch.affected_consumers))
    description = (
        f"Contract {ev.contract_name} v{ev.contract_version} has a {ev.violation_type.value} violation "
        f"(severity: {ev.severity.value})"
    )
    if consumers:
        description += f". Affected consumers: {', '.join(consumers)}"
    annotations = {
        "summary": ev.message,
        "description": description,
        "violation_id": item.id,
        "element": ev.element or "",
        "expected_value": ev.expected_value or "",
        "actual_value": ev.actual_value or "",
        "affected_consumers": ",".join(consumers),
        # Root-cause context (FR-047) in words; Alertmanager sets no annotation limit, receivers (mail, chat) do.
        "context": truncate("\n".join(context_summary(item, force_resolved)), CONTEXT_ANNOTATION_MAX),
    }
    body: dict[str, Any] = {
        "labels": {k: v for k, v in labels.items() if v},  # Alertmanager drops empty label values anyway
        "annotations": {k: v for k, v in annotations.items() if v},
    }
    if is_resolved(item, force_resolved):
        ends_at = ensure_utc(ev.timestamp)
        body["startsAt"] = rfc3339(_started_at(item, ends_at))
        body["endsAt"] = rfc3339(ends_at)
    else:
        body["startsAt"] = rfc3339(ev.timestamp)
        if firing_ttl is not None:
            body["endsAt"] = rfc3339(ev.timestamp + firing_ttl)
    link = generator_url(dagster_url, item)
    if link:
        body["generatorURL"] = link
    return body


class AlertmanagerChannel(PooledHttpChannel):
    """Posts the batch's alerts to an Alertmanager (API v2) in one request."""

    action: ClassVar[str] = "posting to Alertmanager"
    type_name: ClassVar[str] = "alertmanager"
    Config: ClassVar[type[ChannelConfig]] = AlertmanagerConfig
    config: AlertmanagerConfig

    def validate_config(self) -> list[str]:
        problems = secret_problems(self.secrets, channel_type=self.type_name)
        for key, value in (("url", self.config.url), ("dagster_url", self.config.dagster_url)):
            problem = http_url_problem(key, value) if value is not None else None
            if problem:
                problems.append(problem)
        if self.config.timeout_seconds <= 0:
            problems.append("timeout_seconds: must be greater than 0")
        if self.config.firing_ttl_minutes is not None and self.config.firing_ttl_minutes <= 0:
            problems.append("firing_ttl_minutes: must be greater than 0 (or null to leave endsAt out)")
        return problems

    def alerts(self, batch: AlertBatch, force_resolved: bool = False) -> list[dict[str, Any]]:
        dagster_url = self.config.dagster_url or batch.dagster_url
        ttl_minutes = self.config.firing_ttl_minutes
        ttl = None if ttl_minutes is None else timedelta(minutes=ttl_minutes)
        out: list[dict[str, Any]] = []
        for item in batch.items:
            if is_resolved(item, force_resolved):
                # `severity` is a label, so an episode that escalated fired one alert per severity:
                # resolve the label set of every severity, not only the last one.
                for sev in ViolationSeverity:
                    variant = dataclasses.replace(item, event=item.event.model_copy(update={"severity": sev}))
                    out.append(alert(variant, batch, dagster_url, force_resolved, ttl))
            else:
                out.append(alert(item, batch, dagster_url, force_resolved, ttl))
        return out

    def health_check(self) -> HealthStatus:
        url = self.config.url.rstrip("/") + "/-/ready"
        try:
            response = httpx.get(url, timeout=self.config.timeout_seconds, headers={"User-Agent": USER_AGENT})
        except Exception as exc:  # a health check reports, it never raises
            return HealthStatus(False, f"{type(exc).__name__}: cannot reach {endpoint(url)}")
        if response.status_code != 200:
            return HealthStatus(False, f"HTTP {response.status_code} from {endpoint(url)}/-/ready")
        return HealthStatus(True, f"Alertmanager at {endpoint(url)} is ready")

    def _deliver(self, batch: AlertBatch, *, force_resolved: bool) -> DeliveryResult:
        if not batch.items:
            return nothing_to_send()
        body = json.dumps(self.alerts(batch, force_resolved), ensure_ascii=False).encode("utf-8")
        url = self.config.url.rstrip("/") + "/api/v2/alerts"
        started = time.perf_counter()
        result = http_post(self.http_client(), url, body, {"Content-Type": "application/json"}, self.redact)
        return DeliveryResult(
            ok=result.ok,
            status=result.status,
            error=result.error,
            retryable=result.retryable,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail={**result.detail, "delivered": str(len(batch.items) if result.ok else 0)},
        )
