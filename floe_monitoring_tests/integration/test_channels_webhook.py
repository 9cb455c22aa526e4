"""CloudEvents webhook channel against a loopback receiver that parses with the cloudevents SDK,
validates with the official JSON Schema and verifies the HMAC signature."""

import hashlib
import hmac

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from floe_monitoring_defs.alerting.channels.base import AlertChannel, build_channel
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.models import ViolationType
from floe_monitoring_tests import alerting_receivers
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, alert_batch, alert_item, cloudevents_responder

pytestmark = pytest.mark.integration
http_recorder = alerting_receivers.http_recorder  # fixture

SECRET = "whsec-Th1s-is-the-HMAC-secret"


def webhook(recorder: HTTPRecorder, *, secret: bool = True, **spec: object) -> AlertChannel:
    config: dict[str, object] = {"type": "webhook", "url": recorder.url_for("/floe/events"), **spec}
    if secret:
        config["secret_env"] = "FLOE_TEST_WEBHOOK_SECRET"
    return build_channel("ops-webhook", config, environ={"FLOE_TEST_WEBHOOK_SECRET": SECRET})


def test_each_alert_is_one_signed_structured_cloudevent(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = cloudevents_responder(secret=SECRET)
    items = (
        alert_item(),
        alert_item(violation_type=ViolationType.SCHEMA_DRIFT, element="amount"),
        alert_item(AlertKind.OPERATIONAL, violation_type=ViolationType.AVAILABILITY),
    )
    result = webhook(http_recorder).send(alert_batch(*items))

    assert result.ok and result.status == "delivered", result
    assert http_recorder.errors == []
    requests = http_recorder.requests
    assert len(requests) == 3 and all(r.path == "/floe/events" and r.method == "POST" for r in requests)
    types = []
    for request, item in zip(requests, items, strict=True):
        assert request.headers["content-type"] == "application/cloudevents+json"
        expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-floe-signature"] == expected
        event = from_http_event(HTTPMessage(request.headers, request.body))
        assert event.get_id() == item.id
        assert event.get_source() == "floe-contract-monitor"
        assert event.get_subject() == "orders"
        data = event.get_data()
        assert isinstance(data, dict), data
        assert data["contractName"] == "orders" and data["contractVersion"] == "1.2.0"
        assert data["violationType"] == item.event.violation_type.value and data["severity"] == "error"
        assert data["affectedConsumers"] == ["finance-dashboard", "ml-churn"]
        assert data["element"] == item.event.element and data["checkDurationSeconds"] == 0.042
        types.append(event.get_type())
    assert types == ["floe.contract.violation", "floe.contract.violation", "floe.monitor.operational"]
    assert result.detail["delivered"] == "3"


def test_resolve_sends_resolved_events(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = cloudevents_responder(secret=SECRET)
    item = alert_item(AlertKind.RESOLVED)
    assert webhook(http_recorder).resolve(alert_batch(item)).ok
    (request,) = http_recorder.requests
    event = from_http_event(HTTPMessage(request.headers, request.body))
    assert event.get_type() == "floe.contract.violation.resolved" and event.get_id() == item.id
    assert http_recorder.errors == []


def test_without_a_secret_there_is_no_signature(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = cloudevents_responder()
    assert webhook(http_recorder, secret=False, signature_header="X-Sig").send(alert_batch()).ok
    assert "x-floe-signature" not in http_recorder.requests[0].headers
    assert "x-sig" not in http_recorder.requests[0].headers


def test_custom_signature_header(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = cloudevents_responder(secret=SECRET, signature_header="X-Hub-Signature-256")
    assert webhook(http_recorder, signature_header="X-Hub-Signature-256").send(alert_batch()).ok
    assert http_recorder.errors == []


def test_a_receiver_with_another_secret_rejects_and_nothing_leaks(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = cloudevents_responder(secret="some-other-secret")
    result = webhook(http_recorder).send(alert_batch())
    assert not result.ok and result.status == "rejected" and not result.retryable
    assert http_recorder.errors == ["bad or missing X-Floe-Signature"]
    assert result.error is not None and "HTTP 400" in result.error and SECRET not in repr(result)


def test_partial_failure_fails_the_batch_and_says_which(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = cloudevents_responder(secret=SECRET)
    http_recorder.fail(503, count=1)
    items = (alert_item(), alert_item(), alert_item())
    result = webhook(http_recorder).send(alert_batch(*items))
    assert not result.ok and result.retryable and result.status == "http_503"
    assert result.detail[f"item:{items[0].id}"] == "http_503"
    assert result.detail[f"item:{items[1].id}"] == result.detail[f"item:{items[2].id}"] == "delivered"
    assert (
        result.error is not None
        and result.error.startswith("1 of 3 events not delivered")
        and items[0].id in (result.error)
    )
    assert [r.status for r in http_recorder.requests] == [503, 202, 202]


def test_a_hung_receiver_stops_the_cycle_after_one_timeout(http_recorder: HTTPRecorder) -> None:
    http_recorder.hang()
    items = (alert_item(), alert_item(), alert_item())
    result = webhook(http_recorder, timeout_seconds=0.5).send(alert_batch(*items))
    assert not result.ok and result.retryable and result.status == "timeout"
    assert len(http_recorder.requests) == 1
    assert result.detail[f"item:{items[2].id}"] == "not_attempted" and result.latency_ms < 1500
