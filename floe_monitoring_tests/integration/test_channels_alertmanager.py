"""Alertmanager channel against the real Alertmanager 0.25 (Debian package) on 127.0.0.1.

The channel posts through a loopback validating proxy: each request body must satisfy the v0.25.0
OpenAPI `postableAlerts` definition and the 0.25 label-name rule before it is forwarded, so both the
schema and the real server judge what was on the wire.
"""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from floe_monitoring_defs.alerting.channels.base import AlertChannel, build_channel
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.models import ViolationSeverity, ViolationType, utcnow
from floe_monitoring_tests import alerting_receivers
from floe_monitoring_tests.alerting_receivers import (
    LEGACY_LABEL_NAME,
    AlertmanagerProcess,
    HTTPRecorder,
    ReceiverRejected,
    RecordedRequest,
    Reply,
    alert_batch,
    alert_item,
    alertmanager_validator,
)

pytestmark = pytest.mark.integration
http_recorder = alerting_receivers.http_recorder  # fixture
alertmanager = alerting_receivers.alertmanager  # fixture


def validating_proxy(upstream: str) -> Any:
    postable = alertmanager_validator("postableAlerts")

    def respond(request: RecordedRequest) -> Reply:
        if request.path == "/api/v2/alerts":
            body = request.json()
            errors = [e.message for e in postable.iter_errors(body)]
            errors += [
                f"label name {name!r} is not legacy-valid"
                for alert in body
                for name in alert["labels"]
                if not LEGACY_LABEL_NAME.match(name)
            ]
            if errors:
                raise ReceiverRejected("; ".join(errors))
        forwarded = httpx.request(
            request.method,
            upstream + request.path,
            content=request.body,
            headers={"Content-Type": request.headers.get("content-type", "")},
            timeout=5,
        )
        return Reply(
            forwarded.status_code,
            forwarded.content,
            {"Content-Type": forwarded.headers.get("content-type", "text/plain")},
        )

    return respond


@pytest.fixture
def proxied(http_recorder: HTTPRecorder, alertmanager: AlertmanagerProcess) -> HTTPRecorder:
    http_recorder.responder = validating_proxy(alertmanager.url)
    return http_recorder


def am_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def channel(url: str, **spec: object) -> AlertChannel:
    return build_channel("alertmanager", {"type": "alertmanager", "url": url, **spec}, environ={})


def ours(am: AlertmanagerProcess, contract: str) -> list[dict[str, Any]]:
    alerts = am.alerts(filter=f'contract="{contract}"')
    alertmanager_validator("gettableAlerts").validate(alerts)  # the running version's response schema
    return alerts


def test_alert_is_listed_with_its_labels_then_resolved(
    proxied: HTTPRecorder, alertmanager: AlertmanagerProcess
) -> None:
    am = channel(proxied.url, dagster_url="http://dagster.example:3000")
    firing = alert_item(contract_name="orders_am", severity=ViolationSeverity.CRITICAL)
    drift = alert_item(contract_name="orders_am", violation_type=ViolationType.SCHEMA_DRIFT)
    result = am.send(alert_batch(firing, drift))
    assert result.ok, result
    assert proxied.errors == []

    alerts = {a["labels"]["violation_type"]: a for a in ours(alertmanager, "orders_am")}
    assert set(alerts) == {"freshness", "schema_drift"}
    assert alerts["freshness"]["labels"] == {
        "alertname": "ContractViolation",
        "severity": "critical",
        "contract": "orders_am",
        "contract_version": "1.2.0",
        "violation_type": "freshness",
    }
    assert alerts["freshness"]["annotations"]["summary"] == firing.event.message
    assert alerts["freshness"]["annotations"]["violation_id"] == firing.id
    assert alerts["freshness"]["status"]["state"] in ("active", "unprocessed")
    # still firing past Alertmanager's 5 min resolve_timeout: endsAt = event time + firing_ttl_minutes (24 h)
    assert alerts["freshness"]["endsAt"].startswith(am_time(firing.event.timestamp + timedelta(hours=24)))
    assert alerts["freshness"]["generatorURL"] == "http://dagster.example:3000/assets/sales/orders"

    # the same incident again (new message): still one alert per label set, the newer annotation wins
    again = alert_item(contract_name="orders_am", severity=ViolationSeverity.CRITICAL, message="now 9h old")
    assert am.send(alert_batch(again)).ok
    listed = [a for a in ours(alertmanager, "orders_am") if a["labels"]["violation_type"] == "freshness"]
    assert len(listed) == 1 and listed[0]["annotations"]["summary"] == "now 9h old"

    passed = alert_item(
        AlertKind.RESOLVED,
        contract_name="orders_am",
        severity=ViolationSeverity.CRITICAL,
        timestamp=utcnow(),
    )
    assert am.resolve(alert_batch(passed)).ok
    assert proxied.errors == []
    remaining = ours(alertmanager, "orders_am")
    assert [a["labels"]["violation_type"] for a in remaining] == ["schema_drift"]


def test_resolve_of_a_violation_item_posts_the_resolved_form(
    proxied: HTTPRecorder, alertmanager: AlertmanagerProcess
) -> None:
    am = channel(proxied.url)
    # A minute old: the resolved form's endsAt (the event time) is in Alertmanager's past without waiting.
    item = alert_item(contract_name="orders_resolve", timestamp=utcnow() - timedelta(minutes=1))
    assert am.send(alert_batch(item)).ok and len(ours(alertmanager, "orders_resolve")) == 1
    assert am.resolve(alert_batch(item)).ok
    body = proxied.requests[-1].json()
    assert body[0]["endsAt"] > body[0]["startsAt"]
    assert ours(alertmanager, "orders_resolve") == []


def test_server_side_rejection_is_not_retryable(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = lambda _r: Reply(400, b'"start time must be before end time"')
    result = channel(http_recorder.url).send(alert_batch())
    assert not result.ok and result.status == "rejected" and not result.retryable
    assert result.error is not None and "start time must be before end time" in result.error


def test_health_check(alertmanager: AlertmanagerProcess) -> None:
    assert channel(alertmanager.url).health_check().healthy
    down = channel(f"http://127.0.0.1:{alerting_receivers.free_port()}", timeout_seconds=1).health_check()
    assert not down.healthy and "127.0.0.1" in down.message
