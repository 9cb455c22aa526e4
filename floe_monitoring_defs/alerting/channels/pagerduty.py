"""PagerDuty Events API v2: the incident channel (FR-043..045).

One event per alert item, `dedup_key` = `contract:type` (the incident identity), so a repeat of an
open violation is added to the open PagerDuty alert instead of paging again, and a recovery
(`event_action: resolve` with the same key) closes it. Priority follows the spec's incident mapping
CRITICAL->P1, ERROR->P2, WARNING->P3, INFO->P4 (in `custom_details`; PagerDuty's own priorities are
account-specific). The routing key is the credential: it is only read from `routing_key_env` and
never appears in an error. PagerDuty answers 202 when it has queued an event.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from typing import Any, ClassVar

from floe_monitoring_defs.alerting.channels.base import ChannelConfig
from floe_monitoring_defs.alerting.channels.common import (
    SOURCE,
    PooledHttpChannel,
    context_of,
    context_summary,
    deliver_each,
    http_post,
    http_url_problem,
    is_resolved,
    nothing_to_send,
    rfc3339,
    secret_problems,
    truncate,
)
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, DeliveryResult
from floe_monitoring_defs.models import ViolationSeverity

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
PRIORITY = {
    ViolationSeverity.CRITICAL: "P1",
    ViolationSeverity.ERROR: "P2",
    ViolationSeverity.WARNING: "P3",
    ViolationSeverity.INFO: "P4",
}


class PagerDutyConfig(ChannelConfig):
    """`alerts.channels.<name>` of `type: pagerduty`; the integration key comes from `routing_key_env`."""

    url: str = DEFAULT_URL


def dedup_key(item: AlertItem) -> str:
    """`contract:type`, shortened deterministically past PagerDuty's 255 characters."""
    key = item.dedup_key
    if len(key) <= DEDUP_KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"{key[: DEDUP_KEY_MAX - len(digest) - 1]}~{digest}"


def trigger_event(item: AlertItem, batch: AlertBatch, routing_key: str) -> dict[str, Any]:
    ev = item.event
    consumers = sorted(set(ev.affected_consumers) | set(batch.affected_consumers))
    summary = f"[{ev.severity.value.upper()}] {ev.contract_name} {ev.violation_type.value}: {ev.message}"
    payload: dict[str, Any] = {
        "summary": truncate(" ".join(summary.split()), SUMMARY_MAX),
        "source": SOURCE,
        "severity": ev.severity.value,  # critical / error / warning / info: PagerDuty's own four values
        "timestamp": rfc3339(ev.timestamp),
        "component": ev.contract_name,
        "group": ev.violation_type.value,
        "custom_details": {
            "priority": PRIORITY[ev.severity],
            "kind": item.kind.value,
            "contract_version": ev.contract_version,
            "message": ev.message,
            "element": ev.element,
            "expected": ev.expected_value,
            "actual": ev.actual_value,
            "affected_consumers": consumers,
            "violation_id": item.id,
        },
    }
    context = context_of(item)
    if context is not None:  # root-cause context (FR-047): bounded (8 KB by default), far below PagerDuty's 512 KB
        payload["custom_details"]["context_summary"] = context_summary(item)
        payload["custom_details"]["context"] = context
    event_class = ev.metadata.get("drift") or ev.element
    if event_class:
        payload["class"] = event_class
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(item),
        "payload": payload,
        "client": SOURCE,
    }
    if batch.dagster_url:
        event["client_url"] = batch.dagster_url
    return event


def resolve_event(item: AlertItem, routing_key: str) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(item)}


class PagerDutyChannel(PooledHttpChannel):
    """Triggers and resolves PagerDuty alerts, one Events API v2 request per item."""

    action: ClassVar[str] = "sending PagerDuty events"
    type_name: ClassVar[str] = "pagerduty"
    Config: ClassVar[type[ChannelConfig]] = PagerDutyConfig
    config: PagerDutyConfig

    def validate_config(self) -> list[str]:
        problems = secret_problems(self.secrets, required=["routing_key"], channel_type=self.type_name)
        problem = http_url_problem("url", self.config.url)
        if problem:
            problems.append(problem)
        if self.config.timeout_seconds <= 0:
            problems.append("timeout_seconds: must be greater than 0")
        return problems

    def event(self, item: AlertItem, batch: AlertBatch, force_resolved: bool = False) -> dict[str, Any]:
        key = self.secrets["routing_key"].get_secret_value()
        if is_resolved(item, force_resolved):
            return resolve_event(item, key)
        return trigger_event(item, batch, key)

    def _deliver(self, batch: AlertBatch, *, force_resolved: bool) -> DeliveryResult:
        if not batch.items:
            return nothing_to_send()
        started = time.perf_counter()
        client = self.http_client()

        def post(item: AlertItem) -> DeliveryResult:
            body = json.dumps(self.event(item, batch, force_resolved), ensure_ascii=False).encode("utf-8")
            return http_post(client, self.config.url, body, {"Content-Type": "application/json"}, self.redact)

        requests = [(item.id, functools.partial(post, item)) for item in batch.items]
        return deliver_each(requests, started, batch.send_by)
