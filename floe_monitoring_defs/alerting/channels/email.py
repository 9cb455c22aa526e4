"""Email channel: one multipart/alternative message (plain text + HTML) per batch over SMTP (stdlib).

Transport: STARTTLS on the submission port by default (`starttls: true`, port 587), implicit TLS with
`use_ssl: true` (port 465), or plain SMTP with both off (a relay inside the cluster). The server's
certificate is verified against the system CAs, or `ca_file` when given. AUTH only with `username`
+ `password_env`; the password never appears in an error (smtplib's own texts are redacted too).

SMTP failures map onto the shared classification: 4xx replies, a dropped connection, a refused
connection and a timeout are retryable; 5xx replies (including 535 bad credentials: the channel holds
the password it was built with, so a retry cannot succeed) are not.
"""

from __future__ import annotations

import html
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import ClassVar

from floe_monitoring_defs.alerting.channels.base import ChannelConfig
from floe_monitoring_defs.alerting.channels.common import (
    SOURCE,
    GuardedChannel,
    context_summary,
    failure,
    is_resolved,
    nothing_to_send,
    rfc3339,
    secret_problems,
    truncate,
)
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind, DeliveryResult, HealthStatus

SUBJECT_MAX = 200


class EmailConfig(ChannelConfig):
    """`alerts.channels.<name>` of `type: email`; the password comes from `password_env`."""

    smtp_host: str
    smtp_port: int = 587
    starttls: bool = True
    use_ssl: bool = False
    from_address: str
    to_addresses: tuple[str, ...]
    username: str | None = None
    ca_file: str | None = None  # CA bundle to verify the server's certificate (default: system CAs)


def _looks_like_address(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    return bool(local) and bool(domain) and not any(c.isspace() for c in value)


def subject(batch: AlertBatch, force_resolved: bool = False) -> str:
    if all(is_resolved(i, force_resolved) for i in batch.items):
        text = f"[RESOLVED] Contract violation: {batch.contract_name}"
    else:
        open_items = [i for i in batch.items if not is_resolved(i, force_resolved)]
        severity = max((i.event.severity for i in open_items), key=lambda s: s.rank).value.upper()
        what = (
            "Monitoring failure" if all(i.kind is AlertKind.OPERATIONAL for i in open_items) else ("Contract violation")
        )
        text = f"[{severity}] {what}: {batch.contract_name}"
    return truncate(" ".join(text.split()), SUBJECT_MAX)  # no header injection through a contract name


def _item_rows(item: AlertItem, force_resolved: bool) -> list[tuple[str, str]]:
    ev = item.event
    state = "resolved" if is_resolved(item, force_resolved) else item.kind.value
    rows = [
        ("Status", state),
        ("Type", ev.violation_type.value),
        ("Severity", ev.severity.value.upper()),
        ("Message", ev.message),
        ("Element", ev.element or ""),
        ("Expected", ev.expected_value or ""),
        ("Actual", ev.actual_value or ""),
        ("Time", rfc3339(ev.timestamp)),
        ("Check duration", f"{ev.check_duration_seconds:.3f} s"),
        ("Alert id", item.id),
        ("Context", "\n".join(context_summary(item, force_resolved))),  # root cause (FR-047), one fact a line
    ]
    return [(k, v) for k, v in rows if v]


def _consumers(batch: AlertBatch) -> list[str]:
    return sorted({c for i in batch.items for c in i.event.affected_consumers} | set(batch.affected_consumers))


def text_body(batch: AlertBatch, force_resolved: bool = False) -> str:
    consumers = _consumers(batch)
    lines = [
        subject(batch, force_resolved),
        "",
        f"Contract: {batch.contract_name} v{batch.contract_version}",
        f"Affected consumers: {', '.join(consumers) if consumers else 'none recorded'}",
        f"Alerts: {len(batch.items)}",
    ]
    for n, item in enumerate(batch.items, 1):
        lines += ["", f"{n}."]
        lines += [f"  {k}: " + v.replace("\n", "\n    ") for k, v in _item_rows(item, force_resolved)]
    if batch.dagster_url:
        lines += ["", f"Dagster: {batch.dagster_url}"]
    lines += ["", f"-- {SOURCE}"]
    return "\n".join(lines) + "\n"


def html_body(batch: AlertBatch, force_resolved: bool = False) -> str:
    e = html.escape
    consumers = _consumers(batch)
    parts = [
        '<!DOCTYPE html><html><body style="font-family: sans-serif">',
        f"<h2>{e(subject(batch, force_resolved))}</h2>",
        f"<p><b>Contract:</b> {e(batch.contract_name)} v{e(batch.contract_version)}<br>",
        f"<b>Affected consumers:</b> {e(', '.join(consumers)) if consumers else 'none recorded'}</p>",
    ]
    for item in batch.items:
        parts.append(
            '<table border="1" cellpadding="4" cellspacing="0" style="border-collapse: collapse; margin-bottom: 12px">'
        )
        parts += [
            f'<tr><th align="left">{e(k)}</th><td>{e(v).replace(chr(10), "<br>")}</td></tr>'
            for k, v in _item_rows(item, force_resolved)
        ]
        parts.append("</table>")
    if batch.dagster_url:
        parts.append(f'<p><a href="{e(batch.dagster_url, quote=True)}">Open Dagster</a></p>')
    parts.append(f'<p style="color: #888">{e(SOURCE)}</p></body></html>')
    return "\n".join(parts) + "\n"


def build_message(config: EmailConfig, batch: AlertBatch, force_resolved: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(batch, force_resolved)
    msg["From"] = config.from_address
    msg["To"] = ", ".join(config.to_addresses)
    msg["Date"] = formatdate(usegmt=True)
    domain = config.from_address.rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(idstring=batch.idempotency_key[:16], domain=domain)
    msg["X-Floe-Idempotency-Key"] = batch.idempotency_key  # the same for a re-sent batch
    msg.set_content(text_body(batch, force_resolved))
    msg.add_alternative(html_body(batch, force_resolved), subtype="html")
    return msg


class EmailChannel(GuardedChannel):
    """Sends one email per batch through an SMTP server."""

    action: ClassVar[str] = "sending email"
    type_name: ClassVar[str] = "email"
    Config: ClassVar[type[ChannelConfig]] = EmailConfig
    config: EmailConfig

    def validate_config(self) -> list[str]:
        c = self.config
        problems = secret_problems(self.secrets, optional=["password"], channel_type=self.type_name)
        if not c.smtp_host.strip():
            problems.append("smtp_host: required")
        if not 0 < c.smtp_port < 65536:
            problems.append("smtp_port: must be between 1 and 65535")
        if not _looks_like_address(c.from_address):
            problems.append("from_address: required, an email address")
        if not c.to_addresses:
            problems.append("to_addresses: at least one recipient is required")
        problems += [
            f"to_addresses[{n}]: not an email address"
            for n, a in enumerate(c.to_addresses)
            if not _looks_like_address(a)
        ]
        if c.starttls and c.use_ssl:
            problems.append("starttls: cannot be combined with use_ssl (implicit TLS); set one of them")
        if "password" in self.secrets and not c.username:
            problems.append("password_env: given without username")
        if c.username and "password" not in self.secrets:
            problems.append("username: given without password_env")
        if c.ca_file is not None and not Path(c.ca_file).is_file():
            problems.append("ca_file: no such file")
        if c.timeout_seconds <= 0:
            problems.append("timeout_seconds: must be greater than 0")
        return problems

    def health_check(self) -> HealthStatus:
        """Connect (and STARTTLS) then QUIT; no AUTH and no message."""
        started = time.perf_counter()
        try:
            with self._connect():
                pass
        except Exception as exc:
            result = self._classify(exc, started)
            return HealthStatus(False, result.error or result.status)
        return HealthStatus(True, f"SMTP {self._where} answered")

    @property
    def _where(self) -> str:
        return f"{self.config.smtp_host}:{self.config.smtp_port}"

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        smtp: smtplib.SMTP
        if c.use_ssl:
            smtp = smtplib.SMTP_SSL(c.smtp_host, c.smtp_port, timeout=c.timeout_seconds, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout_seconds)
        try:
            smtp.ehlo()
            if c.starttls:
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _deliver(self, batch: AlertBatch, *, force_resolved: bool) -> DeliveryResult:
        if not batch.items:
            return nothing_to_send()
        msg = build_message(self.config, batch, force_resolved)
        started = time.perf_counter()
        try:
            with self._connect() as smtp:
                if self.config.username:
                    smtp.login(self.config.username, self.secrets["password"].get_secret_value())
                refused = smtp.send_message(
                    msg, from_addr=self.config.from_address, to_addrs=list(self.config.to_addresses)
                )
        except Exception as exc:
            return self._classify(exc, started)
        latency = (time.perf_counter() - started) * 1000
        detail = {"delivered": str(len(batch.items)), "recipients": str(len(self.config.to_addresses) - len(refused))}
        if refused:  # accepted for some recipients: delivered, the refusals are reported
            detail["refused_recipients"] = ", ".join(sorted(refused))
        return DeliveryResult(ok=True, status="delivered", retryable=False, latency_ms=latency, detail=detail)

    def _classify(self, exc: Exception, started: float) -> DeliveryResult:
        where, name = self._where, type(exc).__name__
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            temporary = any(400 <= code < 500 for code in codes)
            return failure(
                "smtp_4xx" if temporary else "rejected",
                f"{name}: {where} refused all recipients (codes {sorted(set(codes))})",
                retryable=temporary,
                started=started,
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            error = self.redact(f"{name}: {where} answered {exc.smtp_code} {' '.join(text.split())[:200]}")
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                return failure("auth_failed", error, retryable=False, started=started)
            if 400 <= exc.smtp_code < 500:
                return failure("smtp_4xx", error, retryable=True, started=started)
            return failure("rejected", error, retryable=False, started=started)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return failure("rejected", self.redact(f"{name}: {where}: {exc}"), retryable=False, started=started)
        # smtplib turns a read timeout into SMTPServerDisconnected("... timed out") with the timeout as context
        timed_out = isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError)
        if timed_out or isinstance(exc, TimeoutError | socket.timeout):
            return failure("timeout", f"{name}: no answer from {where} in time", retryable=True, started=started)
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return failure("tls_error", self.redact(f"{name} with {where}: {exc}"), retryable=True, started=started)
        if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
            return failure(
                "connect_error", f"{name}: connection to {where} failed or was closed", retryable=True, started=started
            )
        if isinstance(exc, OSError):
            return failure(
                "connect_error", self.redact(f"{name}: cannot reach {where}: {exc}"), retryable=True, started=started
            )
        if isinstance(exc, smtplib.SMTPException):
            return failure("smtp_error", self.redact(f"{name} with {where}: {exc}"), retryable=True, started=started)
        return failure("error", self.redact(f"{name} sending to {where}: {exc}"), retryable=False, started=started)
