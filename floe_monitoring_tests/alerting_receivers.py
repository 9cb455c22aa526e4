"""Real receivers on 127.0.0.1 for alert-channel tests (reusable by any test that delivers alerts).

- `HTTPRecorder`: a threaded `http.server` that records every request (method, path, headers, body)
  and answers through a pluggable `responder`; it can be told to answer an error status, to hang
  (accept, read the request, never answer) or to refuse connections, for a number of requests or
  for a while. Validating responders for the built-in channels' wire formats: `cloudevents_responder`
  (cloudevents SDK + the official JSON Schema + HMAC), `slack_responder` (slack_sdk Block Kit models +
  the limits slack_sdk does not check), `pagerduty_responder` (openapi-core against the official
  OpenAPI file). A responder that finds a problem raises `ReceiverRejected`: the receiver answers
  400 with the reason and appends it to `recorder.errors`, so a test asserts `recorder.errors == []`.
- `SilentServer`: accepts TCP connections and never says a word (an SMTP server that hangs).
- `SMTPServer` (`run_smtp_server`): aiosmtpd on 127.0.0.1, optionally STARTTLS-only with a
  self-signed certificate made by the `openssl` CLI, and AUTH with one username/password.
- `AlertmanagerProcess` (`run_alertmanager`): the machine's `prometheus-alertmanager` (Debian 0.25)
  on 127.0.0.1 with a throwaway config and storage; skipped when missing, failed under CI.

Fixtures (import them into a test module, or list this module in `pytest_plugins`):
`http_recorder`, `smtp_server` (plain), `smtp_tls_server` (STARTTLS + AUTH), `alertmanager`.
Alert data for tests: `violation_event`, `alert_item`, `alert_batch`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind
from floe_monitoring_defs.models import ContractViolationEvent, ViolationSeverity, ViolationType, utcnow

SCHEMAS = Path(__file__).parent / "contract" / "schemas"
CLOUDEVENTS_SCHEMA = SCHEMAS / "cloudevents-1.0.2.schema.json"
ALERTMANAGER_OPENAPI = SCHEMAS / "alertmanager-openapi-v0.25.0.yaml"
PAGERDUTY_OPENAPI = SCHEMAS / "pagerduty-events-v2-openapiv3.json"
ALERTMANAGER_BINARY = "/usr/bin/prometheus-alertmanager"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI, where every receiver must be available."""
    if in_ci():
        pytest.fail(f"alerting receiver unavailable under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A port nothing listens on right now (also: a port whose connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived. `headers` keys are lower-case; `status` is what was answered
    (None: the request was hung and never answered)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain; charset=utf-8"})

    @classmethod
    def json(cls, status: int, value: Any) -> Reply:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


class ReceiverRejected(Exception):
    """Raised by a responder: the request is invalid; the receiver answers 400 and records why."""


Responder = Callable[[RecordedRequest], Reply]


@dataclass
class _Fault:
    mode: str  # "status" | "hang" | "refuse"
    status: int = 500
    remaining: int | None = None  # requests still to fault (None: no count limit)
    until: float | None = None  # monotonic deadline (None: no time limit)

    def active(self) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.until is None or time.monotonic() < self.until


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    recorder: HTTPRecorder


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; the recorder keeps everything

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_at=time.time(),
        )
        reply = self.server.recorder._answer(request)
        if reply is None:  # hang: hold the connection, then drop it without an answer
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)
        self.close_connection = True

    do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _handle


class HTTPRecorder:
    """A loopback HTTP receiver that records requests and can misbehave on command.

    >>> with HTTPRecorder() as rec:           # answers 200 "ok" to everything
    ...     rec.fail(503, count=2)            # the next two requests get 503
    ...     rec.hang(seconds=5)               # requests in the next 5 s are read and never answered
    ...     rec.refuse(seconds=2)             # connections are refused for 2 s (port closed)
    ...     rec.clear()                       # back to normal now
    ...     rec.requests, rec.errors, rec.wait_for(3)
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or (lambda _request: Reply())
        self.errors: list[str] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._fault: _Fault | None = None
        self._stopping = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._reopen: threading.Timer | None = None
        self.port = 0

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> HTTPRecorder:
        self._listen(0)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._reopen is not None:
            self._reopen.cancel()
        self._close()

    def __enter__(self) -> HTTPRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234 (any path is accepted)."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

    # what arrived --------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; returns them (fails the test on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"receiver got {len(self._requests)} requests, expected {count}", pytrace=False)
                self._changed.wait(left)
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self.errors.clear()

    # misbehaviour --------------------------------------------------------------------------------
    def fail(self, status: int = 500, *, count: int | None = None, seconds: float | None = None) -> None:
        """Answer `status` (with a short text body) to the next `count` requests / for `seconds`."""
        self._set_fault(_Fault("status", status, count, self._deadline(seconds)))

    def hang(self, *, count: int | None = None, seconds: float | None = None) -> None:
        """Read the next `count` requests / those of the next `seconds` and never answer them.

        A hung request's connection is dropped (no answer) when `seconds` have passed, or at
        `clear()`, at another fault, or at `stop()`.
        """
        self._set_fault(_Fault("hang", 0, count, self._deadline(seconds)))

    def refuse(self, *, seconds: float | None = None) -> None:
        """Close the listening socket (connections refused) for `seconds`, or until `clear()`."""
        with self._lock:
            self._fault = _Fault("refuse", 0, None, self._deadline(seconds))
        self._close()
        if seconds is not None:
            self._reopen = threading.Timer(seconds, self.clear)
            self._reopen.daemon = True
            self._reopen.start()

    def clear(self) -> None:
        """Behave normally again (re-opens the same port after `refuse`, releases hung requests)."""
        with self._lock:
            fault, self._fault = self._fault, None
            self._changed.notify_all()
        if fault is not None and fault.mode == "refuse" and not self._stopping.is_set():
            self._listen(self.port)

    # internals -----------------------------------------------------------------------------------
    @staticmethod
    def _deadline(seconds: float | None) -> float | None:
        return None if seconds is None else time.monotonic() + seconds

    def _set_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._fault = fault
            self._changed.notify_all()

    def _listen(self, port: int) -> None:
        server = _Server(("127.0.0.1", port), _Handler)
        server.recorder = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            self._changed.notify_all()  # wake hung handlers

    def _hold(self, fault: _Fault) -> None:
        """Keep a hung request open until the hang ends, the fault is cleared or the server stops."""
        with self._changed:
            while (
                self._fault is fault
                and not self._stopping.is_set()
                and (fault.until is None or time.monotonic() < fault.until)
            ):
                wait = 0.1 if fault.until is None else max(min(fault.until - time.monotonic(), 0.1), 0.001)
                self._changed.wait(wait)

    def _answer(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            fault = self._fault if self._fault is not None and self._fault.active() else None
            if fault is not None and fault.remaining is not None:
                fault.remaining -= 1
        reply: Reply | None
        if fault is not None and fault.mode == "hang":
            self._record(request, None)
            self._hold(fault)
            return None
        if fault is not None and fault.mode == "refuse":  # a connection that slipped in while closing
            reply = Reply(503, b"refusing")
        elif fault is not None:
            reply = Reply(fault.status, f"injected HTTP {fault.status}".encode())
        else:
            try:
                reply = self.responder(request)
            except ReceiverRejected as exc:
                with self._lock:
                    self.errors.append(str(exc))
                reply = Reply(400, f"invalid request: {exc}".encode())
            except Exception as exc:  # a bug in a responder must show up in the test, not hang it
                with self._lock:
                    self.errors.append(f"responder crashed: {type(exc).__name__}: {exc}")
                reply = Reply(500, b"responder crashed")
        self._record(request, reply.status)
        return reply

    def _record(self, request: RecordedRequest, status: int | None) -> None:
        with self._changed:
            self._requests.append(
                RecordedRequest(
                    request.method, request.path, request.headers, request.body, request.received_at, status
                )
            )
            self._changed.notify_all()


@pytest.fixture
def http_recorder() -> Iterator[HTTPRecorder]:
    """An HTTPRecorder answering 200 "ok"; set `.responder` to validate or to answer differently."""
    with HTTPRecorder() as recorder:
        yield recorder


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends or answers anything (a hung server)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()


# ---------------------------------------------------------------------------------------------------
# Validating responders
# ---------------------------------------------------------------------------------------------------


def cloudevents_schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(CLOUDEVENTS_SCHEMA.read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def parse_cloudevent(request: RecordedRequest) -> Any:
    """The official schema on what was on the wire, then the SDK (each catches what the other misses)."""
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

    headers = request.headers
    if headers.get("content-type", "").lower().startswith("application/cloudevents"):
        raw = json.loads(request.body)
    else:  # binary mode
        raw = {k[3:]: urllib.parse.unquote(v) for k, v in headers.items() if k.startswith("ce-")}
        if "content-type" in headers:
            raw["datacontenttype"] = headers["content-type"]
    errors = sorted(cloudevents_schema_validator().iter_errors(raw), key=lambda e: list(e.path))
    if errors:
        raise ReceiverRejected("CloudEvents schema: " + "; ".join(e.message for e in errors))
    try:
        return from_http_event(HTTPMessage(dict(headers), request.body))
    except Exception as exc:
        raise ReceiverRejected(f"cloudevents SDK: {type(exc).__name__}: {exc}") from exc


def cloudevents_responder(secret: str | None = None, signature_header: str = "X-Floe-Signature") -> Responder:
    """Accept (202) only valid CloudEvents whose HMAC signature verifies with `secret` (when given)."""

    def respond(request: RecordedRequest) -> Reply:
        if secret is not None:
            sent = request.headers.get(signature_header.lower(), "")
            expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(sent, expected):
                raise ReceiverRejected(f"bad or missing {signature_header}")
        parse_cloudevent(request)
        return Reply(202, b"")

    return respond


SLACK_MAX_BLOCKS = 50
SLACK_FIELD_MAX = 2000


def check_slack_message(payload: Any) -> None:
    """Raise ReceiverRejected unless `payload` is a webhook body whose blocks are valid Block Kit."""
    from slack_sdk.models.blocks import Block

    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str) or not payload["text"]:
        raise ReceiverRejected("no_text: a top-level text fallback is required")
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise ReceiverRejected("invalid_blocks: no blocks")
    if len(blocks) > SLACK_MAX_BLOCKS:  # not enforced by slack_sdk 3.48
        raise ReceiverRejected(f"invalid_blocks: {len(blocks)} blocks > {SLACK_MAX_BLOCKS}")
    for n, raw in enumerate(blocks):
        try:
            block = Block.parse(raw)
            if block is None:
                raise ValueError(f"unknown block type {raw.get('type')!r}")
            block.validate_json()
        except Exception as exc:
            raise ReceiverRejected(f"invalid_blocks: block {n}: {type(exc).__name__}: {exc}") from exc
        for f in raw.get("fields") or []:  # not enforced by slack_sdk 3.48
            if len(f.get("text", "")) > SLACK_FIELD_MAX:
                raise ReceiverRejected(f"invalid_blocks: block {n} has a field over {SLACK_FIELD_MAX} characters")


def slack_responder(path: str | None = None) -> Responder:
    """Answer like a Slack incoming webhook: 200 "ok", 400 "invalid_blocks"/"no_text", 404 on another path."""

    def respond(request: RecordedRequest) -> Reply:
        if path is not None and request.path != path:
            return Reply(404, b"no_service")
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise ReceiverRejected("invalid_payload: not JSON")
        check_slack_message(request.json())
        return Reply(200, b"ok")

    return respond


def pagerduty_openapi() -> Any:
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(str(PAGERDUTY_OPENAPI))


def pagerduty_responder(routing_key: str | None = None) -> Responder:
    """Validate each request and the 202 answer with openapi-core; 202 {status, message, dedup_key}."""
    from openapi_core.testing import MockRequest, MockResponse

    spec = pagerduty_openapi()

    def respond(request: RecordedRequest) -> Reply:
        path = urllib.parse.urlsplit(request.path).path
        mock = MockRequest(
            "https://events.pagerduty.com",
            request.method.lower(),
            path,
            data=request.body,
            content_type=request.headers.get("content-type", "").split(";")[0],
        )
        try:
            spec.validate_request(mock)
        except Exception as exc:
            raise ReceiverRejected(f"PagerDuty OpenAPI: {type(exc).__name__}: {exc}") from exc
        event = request.json()
        if routing_key is not None and event.get("routing_key") != routing_key:
            return Reply.json(
                400,
                {"status": "invalid event", "message": "Event object is invalid", "errors": ["invalid routing key"]},
            )
        if event.get("event_action") in ("acknowledge", "resolve") and not event.get("dedup_key"):
            raise ReceiverRejected("dedup_key is required for acknowledge and resolve")  # docs, not in the file
        if len(event.get("dedup_key") or "") > 255:
            raise ReceiverRejected("dedup_key over 255 characters")
        if len((event.get("payload") or {}).get("summary") or "") > 1024:
            raise ReceiverRejected("payload.summary over 1024 characters")
        answer = {
            "status": "success",
            "message": "Event processed",
            "dedup_key": event.get("dedup_key") or "generated-key",
        }
        reply = Reply.json(202, answer)
        spec.validate_response(mock, MockResponse(reply.body, status_code=202, content_type="application/json"))
        return reply

    return respond


def alertmanager_validator(definition: str = "postableAlerts") -> jsonschema.Draft4Validator:
    """Draft-4 validator for one `definitions` entry of the v0.25.0 Swagger 2.0 file."""
    spec = yaml.safe_load(ALERTMANAGER_OPENAPI.read_text())
    return jsonschema.Draft4Validator(
        {"definitions": spec["definitions"], "allOf": [{"$ref": f"#/definitions/{definition}"}]},
        format_checker=jsonschema.FormatChecker(),
    )


LEGACY_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


# ---------------------------------------------------------------------------------------------------
# SMTP (aiosmtpd)
# ---------------------------------------------------------------------------------------------------


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for CN=localhost, SAN IP:127.0.0.1, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            str(openssl),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class SMTPServer:
    """A running aiosmtpd on 127.0.0.1. `messages` are parsed with the default email policy."""

    port: int
    envelopes: list[Any]
    auth_attempts: list[tuple[str, bool]]
    ca_file: Path | None = None
    host: str = "127.0.0.1"
    reply: list[str] = field(default_factory=list)  # set reply[0] to e.g. "451 try later" to fail DATA

    @property
    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


def body_text(msg: EmailMessage, subtype: str) -> str:
    """The text of the message's `text/<subtype>` body part (which must exist)."""
    part = msg.get_body((subtype,))
    assert part is not None, f"no text/{subtype} body"
    content = part.get_content()
    assert isinstance(content, str), f"text/{subtype} body is {type(content).__name__}"
    return content


class _Sink:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.server.reply:
            return self.server.reply[0]
        self.server.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def run_smtp_server(
    *, tls_dir: Path | None = None, username: str | None = None, password: str | None = None
) -> Iterator[SMTPServer]:
    """aiosmtpd on a free port; with `tls_dir`: STARTTLS required; with username/password: AUTH required."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:  # pragma: no cover - a test extra
        unavailable("aiosmtpd is not installed (pip install -e '.[test]')")
        raise
    server = SMTPServer(port=free_port(), envelopes=[], auth_attempts=[])
    kwargs: dict[str, Any] = {}
    if tls_dir is not None:
        cert, key = self_signed_cert(tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs.update(tls_context=context, require_starttls=True)
        server.ca_file = cert
    if username is not None:

        def authenticate(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> Any:
            ok = (
                isinstance(data, LoginPassword)
                and data.login.decode() == username
                and data.password.decode() == password
            )
            server.auth_attempts.append((mechanism, ok))
            # handled=False on failure, else aiosmtpd sends no reply and the client hangs (wire-formats 5)
            return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)

        kwargs.update(authenticator=authenticate, auth_required=True)
        if tls_dir is None:
            kwargs["auth_require_tls"] = False
    controller = Controller(_Sink(server), hostname="127.0.0.1", port=server.port, ready_timeout=10, **kwargs)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """Plain SMTP, no TLS, no AUTH."""
    with run_smtp_server() as server:
        yield server


SMTP_USER, SMTP_PASSWORD = "floe", "s3cret-smtp-Passw0rd"


@pytest.fixture
def smtp_tls_server(tmp_path: Path) -> Iterator[SMTPServer]:
    """STARTTLS required (self-signed cert, `server.ca_file`), AUTH required as SMTP_USER/SMTP_PASSWORD."""
    with run_smtp_server(tls_dir=tmp_path, username=SMTP_USER, password=SMTP_PASSWORD) as server:
        yield server


# ---------------------------------------------------------------------------------------------------
# Alertmanager (the real binary)
# ---------------------------------------------------------------------------------------------------


@dataclass
class AlertmanagerProcess:
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """GET /api/v2/alerts (active, silenced, inhibited and unprocessed; resolved ones are dropped)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5)
        response.raise_for_status()
        body: list[dict[str, Any]] = response.json()
        return body


_AM_CONFIG = {"route": {"receiver": "blackhole", "group_wait": "1s"}, "receivers": [{"name": "blackhole"}]}


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def run_alertmanager(binary: str = ALERTMANAGER_BINARY) -> Iterator[AlertmanagerProcess]:
    """Start Alertmanager on 127.0.0.1:<free port>, no cluster listener, temp config and storage."""
    if not os.access(binary, os.X_OK):
        unavailable(f"{binary} not found (Debian package prometheus-alertmanager)")
    workdir = Path(tempfile.mkdtemp(prefix="floe-am-"))
    config = workdir / "alertmanager.yml"
    config.write_text(yaml.safe_dump(_AM_CONFIG))
    process: subprocess.Popen[bytes] | None = None
    try:
        log = b""
        for _attempt in range(3):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            logfile = workdir / "alertmanager.log"
            with logfile.open("wb") as out:
                process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.path={workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--cluster.listen-address=",  # else gossip binds 0.0.0.0:9094
                        "--log.level=warn",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if _wait_ready(url, process, timeout=15):
                break
            _stop(process)
            log = logfile.read_bytes()[-3000:]
            process = None
        if process is None:
            pytest.fail(f"Alertmanager did not become ready:\n{log.decode(errors='replace')}", pytrace=False)
        yield AlertmanagerProcess(url, process, workdir)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def alertmanager() -> Iterator[AlertmanagerProcess]:
    with run_alertmanager() as am:
        yield am


# ---------------------------------------------------------------------------------------------------
# Alert data
# ---------------------------------------------------------------------------------------------------


def violation_event(**overrides: Any) -> ContractViolationEvent:
    """A valid ContractViolationEvent (orders v1.2.0, freshness, ERROR, 30 s ago); override any field."""
    values: dict[str, Any] = {
        "contract_name": "orders",
        "contract_version": "1.2.0",
        "violation_type": ViolationType.FRESHNESS,
        "severity": ViolationSeverity.ERROR,
        "message": "orders is 7h12m old; SLA PT6H",
        "element": "updated_at",
        "expected_value": "PT6H",
        "actual_value": "PT7H12M",
        "timestamp": utcnow().replace(microsecond=0) - timedelta(seconds=30),
        "affected_consumers": ["finance-dashboard", "ml-churn"],
        "check_duration_seconds": 0.042,
        "metadata": {"table": "sales.orders", "drift": "stale"},
    }
    values.update(overrides)
    return ContractViolationEvent.model_validate(values)


def alert_item(kind: AlertKind = AlertKind.VIOLATION, item_id: str | None = None, **event: Any) -> AlertItem:
    """An AlertItem with a fresh id unless given; `event` overrides fields of `violation_event`."""
    return AlertItem(id=item_id or f"viol-{uuid.uuid4().hex[:12]}", kind=kind, event=violation_event(**event))


def alert_batch(
    *items: AlertItem, consumers: tuple[str, ...] = ("finance-dashboard",), dagster_url: str | None = None
) -> AlertBatch:
    """A batch of `items` (default: one ERROR freshness violation) of the first item's contract."""
    chosen = items or (alert_item(),)
    first = chosen[0].event
    return AlertBatch(
        contract_name=first.contract_name,
        contract_version=first.contract_version,
        items=chosen,
        affected_consumers=consumers,
        dagster_url=dagster_url,
    )
