"""CloudEvents 1.0 webhook channel (FR-031/032): one structured-mode HTTP request per alert.

Each alert item becomes one CloudEvent, `Content-Type: application/cloudevents+json`, with
`id` = the alert's stable id (receivers drop repeats on it), `source` = `floe-contract-monitor` and
`type` `floe.contract.violation` (`.resolved` for a recovery, `floe.monitor.operational` when the
monitor itself failed). Batch mode (`application/cloudevents-batch+json`: one request per batch, the
body a JSON array of the same events) is only for receivers that ask for it (`batch: true`); otherwise a
batch is sent as one request per event within one `send`, over the channel's pooled connections.

With `secret_env`, each request carries `X-Floe-Signature: sha256=<hex HMAC-SHA256(secret, body)>`
over the exact body bytes, so a receiver can check it before parsing. The JSON is built here: the
cloudevents SDK is only a test dependency (the receivers in the tests parse with it).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import time
from typing import Any, ClassVar

from floe_monitoring_defs.alerting.channels.base import ChannelConfig
from floe_monitoring_defs.alerting.channels.common import (
    SOURCE,
    PooledHttpChannel,
    context_of,
    deliver_each,
    http_post,
    http_url_problem,
    is_resolved,
    metadata_without_context,
    nothing_to_send,
    rfc3339,
    secret_problems,
)
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind, DeliveryResult

CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
TYPE_VIOLATION = "floe.contract.violation"
TYPE_RESOLVED = "floe.contract.violation.resolved"
TYPE_OPERATIONAL = "floe.monitor.operational"


class WebhookConfig(ChannelConfig):
    """`alerts.channels.<name>` of `type: webhook`; the HMAC secret comes from `secret_env`."""

    url: str
    signature_header: str = "X-Floe-Signature"
    batch: bool = False  # one request per batch (application/cloudevents-batch+json), for receivers asking for it


def event_type(item: AlertItem, force_resolved: bool = False) -> str:
    if is_resolved(item, force_resolved):
        return TYPE_RESOLVED
    return TYPE_OPERATIONAL if item.kind is AlertKind.OPERATIONAL else TYPE_VIOLATION


def cloud_event(item: AlertItem, batch: AlertBatch, force_resolved: bool = False) -> dict[str, Any]:
    """The structured-mode CloudEvent of one alert (spec 6.4; data keys in camelCase)."""
    ev = item.event
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": item.id,
        "source": SOURCE,
        "type": event_type(item, force_resolved),
        "time": rfc3339(ev.timestamp),
        "datacontenttype": "application/json",
    }
    if ev.contract_name:  # subject must be non-empty when present
        event["subject"] = ev.contract_name
    event["data"] = {
        "contractName": ev.contract_name,
        "contractVersion": ev.contract_version,
        "violationType": ev.violation_type.value,
        "severity": ev.severity.value,
        "message": ev.message,
        "element": ev.element,
        "expectedValue": ev.expected_value,
        "actualValue": ev.actual_value,
        "timestamp": rfc3339(ev.timestamp),
        "affectedConsumers": list(ev.affected_consumers or batch.affected_consumers),
        "checkDurationSeconds": ev.check_duration_seconds,
        "metadata": metadata_without_context(ev.metadata),
    }
    context = context_of(item, force_resolved)
    if context is not None:  # the root-cause context (FR-047), as the object it is
        event["data"]["context"] = context
    return event


def sign(secret: str, body: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(PooledHttpChannel):
    """POSTs each alert as a CloudEvent (structured mode) to `url`."""

    action: ClassVar[str] = "sending CloudEvents"
    type_name: ClassVar[str] = "webhook"
    Config: ClassVar[type[ChannelConfig]] = WebhookConfig
    config: WebhookConfig

    def validate_config(self) -> list[str]:
        problems = secret_problems(self.secrets, optional=["secret"], channel_type=self.type_name)
        url_problem = http_url_problem("url", self.config.url)
        if url_problem:
            problems.append(url_problem)
        header = self.config.signature_header
        if not header or not all(c.isalnum() or c == "-" for c in header):
            problems.append("signature_header: must be an HTTP header name (letters, digits, '-')")
        if self.config.timeout_seconds <= 0:
            problems.append("timeout_seconds: must be greater than 0")
        return problems

    def body(self, item: AlertItem, batch: AlertBatch, force_resolved: bool = False) -> bytes:
        return json.dumps(cloud_event(item, batch, force_resolved), ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )

    def batch_body(self, batch: AlertBatch, force_resolved: bool = False) -> bytes:
        """The batch-mode body: a JSON array of the batch's CloudEvents."""
        events = [cloud_event(item, batch, force_resolved) for item in batch.items]
        return json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _deliver(self, batch: AlertBatch, *, force_resolved: bool) -> DeliveryResult:
        if not batch.items:
            return nothing_to_send()
        started = time.perf_counter()
        client = self.http_client()

        def post(body: bytes, content_type: str) -> DeliveryResult:
            headers = {"Content-Type": content_type}
            secret = self.secrets.get("secret")
            if secret is not None:
                headers[self.config.signature_header] = sign(secret.get_secret_value(), body)
            return http_post(client, self.config.url, body, headers, self.redact)

        if self.config.batch:
            result = post(self.batch_body(batch, force_resolved), BATCH_CONTENT_TYPE)
            delivered = len(batch.items) if result.ok else 0
            return dataclasses.replace(
                result,
                latency_ms=(time.perf_counter() - started) * 1000,
                detail={**result.detail, "delivered": str(delivered)},
            )
        requests = [
            (item.id, functools.partial(post, self.body(item, batch, force_resolved), CONTENT_TYPE))
            for item in batch.items
        ]
        return deliver_each(requests, started, batch.send_by)
