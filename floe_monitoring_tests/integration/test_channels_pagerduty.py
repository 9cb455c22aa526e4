"""PagerDuty Events API v2 channel against a loopback receiver that validates every request (and its
own 202 answer) with openapi-core against the official OpenAPI file."""

import pytest

from floe_monitoring_defs.alerting.channels.base import AlertChannel, build_channel
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.models import ViolationSeverity, ViolationType
from floe_monitoring_tests import alerting_receivers
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, Reply, alert_batch, alert_item, pagerduty_responder

pytestmark = pytest.mark.integration
http_recorder = alerting_receivers.http_recorder  # fixture

ROUTING_KEY = "f1oeR0utingKey0123456789abcdefAB"


def pagerduty(recorder: HTTPRecorder, key: str = ROUTING_KEY) -> AlertChannel:
    return build_channel(
        "pagerduty",
        {"type": "pagerduty", "routing_key_env": "FLOE_TEST_PD_KEY", "url": recorder.url_for("/v2/enqueue")},
        environ={"FLOE_TEST_PD_KEY": key},
    )


def test_trigger_then_resolve_share_the_dedup_key(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = pagerduty_responder(ROUTING_KEY)
    critical = alert_item(severity=ViolationSeverity.CRITICAL, message="orders is 30h old")
    drift = alert_item(
        violation_type=ViolationType.SCHEMA_DRIFT,
        severity=ViolationSeverity.WARNING,
        element="amount",
        metadata={"drift": "added"},
    )
    channel = pagerduty(http_recorder)

    result = channel.send(alert_batch(critical, drift, dagster_url="http://dagster:3000"))
    assert result.ok and result.status == "delivered", result
    assert result.detail["delivered"] == "2"
    resolved = channel.resolve(alert_batch(alert_item(AlertKind.RESOLVED, severity=ViolationSeverity.CRITICAL)))
    assert resolved.ok, resolved
    assert http_recorder.errors == []

    trigger, trigger2, resolve = (r.json() for r in http_recorder.requests)
    assert all(r.status == 202 for r in http_recorder.requests)
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == "orders:freshness"
    assert trigger["routing_key"] == ROUTING_KEY and trigger["client_url"] == "http://dagster:3000"
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "floe-contract-monitor"
    assert payload["summary"] == "[CRITICAL] orders freshness: orders is 30h old"
    assert payload["custom_details"]["priority"] == "P1"
    assert payload["custom_details"]["violation_id"] == critical.id
    assert payload["custom_details"]["affected_consumers"] == ["finance-dashboard", "ml-churn"]
    assert trigger2["dedup_key"] == "orders:schema_drift" and trigger2["payload"]["class"] == "added"
    assert trigger2["payload"]["custom_details"]["priority"] == "P3"
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "orders:freshness"}


def test_a_repeat_updates_the_open_incident_with_the_same_key(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = pagerduty_responder(ROUTING_KEY)
    channel = pagerduty(http_recorder)
    assert channel.send(alert_batch(alert_item(severity=ViolationSeverity.ERROR))).ok
    assert channel.send(alert_batch(alert_item(severity=ViolationSeverity.CRITICAL))).ok
    keys = [r.json()["dedup_key"] for r in http_recorder.requests]
    priorities = [r.json()["payload"]["custom_details"]["priority"] for r in http_recorder.requests]
    assert keys == ["orders:freshness", "orders:freshness"] and priorities == ["P2", "P1"]


def test_wrong_routing_key_is_rejected_and_not_shown(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = pagerduty_responder(ROUTING_KEY)
    wrong = "WRONGkey0123456789abcdefABCDEF00"
    result = pagerduty(http_recorder, key=wrong).send(alert_batch())
    assert not result.ok and result.status == "rejected" and not result.retryable
    assert result.error is not None and "HTTP 400" in result.error and wrong not in repr(result)


def test_receiver_echoing_the_key_is_redacted(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = lambda r: Reply(400, b"bad event: " + r.body)  # a receiver that echoes the request
    result = pagerduty(http_recorder).send(alert_batch())
    assert result.error is not None and "***" in result.error and ROUTING_KEY not in repr(result)


def test_throttled_is_retryable(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = lambda _r: Reply.json(429, {"status": "throttle event", "message": "slow down"})
    result = pagerduty(http_recorder).send(alert_batch(alert_item(), alert_item()))
    assert not result.ok and result.retryable and result.status == "http_429"
