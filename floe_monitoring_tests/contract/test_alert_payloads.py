"""What each built-in channel puts on the wire, checked with the receivers' own validators (no network).

CloudEvents: the official JSON Schema + the cloudevents SDK; Alertmanager: the v0.25.0 OpenAPI
`postableAlerts` + the 0.25 label-name rule; PagerDuty: openapi-core on the official OpenAPI file
+ the documented limits it does not encode; Slack: slack_sdk Block Kit models + the limits slack_sdk
does not check. Each validator is also shown to reject a broken payload, so these tests can fail.
"""

import json
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest

from floe_monitoring_defs.alerting.channels import alertmanager as am
from floe_monitoring_defs.alerting.channels import email as mail
from floe_monitoring_defs.alerting.channels import pagerduty as pd
from floe_monitoring_defs.alerting.channels import slack
from floe_monitoring_defs.alerting.channels import webhook as wh
from floe_monitoring_defs.alerting.channels.base import build_channel
from floe_monitoring_defs.alerting.channels.common import rfc3339
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.models import ViolationSeverity, ViolationType
from floe_monitoring_tests.alerting_receivers import (
    LEGACY_LABEL_NAME,
    ReceiverRejected,
    RecordedRequest,
    alert_batch,
    alert_item,
    alertmanager_validator,
    body_text,
    check_slack_message,
    cloudevents_responder,
    pagerduty_responder,
    parse_cloudevent,
)

DATA_KEYS = {
    "contractName",
    "contractVersion",
    "violationType",
    "severity",
    "message",
    "element",
    "expectedValue",
    "actualValue",
    "timestamp",
    "affectedConsumers",
    "checkDurationSeconds",
    "metadata",
}


def request(
    body: bytes, content_type: str = "application/json", path: str = "/v2/enqueue", **headers: str
) -> RecordedRequest:
    return RecordedRequest("POST", path, {"content-type": content_type, **headers}, body, 0.0)


# --- CloudEvents -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "ce_type"),
    [
        (AlertKind.VIOLATION, "floe.contract.violation"),
        (AlertKind.RESOLVED, "floe.contract.violation.resolved"),
        (AlertKind.OPERATIONAL, "floe.monitor.operational"),
    ],
)
def test_cloudevent_per_kind_passes_schema_and_sdk(kind: AlertKind, ce_type: str) -> None:
    item = alert_item(kind, metadata={"table": "sales.orders"}, affected_consumers=["finance"])
    batch = alert_batch(item)
    body = json.dumps(wh.cloud_event(item, batch)).encode()
    event = parse_cloudevent(request(body, wh.CONTENT_TYPE))
    assert event.get_id() == item.id and event.get_type() == ce_type
    assert event.get_source() == "floe-contract-monitor" and event.get_specversion() == "1.0"
    assert event.get_subject() == "orders" and event.get_datacontenttype() == "application/json"
    data = event.get_data()
    assert set(data) == DATA_KEYS
    assert data["affectedConsumers"] == ["finance"] and data["metadata"] == {"table": "sales.orders"}
    raw = json.loads(body)
    assert raw["time"].endswith("Z") and raw["time"] == data["timestamp"]


def test_cloudevent_falls_back_to_the_batch_consumers() -> None:
    item = alert_item(affected_consumers=[])
    assert wh.cloud_event(item, alert_batch(item, consumers=("bi",)))["data"]["affectedConsumers"] == ["bi"]


def test_resolve_forces_the_resolved_type() -> None:
    item = alert_item(AlertKind.VIOLATION)
    assert wh.cloud_event(item, alert_batch(item), force_resolved=True)["type"] == "floe.contract.violation.resolved"


@pytest.mark.parametrize(
    "broken", [{"id": None}, {"type": ""}, {"time": "yesterday"}, {"specversion": "2.0"}, {"source": ""}]
)
def test_cloudevent_validators_reject_broken_events(broken: dict[str, Any]) -> None:
    item = alert_item()
    event = wh.cloud_event(item, alert_batch(item))
    event.update(broken)
    event = {k: v for k, v in event.items() if v is not None}
    with pytest.raises(ReceiverRejected):
        parse_cloudevent(request(json.dumps(event).encode(), wh.CONTENT_TYPE))


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    responder = cloudevents_responder(secret="k3y")
    body = json.dumps(wh.cloud_event(alert_item(), alert_batch())).encode()
    assert responder(request(body, wh.CONTENT_TYPE, **{"x-floe-signature": wh.sign("k3y", body)})).status == 202
    with pytest.raises(ReceiverRejected):
        responder(request(body + b" ", wh.CONTENT_TYPE, **{"x-floe-signature": wh.sign("k3y", body)}))


# --- Alertmanager ------------------------------------------------------------------------------------


def test_alertmanager_alerts_validate_against_postable_alerts() -> None:
    firing = alert_item(severity=ViolationSeverity.CRITICAL)
    resolved = alert_item(AlertKind.RESOLVED, violation_type=ViolationType.SCHEMA_DRIFT)
    operational = alert_item(AlertKind.OPERATIONAL, violation_type=ViolationType.AVAILABILITY)
    batch = alert_batch(firing, resolved, operational, dagster_url="http://dagster:3000/")
    channel = build_channel("am", {"type": "alertmanager", "url": "http://127.0.0.1:9093"}, environ={})
    assert isinstance(channel, am.AlertmanagerChannel)
    alerts = channel.alerts(batch)
    alertmanager_validator().validate(alerts)
    for alert in alerts:
        assert all(LEGACY_LABEL_NAME.match(name) for name in alert["labels"])
        assert alert["generatorURL"] == "http://dagster:3000/assets/sales/orders"
    assert alerts[0]["labels"] == {
        "alertname": "ContractViolation",
        "severity": "critical",
        "contract": "orders",
        "contract_version": "1.2.0",
        "violation_type": "freshness",
    }
    assert alerts[0]["annotations"]["summary"] == firing.event.message
    assert alerts[0]["annotations"]["description"].startswith(
        "Contract orders v1.2.0 has a freshness violation (severity: critical)"
    )
    assert "finance-dashboard" in alerts[0]["annotations"]["description"]
    assert alerts[0]["endsAt"] == rfc3339(firing.event.timestamp + timedelta(hours=24))  # firing_ttl_minutes
    # A resolved item resolves the label set of every severity (an escalated episode fired several).
    resolved_alerts = alerts[1:5]
    assert sorted(a["labels"]["severity"] for a in resolved_alerts) == ["critical", "error", "info", "warning"]
    assert all(a["endsAt"] > a["startsAt"] for a in resolved_alerts)
    assert alerts[5]["labels"]["alertname"] == "ContractMonitorFailure"


def test_firing_ttl_can_be_left_to_alertmanager() -> None:
    channel = build_channel(
        "am", {"type": "alertmanager", "url": "http://am:9093", "firing_ttl_minutes": None}, environ={}
    )
    assert isinstance(channel, am.AlertmanagerChannel)
    (firing, resolved, *_) = channel.alerts(alert_batch(alert_item(), alert_item(AlertKind.RESOLVED)))
    assert "endsAt" not in firing and "endsAt" in resolved


def test_resolved_alert_starts_at_metadata_started_at_when_usable() -> None:
    item = alert_item(AlertKind.RESOLVED)
    started = (item.event.timestamp - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    with_start = alert_item(AlertKind.RESOLVED, metadata={"started_at": started})
    after_end = alert_item(AlertKind.RESOLVED, metadata={"started_at": "2999-01-01T00:00:00Z"})
    garbage = alert_item(AlertKind.RESOLVED, metadata={"started_at": "last tuesday"})
    assert am.alert(with_start, alert_batch(with_start), None)["startsAt"] == started
    for it in (item, after_end, garbage):
        body = am.alert(it, alert_batch(it), None)
        assert body["startsAt"] == rfc3339(it.event.timestamp - timedelta(seconds=1))
        assert body["endsAt"] == rfc3339(it.event.timestamp)


def test_postable_alerts_validator_rejects_broken_payloads() -> None:
    validator = alertmanager_validator()
    good = am.alert(alert_item(), alert_batch(), None)
    broken: dict[str, Any]
    for broken in ({**good, "labels": {"severity": 3}}, {"annotations": {}}, {**good, "startsAt": "yesterday"}):
        assert not validator.is_valid([broken])
    assert not validator.is_valid(good)  # not an array


# --- PagerDuty ---------------------------------------------------------------------------------------

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def pagerduty(**spec: Any) -> pd.PagerDutyChannel:
    channel = build_channel(
        "pd", {"type": "pagerduty", "routing_key_env": "PD_KEY", **spec}, environ={"PD_KEY": ROUTING_KEY}
    )
    assert isinstance(channel, pd.PagerDutyChannel)
    return channel


@pytest.mark.parametrize(
    ("severity", "priority"),
    [
        (ViolationSeverity.CRITICAL, "P1"),
        (ViolationSeverity.ERROR, "P2"),
        (ViolationSeverity.WARNING, "P3"),
        (ViolationSeverity.INFO, "P4"),
    ],
)
def test_pagerduty_trigger_is_valid_and_maps_priority(severity: ViolationSeverity, priority: str) -> None:
    item = alert_item(severity=severity)
    event = pagerduty().event(item, alert_batch(item))
    reply = pagerduty_responder(ROUTING_KEY)(request(json.dumps(event).encode()))
    assert reply.status == 202 and json.loads(reply.body)["dedup_key"] == "orders:freshness"
    assert event["event_action"] == "trigger" and event["dedup_key"] == "orders:freshness"
    payload = event["payload"]
    assert payload["severity"] == severity.value and payload["source"] == "floe-contract-monitor"
    assert payload["component"] == "orders" and payload["group"] == "freshness" and payload["class"] == "stale"
    details = payload["custom_details"]
    assert details["priority"] == priority and details["violation_id"] == item.id
    assert details["affected_consumers"] == ["finance-dashboard", "ml-churn"]
    assert (details["element"], details["expected"], details["actual"]) == ("updated_at", "PT6H", "PT7H12M")


def test_pagerduty_resolve_shares_the_dedup_key() -> None:
    item = alert_item(AlertKind.RESOLVED)
    event = pagerduty().event(item, alert_batch(item))
    assert event == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "orders:freshness"}
    assert pagerduty_responder()(request(json.dumps(event).encode())).status == 202


def test_pagerduty_limits_summary_and_dedup_key() -> None:
    item = alert_item(message="x" * 5000, contract_name="c" * 400)
    event = pagerduty().event(item, alert_batch(item))
    assert len(event["payload"]["summary"]) == 1024 and event["payload"]["summary"].endswith("…")
    assert len(event["dedup_key"]) <= 255
    assert (
        event["dedup_key"]
        == pagerduty().event(alert_item(AlertKind.RESOLVED, contract_name="c" * 400), alert_batch())["dedup_key"]
    )
    pagerduty_responder()(request(json.dumps(event).encode()))


@pytest.mark.parametrize(
    "broken",
    [
        {"event_action": "close"},
        {"routing_key": None},
        {"payload": {"summary": "s", "source": "x", "severity": "fatal"}},
        {"payload": {"summary": "s", "severity": "error"}},
        {"payload": {"summary": "s" * 1025, "source": "x", "severity": "error"}},
    ],
)
def test_pagerduty_receiver_rejects_broken_events(broken: dict[str, Any]) -> None:
    event = pagerduty().event(alert_item(), alert_batch())
    event.update(broken)
    event = {k: v for k, v in event.items() if v is not None}
    with pytest.raises(ReceiverRejected):
        pagerduty_responder()(request(json.dumps(event).encode()))


# --- Slack -------------------------------------------------------------------------------------------


def test_slack_message_is_valid_block_kit() -> None:
    items = (
        alert_item(severity=ViolationSeverity.CRITICAL, message="a <b> & c"),
        alert_item(violation_type=ViolationType.QUALITY, severity=ViolationSeverity.WARNING),
    )
    message = slack.build_message(alert_batch(*items))
    check_slack_message(message)
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == "🚨 Contract violation: orders (CRITICAL)"
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields[:4] == [
        "*Contract:*\norders",
        "*Version:*\n1.2.0",
        "*Severity:*\nCRITICAL",
        "*Types:*\nfreshness, quality",
    ]
    assert "a &lt;b&gt; &amp; c" in blocks[2]["text"]["text"] and "*Element:* updated_at" in blocks[2]["text"]["text"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context"]
    assert "finance-dashboard, ml-churn" in blocks[-1]["elements"][0]["text"]
    assert message["text"].startswith("🚨 Contract violation: orders (CRITICAL): 2 alerts")


def test_slack_resolved_header() -> None:
    message = slack.build_message(alert_batch(alert_item(AlertKind.RESOLVED)))
    assert message["blocks"][0]["text"]["text"] == "✅ Resolved: orders"
    assert message["blocks"][-1]["elements"][1]["text"].startswith("Resolved at ")


def test_slack_over_long_content_is_truncated_not_refused() -> None:
    name = "orders_" + "x" * 300
    items = [
        alert_item(
            contract_name=name,
            message="m" * 10_000,
            element="e" * 5000,
            affected_consumers=[f"consumer-{n}" for n in range(500)],
        )
    ]
    items += [alert_item(contract_name=name, message=f"violation {n} " + "y" * 400) for n in range(79)]
    message = slack.build_message(alert_batch(*items))
    check_slack_message(message)
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150 and blocks[0]["text"]["text"].endswith("…")
    sections = [b for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert sections[0]["text"]["text"].endswith("…")
    assert sections[-1]["text"]["text"].startswith("*+") and "more* alerts not shown" in sections[-1]["text"]["text"]
    shown = len(sections) - 1
    assert f"*+{80 - shown} more*" in sections[-1]["text"]["text"]
    assert all(len(f["text"]) <= 2000 for f in blocks[1]["fields"]) and len(blocks[1]["fields"]) <= 10
    total = sum(len(json.dumps(b, ensure_ascii=False)) for b in blocks)
    assert total < 16_000  # far below where Slack answers msg_blocks_too_long with text of ~13k


def test_slack_truncation_never_splits_an_entity() -> None:
    text = slack.escape("<" * 2000)
    cut = slack.truncate_mrkdwn(text, 3000)
    assert len(cut) <= 3000 and cut.endswith("&lt;…")


def test_slack_validator_rejects_what_slack_rejects() -> None:
    good = slack.build_message(alert_batch())
    with pytest.raises(ReceiverRejected):
        check_slack_message({**good, "blocks": good["blocks"] * 26})  # > 50 blocks
    with pytest.raises(ReceiverRejected):
        check_slack_message(
            {**good, "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]}
        )
    with pytest.raises(ReceiverRejected):
        check_slack_message({**good, "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]})
    with pytest.raises(ReceiverRejected):
        check_slack_message({"blocks": good["blocks"]})  # no text fallback


# --- Email -------------------------------------------------------------------------------------------


def test_email_message_is_text_plus_escaped_html() -> None:
    config = mail.EmailConfig(
        type="email", smtp_host="smtp", from_address="floe@example.com", to_addresses=("a@example.com", "b@example.com")
    )
    item = alert_item(message="value <script>alert(1)</script> & more", severity=ViolationSeverity.CRITICAL)
    msg = message_from_bytes(mail.build_message(config, alert_batch(item)).as_bytes(), policy=policy.default)
    assert msg["Subject"] == "[CRITICAL] Contract violation: orders"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text = body_text(msg, "plain")
    html = body_text(msg, "html")
    assert "value <script>alert(1)</script> & more" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html and "<script>" not in html
    assert "finance-dashboard" in text and item.id in html
    resolved = mail.build_message(config, alert_batch(alert_item(AlertKind.RESOLVED)))
    assert resolved["Subject"] == "[RESOLVED] Contract violation: orders"


def test_email_subject_cannot_inject_headers() -> None:
    item = alert_item(contract_name="orders\r\nBcc: victim@example.com")
    assert "\n" not in mail.subject(alert_batch(item))
