"""Email channel against a real SMTP server (aiosmtpd on 127.0.0.1): plain, and STARTTLS + AUTH."""

from pathlib import Path

import pytest

from floe_monitoring_defs.alerting.channels.base import AlertChannel, build_channel
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.models import ViolationSeverity
from floe_monitoring_tests import alerting_receivers
from floe_monitoring_tests.alerting_receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    SMTPServer,
    alert_batch,
    alert_item,
    body_text,
)

pytestmark = pytest.mark.integration
smtp_server = alerting_receivers.smtp_server  # fixture
smtp_tls_server = alerting_receivers.smtp_tls_server  # fixture

TO = ["oncall@example.com", "data-team@example.com"]


def plain(server: SMTPServer, **spec: object) -> AlertChannel:
    return build_channel(
        "oncall-mail",
        {
            "type": "email",
            "smtp_host": server.host,
            "smtp_port": server.port,
            "starttls": False,
            "from_address": "floe@example.com",
            "to_addresses": TO,
            **spec,
        },
        environ={},
    )


def tls(server: SMTPServer, password: str = SMTP_PASSWORD, **spec: object) -> AlertChannel:
    return build_channel(
        "oncall-mail",
        {
            "type": "email",
            "smtp_host": server.host,
            "smtp_port": server.port,
            "from_address": "floe@example.com",
            "to_addresses": TO,
            "username": SMTP_USER,
            "password_env": "FLOE_TEST_SMTP_PASSWORD",
            "ca_file": str(server.ca_file),
            "timeout_seconds": 5,
            **spec,
        },
        environ={"FLOE_TEST_SMTP_PASSWORD": password},
    )


def test_plain_smtp_delivers_one_multipart_message_per_batch(smtp_server: SMTPServer) -> None:
    items = (
        alert_item(severity=ViolationSeverity.CRITICAL, message="null rate 12% > 5% in <email> & co"),
        alert_item(),
    )
    result = plain(smtp_server).send(alert_batch(*items))

    assert result.ok and result.status == "delivered", result
    (envelope,) = smtp_server.envelopes
    assert envelope.mail_from == "floe@example.com" and envelope.rcpt_tos == TO
    (msg,) = smtp_server.messages
    assert msg["Subject"] == "[CRITICAL] Contract violation: orders"
    assert msg["To"] == ", ".join(TO) and msg["X-Floe-Idempotency-Key"] == alert_batch(*items).idempotency_key
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text = body_text(msg, "plain")
    html = body_text(msg, "html")
    assert "null rate 12% > 5% in <email> & co" in text and items[1].id in text
    assert "null rate 12% &gt; 5% in &lt;email&gt; &amp; co" in html and "<email>" not in html
    assert "finance-dashboard, ml-churn" in text


def test_resolved_subject(smtp_server: SMTPServer) -> None:
    assert plain(smtp_server).resolve(alert_batch(alert_item(AlertKind.RESOLVED))).ok
    assert smtp_server.messages[0]["Subject"] == "[RESOLVED] Contract violation: orders"


def test_starttls_and_auth_deliver(smtp_tls_server: SMTPServer) -> None:
    result = tls(smtp_tls_server).send(alert_batch())
    assert result.ok, result
    assert len(smtp_tls_server.envelopes) == 1 and smtp_tls_server.auth_attempts[-1][1] is True


def test_bad_password_fails_without_retry_and_without_the_password(smtp_tls_server: SMTPServer) -> None:
    wrong = "wr0ng-Passw0rd-do-not-show"
    result = tls(smtp_tls_server, password=wrong).send(alert_batch())
    assert not result.ok and result.status == "auth_failed" and not result.retryable
    assert result.error is not None and "535" in result.error
    assert wrong not in repr(result) and SMTP_PASSWORD not in repr(result)
    assert smtp_tls_server.envelopes == [] and smtp_tls_server.auth_attempts[-1][1] is False


def test_untrusted_certificate_is_refused(smtp_tls_server: SMTPServer, tmp_path: Path) -> None:
    other_ca, _ = alerting_receivers.self_signed_cert(tmp_path)  # a CA that did not sign the server's cert
    result = tls(smtp_tls_server, ca_file=str(other_ca)).send(alert_batch())
    assert not result.ok and result.status == "tls_error" and SMTP_PASSWORD not in repr(result)
    assert smtp_tls_server.auth_attempts == []  # the password was never sent


def test_auth_is_not_offered_without_starttls(smtp_tls_server: SMTPServer) -> None:
    result = tls(smtp_tls_server, starttls=False).send(alert_batch())
    assert not result.ok and not result.retryable and SMTP_PASSWORD not in repr(result)


@pytest.mark.parametrize(
    ("reply", "status", "retryable"),
    [("451 4.3.0 try again later", "smtp_4xx", True), ("554 5.7.1 message refused", "rejected", False)],
)
def test_smtp_reply_codes(smtp_server: SMTPServer, reply: str, status: str, retryable: bool) -> None:
    smtp_server.reply.append(reply)
    result = plain(smtp_server).send(alert_batch())
    assert not result.ok and result.status == status and result.retryable is retryable
    assert result.error is not None and reply.split()[0] in result.error


def test_health_check(smtp_tls_server: SMTPServer) -> None:
    assert tls(smtp_tls_server).health_check().healthy
    refused = build_channel(
        "m",
        {
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": alerting_receivers.free_port(),
            "starttls": False,
            "from_address": "floe@example.com",
            "to_addresses": TO,
            "timeout_seconds": 1,
        },
        environ={},
    )
    assert not refused.health_check().healthy
