"""Slack channel against a loopback incoming-webhook stand-in that rebuilds every block with slack_sdk.

The receiver answers like Slack (200 "ok", 400 "invalid_blocks", 404 on an unknown hook path) and
also checks the limits slack_sdk leaves out (50 blocks, 2000 characters per field).
"""

import pytest
from slack_sdk.models.blocks import Block

from floe_monitoring_defs.alerting.channels.base import AlertChannel, build_channel
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.models import ViolationSeverity, ViolationType
from floe_monitoring_tests import alerting_receivers
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, alert_batch, alert_item, slack_responder

pytestmark = pytest.mark.integration
http_recorder = alerting_receivers.http_recorder  # fixture

HOOK_PATH = "/services/T0FLOE/B0ALERTS/xoxSECRETtoken4567"


def slack(recorder: HTTPRecorder, path: str = HOOK_PATH) -> AlertChannel:
    return build_channel(
        "team-slack",
        {"type": "slack", "webhook_url_env": "FLOE_TEST_SLACK_URL"},
        environ={"FLOE_TEST_SLACK_URL": recorder.url_for(path)},
    )


def test_one_valid_block_kit_message_per_batch(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = slack_responder(HOOK_PATH)
    items = (
        alert_item(
            severity=ViolationSeverity.CRITICAL,
            violation_type=ViolationType.SCHEMA_DRIFT,
            message="column amount removed",
            element="amount",
        ),
        alert_item(),
        alert_item(severity=ViolationSeverity.WARNING, violation_type=ViolationType.QUALITY),
    )
    result = slack(http_recorder).send(alert_batch(*items))

    assert result.ok and result.status == "delivered", result
    assert http_recorder.errors == []
    (request,) = http_recorder.requests
    assert request.headers["content-type"].startswith("application/json")
    payload = request.json()
    blocks = [Block.parse(b) for b in payload["blocks"]]
    for block in blocks:
        assert block is not None
        block.validate_json()
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section", "section", "section", "context"]
    assert payload["blocks"][0]["text"]["text"] == "🚨 Contract violation: orders (CRITICAL)"
    assert "*Types:*\nfreshness, quality, schema_drift" in [f["text"] for f in payload["blocks"][1]["fields"]]
    assert payload["blocks"][2]["text"]["text"].startswith("🚨 *schema_drift* (CRITICAL)\ncolumn amount removed")
    assert "finance-dashboard, ml-churn" in payload["blocks"][-1]["elements"][0]["text"]
    assert payload["text"].startswith("🚨 Contract violation: orders (CRITICAL): 3 alerts")


def test_resolved_batch(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = slack_responder(HOOK_PATH)
    assert slack(http_recorder).resolve(alert_batch(alert_item(), alert_item(AlertKind.RESOLVED))).ok
    payload = http_recorder.requests[0].json()
    assert payload["blocks"][0]["text"]["text"] == "✅ Resolved: orders"
    assert all(b["text"]["text"].startswith("✅ *freshness* resolved") for b in payload["blocks"][2:4])
    assert http_recorder.errors == []


def test_over_long_content_is_truncated_and_still_accepted(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = slack_responder(HOOK_PATH)
    name = "orders_" + "x" * 300  # a header over 150 characters
    items = [alert_item(contract_name=name, message="m" * 10_000, severity=ViolationSeverity.CRITICAL)]
    items += [alert_item(contract_name=name, message=f"violation {n}: " + "<&>" * 200) for n in range(79)]
    result = slack(http_recorder).send(alert_batch(*items, consumers=tuple(f"c{n}" for n in range(2000))))

    assert result.ok, result
    assert http_recorder.errors == []
    payload = http_recorder.requests[0].json()
    blocks = payload["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150 and blocks[0]["text"]["text"].endswith("…")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert sections[0].startswith("🚨") and sections[0].endswith("…") and len(sections[0]) <= 3000
    assert sections[-1].startswith(f"*+{80 - (len(sections) - 1)} more* alerts")
    assert all(len(e["text"]) <= 2000 for e in blocks[-1]["elements"])


def test_slack_error_is_reported_without_the_webhook_url(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = slack_responder("/services/some/other/hook")  # our hook: 404 no_service
    result = slack(http_recorder).send(alert_batch())
    assert not result.ok and result.status == "rejected" and not result.retryable
    assert result.error == f"HTTP 404 from 127.0.0.1:{http_recorder.port}: no_service"
    assert "xoxSECRETtoken4567" not in repr(result) and HOOK_PATH not in repr(result)


def test_slack_rate_limit_is_retryable(http_recorder: HTTPRecorder) -> None:
    http_recorder.responder = lambda _r: alerting_receivers.Reply(429, b"rate_limited", {"Retry-After": "30"})
    result = slack(http_recorder).send(alert_batch())
    assert not result.ok and result.retryable and result.status == "http_429"
    assert result.detail["retry_after"] == "30"
