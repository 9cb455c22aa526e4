"""What the built-in channels share: HTTP delivery with one failure classification, times, limits, checks.

Failure classification (the outbox retries what is `retryable`): HTTP 5xx, 408, 429, connection
errors and timeouts are retryable (`http_<code>`, `connect_error`, `timeout`, `transport_error`);
other 4xx are `rejected` (the same request would be refused again). Error texts name the exception
type and the receiver's host:port, never the URL's path or query (a Slack webhook URL *is* the
credential) and never a secret: everything else passes through the channel's `redact`.

HTTP channels (`PooledHttpChannel`) keep one `httpx.Client` per channel, made on first use and shared by the
delivery threads, so connections and TLS sessions are reused across batches and delivery passes instead of a
client (and a TLS context) per batch; `close()` releases it (a later delivery opens a new one).
"""

from __future__ import annotations

import os
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from opentelemetry import propagate
from pydantic import SecretStr

from floe_monitoring_defs.alerting.channels.base import NOT_A_SETTING, AlertChannel, ChannelConfig
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind, DeliveryResult
from floe_monitoring_defs.models import ensure_utc
from floe_monitoring_defs.models.context import CONTEXT_KEY, summary_lines

SOURCE = "floe-contract-monitor"
USER_AGENT = "floe-contract-monitor/0.1"
ELLIPSIS = "…"

Redactor = Callable[[str], str]

# Failures where the next request to the same receiver would almost surely fail the same way now:
# stop the cycle there instead of waiting one timeout per remaining item.
_RECEIVER_DOWN = frozenset({"timeout", "connect_error", "transport_error"})
_RETRYABLE_4XX = frozenset({408, 425, 429})
_SNIPPET = 200
# Connections one channel's client keeps open at most: a few batches are in flight per channel.
_MAX_CONNECTIONS = 16


def rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix (CloudEvents `time`, Alertmanager, PagerDuty)."""
    return ensure_utc(value).isoformat().replace("+00:00", "Z")


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS if limit > 0 else ""


def context_of(item: AlertItem, force_resolved: bool = False) -> dict[str, Any] | None:
    """The root-cause context of an open alert (FR-047; `ContractViolationEvent.context`); None for a resolved one."""
    return None if is_resolved(item, force_resolved) else item.event.context


def context_summary(item: AlertItem, force_resolved: bool = False) -> list[str]:
    """The context as the few lines every channel shows (`models.context.summary_lines`), [] without one."""
    context = context_of(item, force_resolved)
    return summary_lines(context) if context else []


def metadata_without_context(metadata: Mapping[str, str]) -> dict[str, str]:
    """The metadata minus the context's JSON text (a payload carrying the context parsed does not repeat it)."""
    return {k: v for k, v in metadata.items() if k != CONTEXT_KEY}


def is_resolved(item: AlertItem, force_resolved: bool) -> bool:
    return force_resolved or item.kind is AlertKind.RESOLVED


def http_url_problem(key: str, value: str) -> str | None:
    """Why `value` is not a usable http(s) URL (naming `key`), or None. The value is never echoed:
    URLs may carry credentials."""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return f"{key}: not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"{key}: must be an http:// or https:// URL"
    if not parts.hostname:
        return f"{key}: the URL has no host"
    if not port_ok:
        return f"{key}: the URL's port is out of range"
    return None


def endpoint(url: str) -> str:
    """host:port of a URL, the only part of it an error message may show."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "<invalid URL>"
    return f"{parts.hostname or '?'}:{port}"


def secret_problems(
    secrets: Mapping[str, object], *, required: Iterable[str] = (), optional: Iterable[str] = (), channel_type: str
) -> list[str]:
    """Missing required secrets and unknown `*_env` keys (a typo must not silently drop a secret)."""
    required_set, known = set(required), set(required) | set(optional)
    problems = [
        f"{name}_env: required (the name of the environment variable holding the {name.replace('_', ' ')})"
        for name in sorted(required_set)
        if name not in secrets
    ]
    problems += [f"{name}_env: {NOT_A_SETTING} {channel_type} channel" for name in sorted(set(secrets) - known)]
    return problems


def failure(status: str, error: str, *, retryable: bool, started: float, **detail: str) -> DeliveryResult:
    return DeliveryResult(
        ok=False,
        status=status,
        error=error,
        retryable=retryable,
        latency_ms=(time.perf_counter() - started) * 1000,
        detail=dict(detail),
    )


def _one_line(text: str) -> str:
    return truncate(" ".join(text.split()), _SNIPPET)


def http_post(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], redact: Redactor
) -> DeliveryResult:
    """POST `body` and classify the outcome; never raises."""
    where = endpoint(url)
    started = time.perf_counter()
    try:
        trace_headers: dict[str, str] = {}
        propagate.inject(trace_headers)  # W3C traceparent of the delivery span (child of the check's span)
        response = client.post(url, content=body, headers={"User-Agent": USER_AGENT, **trace_headers, **headers})
    except httpx.TimeoutException as exc:
        return failure(
            "timeout", f"{type(exc).__name__}: no answer from {where} in time", retryable=True, started=started
        )
    except httpx.ConnectError as exc:
        reason = redact(_one_line(str(exc)))
        return failure(
            "connect_error",
            f"{type(exc).__name__}: cannot connect to {where}" + (f" ({reason})" if reason else ""),
            retryable=True,
            started=started,
        )
    except httpx.TransportError as exc:
        return failure("transport_error", f"{type(exc).__name__} talking to {where}", retryable=True, started=started)
    except Exception as exc:  # send() must never raise; an unexpected error is not worth retrying blindly
        return failure("error", f"{type(exc).__name__} posting to {where}", retryable=False, started=started)
    return classify_response(response, where, redact, started)


def classify_response(response: httpx.Response, where: str, redact: Redactor, started: float) -> DeliveryResult:
    code = response.status_code
    latency = (time.perf_counter() - started) * 1000
    if 200 <= code < 300:
        return DeliveryResult(
            ok=True, status="delivered", retryable=False, latency_ms=latency, detail={"http_status": str(code)}
        )
    snippet = redact(_one_line(response.text)) if response.content else ""
    error = f"HTTP {code} from {where}" + (f": {snippet}" if snippet else "")
    detail = {"http_status": str(code)}
    if "retry-after" in response.headers:
        detail["retry_after"] = response.headers["retry-after"][:64]
    if code >= 500 or code in _RETRYABLE_4XX:
        return failure(f"http_{code}", error, retryable=True, started=started, **detail)
    return failure("rejected", error, retryable=False, started=started, **detail)


def deliver_each(
    requests: Sequence[tuple[str, Callable[[], DeliveryResult]]], started: float, send_by: float | None = None
) -> DeliveryResult:
    """Run one request per alert item; ok only if all succeeded. Stops early when the receiver is down, and
    starts no request after `send_by` (a `time.monotonic()` value: the delivery pass's time budget) but the first.

    `requests` is (item id, send function). The result's detail maps `item:<id>` to each item's status
    (`not_attempted` after an early stop, `deferred` past `send_by`), so the caller can acknowledge the items
    that went out and keep the others due (receivers drop repeats by id anyway).
    """
    outcomes: list[tuple[str, DeliveryResult]] = []
    deferred: list[str] = []
    for item_id, post in requests:
        if outcomes and send_by is not None and time.monotonic() >= send_by:
            deferred = [i for i, _ in requests[len(outcomes) :]]
            break
        result = post()
        outcomes.append((item_id, result))
        if not result.ok and result.status in _RECEIVER_DOWN:
            break
    attempted = {item_id for item_id, _ in outcomes} | set(deferred)
    skipped = [item_id for item_id, _ in requests if item_id not in attempted]
    failed = [(item_id, r) for item_id, r in outcomes if not r.ok]
    latency = (time.perf_counter() - started) * 1000
    detail = {f"item:{item_id}": r.status for item_id, r in outcomes}
    detail.update({f"item:{item_id}": "not_attempted" for item_id in skipped})
    detail.update({f"item:{item_id}": "deferred" for item_id in deferred})
    delivered = len(outcomes) - len(failed)
    detail["delivered"] = str(delivered)
    later = f"; {len(deferred)} deferred (the delivery pass's time budget ended)" if deferred else ""
    if not failed and not deferred:
        return DeliveryResult(ok=True, status="delivered", retryable=False, latency_ms=latency, detail=detail)
    detail["failed"] = str(len(failed) + len(skipped) + len(deferred))
    if not failed:
        return DeliveryResult(
            ok=False,
            status="deferred",
            error=f"{len(deferred)} of {len(requests)} events not sent yet{later}",
            retryable=True,
            latency_ms=latency,
            detail=detail,
        )
    first_retryable = next((r for _, r in failed if r.retryable), None)
    lead = first_retryable or failed[0][1]
    shown = "; ".join(f"{item_id}: {r.error}" for item_id, r in failed[:3])
    more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
    not_sent = f"; {len(skipped)} not attempted" if skipped else ""
    undelivered = len(failed) + len(skipped) + len(deferred)
    error = f"{undelivered} of {len(requests)} events not delivered: {shown}{more}{not_sent}{later}"
    return DeliveryResult(
        ok=False,
        status=lead.status,
        error=error,
        retryable=first_retryable is not None,
        latency_ms=latency,
        detail=detail,
    )


def nothing_to_send() -> DeliveryResult:
    return DeliveryResult(ok=True, status="delivered", retryable=False, detail={"delivered": "0"})


def guarded(redact: Redactor, what: str, run: Callable[[], DeliveryResult]) -> DeliveryResult:
    """Run a delivery; turn any unexpected exception into a non-retryable DeliveryResult (never raise)."""
    started = time.perf_counter()
    try:
        return run()
    except Exception as exc:
        return failure(
            "error",
            f"{type(exc).__name__} while {what}: {redact(_one_line(str(exc)))}",
            retryable=False,
            started=started,
        )


class GuardedChannel(AlertChannel):
    """A channel whose `send`/`resolve` run `_deliver` guarded: never raises, an unexpected exception
    becomes a non-retryable DeliveryResult with secrets redacted."""

    action: ClassVar[str]  # what a delivery does, for error messages ("sending CloudEvents")

    @abstractmethod
    def _deliver(self, batch: AlertBatch, *, force_resolved: bool) -> DeliveryResult:
        """Deliver the batch; `force_resolved` renders every item as resolved."""

    def send(self, batch: AlertBatch) -> DeliveryResult:
        return guarded(self.redact, self.action, lambda: self._deliver(batch, force_resolved=False))

    def resolve(self, batch: AlertBatch) -> DeliveryResult:
        return guarded(self.redact, self.action, lambda: self._deliver(batch, force_resolved=True))


class PooledHttpChannel(GuardedChannel):
    """A guarded channel that talks HTTP through one pooled `httpx.Client` (thread-safe), made on first use with
    the channel's timeout and kept until `close()`; a process forked after it was made opens its own."""

    def __init__(self, name: str, config: ChannelConfig, secrets: Mapping[str, SecretStr]) -> None:
        super().__init__(name, config, secrets)
        self._client: httpx.Client | None = None
        self._client_pid = 0
        self._client_lock = threading.Lock()
        self.clients_built = 0  # how many clients this channel has made (one, unless closed or forked)

    def http_client(self) -> httpx.Client:
        with self._client_lock:
            client = self._client
            if client is None or client.is_closed or self._client_pid != os.getpid():
                client = httpx.Client(
                    timeout=self.config.timeout_seconds,
                    follow_redirects=False,
                    limits=httpx.Limits(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=_MAX_CONNECTIONS),
                )
                self._client, self._client_pid = client, os.getpid()
                self.clients_built += 1
            return client

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
            mine = self._client_pid == os.getpid()
        if client is not None and mine:  # a client inherited through fork belongs to the parent's sockets
            client.close()
