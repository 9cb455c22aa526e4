"""OpenLineage FAIL RunEvents for contract violations, sent with openlineage-python (no Dagster imports).

Off by default. `LineageEmitter.from_env()` returns a disabled emitter (every call is a no-op) unless the
client's own configuration is present: `OPENLINEAGE_URL`, `OPENLINEAGE__TRANSPORT__TYPE`,
`OPENLINEAGE_CONFIG`, or an `openlineage.yml` in the working directory or in `~/.openlineage/`; and
`OPENLINEAGE_DISABLED=true` turns it off again. The transport itself is whatever `OpenLineageClient()`
builds from that configuration (HTTP with its 5 s `timeout` by default; `OPENLINEAGE__TRANSPORT__TIMEOUT`,
`OPENLINEAGE__TRANSPORT__RETRY` and the rest of the client's settings apply unchanged).

What is emitted, per `CheckRun` (`emit_violations`): one FAIL RunEvent per violation of severity WARNING
or above. INFO findings (early warnings such as "80 % of the freshness SLA consumed", a single failed
availability ping) are not emitted: they do not breach the SLA, and a FAIL event would tell lineage
consumers the data is bad. Each event carries

- `job`: namespace `floe.contract_monitor`, name `{contract}.{violation_type}`;
- `run.runId`: a UUIDv5 of the stored violation id (re-emitting a violation re-uses its run), or of the
  violation's identifying fields when the store did not record it;
- `run.facets.contractViolation`: exactly floe's contract-violation-facet.json (`_producer` "floe",
  `_schemaURL` https://floe.dev/schemas/contract-violation-facet.json, no other keys);
- `run.facets.errorMessage`: the violation message (ErrorMessageRunFacet 1-0-1, programmingLanguage python);
- `run.facets.floe_trace`: `{"traceparent": ...}` of the check span (our custom facet, FloeTraceRunFacet;
  the runner records the span's traceparent on each violation, so emitting after the span ended is fine);
- `run.facets.floe_context`: the violation's root-cause context (FR-047, checks/context.py: the table's snapshots
  since the last pass, the schema change, the check's pattern, pipeline runs and upstream status), our custom
  facet FloeContextRunFacet, when the violation carries one;
- `inputs[0]`: the checked table, namespace `iceberg://{catalog}`, name `{namespace}.{table}`, with
  `inputFacets.dataQualityAssertions` listing one failed assertion per emitted violation of the check.

Messages and expected/actual strings are those of `ContractViolationEvent`, already free of values of
classified columns; nothing else from the data is added.

Emission never blocks or fails a check: events are built in the caller (about 50 µs an event), then put on a
bounded queue that one daemon thread drains into `client.emit` (the thread starts with the first event
and ends when idle). A full queue drops the event; a transport error is caught. Both count in
`floe_lineage_emit_failures` (OpenTelemetry counter, attribute `reason`: `queue_full`, `transport`,
`build`, `exit`) and are logged at WARNING on the first failure and every `log_every`-th after it.
`flush(timeout)` waits for the queue to drain (tests, end of a step); at interpreter exit the queues get
`exit_flush_seconds` (default 2 s) to drain, never more, and what is left counts as dropped (`exit`).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import RunFacet, data_quality_assertions_dataset, error_message_run
from openlineage.client.transport import Transport
from opentelemetry import metrics

from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable, TableRef
from floe_monitoring_defs.models import ContractViolationEvent, ViolationSeverity
from floe_monitoring_defs.telemetry.tracing import current_traceparent

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/floe/floe-monitoring"
JOB_NAMESPACE = "floe.contract_monitor"
MIN_SEVERITY = ViolationSeverity.WARNING  # INFO early warnings are not SLA violations: not emitted

# floe's contract-violation-facet.json pins both (const). Note that "floe" is not an absolute URI, which
# OpenLineage's BaseFacet declares `_producer` to be (`format: uri`, an annotation in JSON Schema 2020-12).
CONTRACT_VIOLATION_FACET = "contractViolation"
CONTRACT_VIOLATION_PRODUCER = "floe"
CONTRACT_VIOLATION_SCHEMA_URL = "https://floe.dev/schemas/contract-violation-facet.json"

# Our custom run facet, named per the OpenLineage rules: key `{prefix}_{name}`, class
# `{Prefix}{Name}RunFacet`, a versioned `_schemaURL` with a JSON pointer.
TRACE_FACET = "floe_trace"
TRACE_FACET_SCHEMA_URL = "https://floe.dev/schemas/lineage/1-0-0/FloeTraceRunFacet.json#/$defs/FloeTraceRunFacet"

CONTEXT_FACET = "floe_context"
CONTEXT_FACET_SCHEMA_URL = "https://floe.dev/schemas/lineage/1-0-0/FloeContextRunFacet.json#/$defs/FloeContextRunFacet"

DEFAULT_QUEUE_SIZE = 1000
DEFAULT_LOG_EVERY = 100
DEFAULT_EXIT_FLUSH_SECONDS = 2.0
DEFAULT_IDLE_SECONDS = 5.0  # the sending thread ends after this long without an event

_RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, PROJECT_URL + "/lineage/run")
_CONFIG_ENV = ("OPENLINEAGE_URL", "OPENLINEAGE__TRANSPORT__TYPE", "OPENLINEAGE_CONFIG")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("floe-monitoring")
    except Exception:  # running from a source tree without metadata
        return "0.0.0"


# The producing code: the repository at the released tag (OpenLineage: "a git url with a given tag").
PRODUCER = f"{PROJECT_URL}/tree/v{_version()}"


# ---------------------------------------------------------------------------------------------------
# Facets
# ---------------------------------------------------------------------------------------------------


@attr.define
class ContractViolationRunFacet(RunFacet):
    """floe's `contractViolation` run facet (contract-violation-facet.json, additionalProperties false)."""

    contractName: str  # camelCase: the facet's wire names
    contractVersion: str
    violationType: str
    severity: str
    message: str
    timestamp: str
    element: str | None = attr.field(default=None)
    expectedValue: str | None = attr.field(default=None)
    actualValue: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return CONTRACT_VIOLATION_SCHEMA_URL


@attr.define
class FloeTraceRunFacet(RunFacet):
    """`floe_trace`: the W3C traceparent of the check span that found the violation."""

    traceparent: str

    @staticmethod
    def _get_schema() -> str:
        return TRACE_FACET_SCHEMA_URL


@attr.define
class FloeContextRunFacet(RunFacet):
    """`floe_context`: what explains the violation (FloeContextRunFacet.json); absent parts are left out."""

    version: int
    check_type: str  # snake_case, as the context is written everywhere else (store, webhook, Dagster metadata)
    table: str
    generated_at: str
    history: dict[str, Any] | None = attr.field(default=None)
    pattern: dict[str, Any] | None = attr.field(default=None)
    runs: list[dict[str, Any]] | None = attr.field(default=None)
    upstream: list[dict[str, Any]] | None = attr.field(default=None)
    notes: list[str] | None = attr.field(default=None)
    truncated: bool | None = attr.field(default=None)
    elapsed_ms: float | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return CONTEXT_FACET_SCHEMA_URL


_CONTEXT_FIELDS = tuple(a.name for a in attr.fields(FloeContextRunFacet) if a.name not in ("_producer", "_schemaURL"))


def context_facet(event: ContractViolationEvent, producer: str = PRODUCER) -> FloeContextRunFacet | None:
    """The `floe_context` facet of a violation, None when it carries no (usable) context."""
    context = event.context
    if not context or not all(k in context for k in ("version", "check_type", "table", "generated_at")):
        return None
    fields = {k: context[k] for k in _CONTEXT_FIELDS if context.get(k) is not None}
    try:
        return FloeContextRunFacet(producer=producer, **fields)
    except TypeError:  # a context of another shape (a newer writer): left out rather than sent half-typed
        return None


def rfc3339(value: datetime) -> str:
    """UTC, RFC 3339 with a `Z` suffix and microseconds (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def contract_violation_facet(event: ContractViolationEvent) -> dict[str, Any]:
    """The `contractViolation` facet of one violation, exactly the keys of contract-violation-facet.json.

    element / expectedValue / actualValue are always present, None (JSON null) when unknown; the
    client's serializer drops nulls on the wire, which the schema also allows.
    """
    return {
        "_producer": CONTRACT_VIOLATION_PRODUCER,
        "_schemaURL": CONTRACT_VIOLATION_SCHEMA_URL,
        "contractName": event.contract_name,
        "contractVersion": event.contract_version,
        "violationType": event.violation_type.value,
        "severity": event.severity.value,
        "message": event.message,
        "element": event.element,
        "expectedValue": event.expected_value,
        "actualValue": event.actual_value,
        "timestamp": rfc3339(event.timestamp),
    }


def _contract_violation_run_facet(event: ContractViolationEvent) -> ContractViolationRunFacet:
    fields = contract_violation_facet(event)
    producer = fields.pop("_producer")
    fields.pop("_schemaURL")  # set by the class (_get_schema)
    return ContractViolationRunFacet(producer=producer, **fields)


def data_quality_assertion(event: ContractViolationEvent) -> data_quality_assertions_dataset.Assertion:
    """One failed assertion for a violation: the drift kind / quality metric, the column, the strings."""
    kind = event.metadata.get("drift") or event.violation_type.value
    rule = event.metadata.get("rule")
    return data_quality_assertions_dataset.Assertion(
        assertion=(event.metadata.get("metric") or kind) if rule else kind,
        success=False,
        column=event.element,
        severity=event.severity.value,
        name=rule or f"{event.violation_type.value}.{kind}",
        description=event.message,
        expected=event.expected_value,
        actual=event.actual_value,
        params=None,
    )


def dataset_namespace(ref: TableRef, default_catalog: str | None = None) -> str:
    """`iceberg://{catalog}`: the contract's catalog name, else the monitor's default (FLOE_CATALOG).

    The catalog name, not its URL: a URL may carry credentials, and the name is what the contract says.
    """
    return f"iceberg://{ref.catalog or default_catalog or 'default'}"


def run_id(event: ContractViolationEvent, violation_id: str | None = None, table: str | None = None) -> str:
    """A UUIDv5: of the stored violation id when known (stable across re-emits), else of its identity."""
    key = violation_id or "|".join(
        (
            event.contract_name,
            event.contract_version,
            table or event.metadata.get("table", ""),
            event.violation_type.value,
            event.metadata.get("drift", ""),
            event.element or "",
            rfc3339(event.timestamp),
        )
    )
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, key))


def build_run_event(
    event: ContractViolationEvent,
    table: TableRef,
    *,
    violation_id: str | None = None,
    assertions: Sequence[data_quality_assertions_dataset.Assertion] | None = None,
    traceparent: str | None = None,
    default_catalog: str | None = None,
    producer: str = PRODUCER,
) -> RunEvent:
    """The FAIL RunEvent of one violation on `table` (pure; see the module docstring for its content).

    `assertions` defaults to this violation's own; `emit_violations` passes those of the whole check.
    """
    facets: dict[str, RunFacet] = {
        CONTRACT_VIOLATION_FACET: _contract_violation_run_facet(event),
        "errorMessage": error_message_run.ErrorMessageRunFacet(
            message=event.message, programmingLanguage="python", producer=producer
        ),
    }
    if traceparent:
        facets[TRACE_FACET] = FloeTraceRunFacet(traceparent=traceparent, producer=producer)
    if (context := context_facet(event, producer)) is not None:
        facets[CONTEXT_FACET] = context
    dq = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=list(assertions) if assertions is not None else [data_quality_assertion(event)],
        producer=producer,
    )
    return RunEvent(
        eventType=RunState.FAIL,
        eventTime=rfc3339(event.timestamp),
        run=Run(runId=run_id(event, violation_id, table.identifier), facets=facets),
        job=Job(namespace=JOB_NAMESPACE, name=f"{event.contract_name}.{event.violation_type.value}"),
        inputs=[
            InputDataset(
                namespace=dataset_namespace(table, default_catalog),
                name=table.identifier,
                inputFacets={"dataQualityAssertions": dq},
            )
        ],
        outputs=[],
        producer=producer,
    )


class ViolationRun(Protocol):
    """What `emit_violations` reads of a `checks.runner.CheckRun`."""

    @property
    def contract(self) -> MonitoredContract: ...

    @property
    def table(self) -> MonitoredTable: ...

    @property
    def violations(self) -> Sequence[ContractViolationEvent]: ...

    @property
    def violation_ids(self) -> Sequence[str]: ...


def emitted_violations(run: ViolationRun) -> list[tuple[ContractViolationEvent, str | None]]:
    """The violations of a check that become events (WARNING and above), with their stored ids if any."""
    ids: Sequence[str | None] = run.violation_ids if len(run.violation_ids) == len(run.violations) else ()
    pairs = zip(run.violations, ids or [None] * len(run.violations), strict=True)
    return [(v, vid) for v, vid in pairs if v.severity >= MIN_SEVERITY]


def build_run_events(
    run: ViolationRun,
    traceparent: str | None = None,
    default_catalog: str | None = None,
    producer: str = PRODUCER,
    fallback_traceparent: str | None = None,
) -> list[RunEvent]:
    """One FAIL RunEvent per emitted violation of `run`, each listing all of the check's assertions.

    The trace context of each event: `traceparent` if given, else the one the runner recorded on the
    violation (`metadata["traceparent"]`, the check span's), else `fallback_traceparent`.
    """
    chosen = emitted_violations(run)
    assertions = [data_quality_assertion(v) for v, _ in chosen]
    return [
        build_run_event(
            v,
            run.table.ref,
            violation_id=vid,
            assertions=assertions,
            traceparent=traceparent or v.metadata.get("traceparent") or fallback_traceparent,
            default_catalog=default_catalog,
            producer=producer,
        )
        for v, vid in chosen
    ]


# ---------------------------------------------------------------------------------------------------
# Emitter
# ---------------------------------------------------------------------------------------------------


@functools.cache
def _failures_counter() -> metrics.Counter:
    return metrics.get_meter("floe.monitoring").create_counter(
        "floe_lineage_emit_failures",
        unit="1",
        description="OpenLineage events not delivered (reason: queue_full, transport, build, exit)",
    )


def lineage_configured(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> bool:
    """Whether the OpenLineage client's own configuration is present (and not OPENLINEAGE_DISABLED)."""
    env = os.environ if environ is None else environ
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if any(env.get(name) for name in _CONFIG_ENV):
        return True
    return any(p.is_file() for p in _config_files(cwd))


def _config_files(cwd: Path | None = None) -> list[Path]:
    return [(cwd or Path.cwd()) / "openlineage.yml", Path.home() / ".openlineage" / "openlineage.yml"]


_STOP = object()
_live: weakref.WeakSet[LineageEmitter] = weakref.WeakSet()


class LineageEmitter:
    """Sends contract-violation FAIL events through an OpenLineageClient, off the caller's thread.

    `lineage_emitter()` in production: one emitter per process and configuration, from the environment
    (disabled unless OpenLineage is configured). `LineageEmitter.from_env()` builds a new one;
    `LineageEmitter(transport=...)` or `LineageEmitter(client=...)` choose the transport;
    `LineageEmitter.disabled()` is a no-op. Thread-safe. The sending thread starts with the first event
    and ends after `idle_seconds` without one, so an emitter that is dropped leaves nothing running.
    """

    def __init__(
        self,
        client: OpenLineageClient | None = None,
        *,
        transport: Transport | None = None,
        enabled: bool = True,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        log_every: int = DEFAULT_LOG_EVERY,
        default_catalog: str | None = None,
        exit_flush_seconds: float | None = DEFAULT_EXIT_FLUSH_SECONDS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        if client is not None and transport is not None:
            raise ValueError("pass a client or a transport, not both")
        self.enabled = enabled
        self._client = client
        if enabled and client is None:
            self._client = OpenLineageClient(transport=transport) if transport is not None else OpenLineageClient()
        self.default_catalog = default_catalog
        self.log_every = max(1, log_every)
        self.exit_flush_seconds = exit_flush_seconds
        self.idle_seconds = idle_seconds
        self.queued = 0  # events accepted onto the queue
        self.sent = 0  # events the transport took without raising
        self.failed = 0  # transport errors
        self.dropped = 0  # events dropped: queue full, or still queued when the process exited
        self.build_errors = 0  # runs (or events) that could not be built or queued
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0  # accepted and not yet finished (queued + in flight)
        self._problems = 0  # failures of any kind, for log throttling
        self._worker: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        if enabled:
            _live.add(self)

    @classmethod
    def disabled(cls) -> LineageEmitter:
        return cls(enabled=False)

    @classmethod
    def from_env(cls, **kwargs: Any) -> LineageEmitter:
        """The client's standard configuration (OPENLINEAGE_URL, OPENLINEAGE__*, openlineage.yml), else off.

        A configuration the client cannot use is logged and leaves lineage off: it never stops the monitor.
        `kwargs` go to the constructor (queue_size, log_every, ...); `default_catalog` defaults to FLOE_CATALOG.
        """
        if not lineage_configured():
            return cls.disabled()
        kwargs.setdefault("default_catalog", os.environ.get("FLOE_CATALOG") or None)
        try:
            emitter = cls(**kwargs)
        except Exception as exc:
            log.warning(
                "OpenLineage configuration unusable (%s: %s); lineage events are off", type(exc).__name__, _short(exc)
            )
            return cls.disabled()
        transport = emitter._client.transport if emitter._client is not None else None
        log.info("OpenLineage events on, via the %s transport", getattr(transport, "kind", "?"))
        return emitter

    @property
    def client(self) -> OpenLineageClient | None:
        return self._client

    @property
    def pending(self) -> int:
        """Events accepted and not yet handed to the transport (queued or in flight)."""
        with self._lock:
            return self._pending

    # -- producing ---------------------------------------------------------------------------------

    def emit_violations(self, run: ViolationRun, traceparent: str | None = None) -> None:
        """Queue one FAIL event per WARNING+ violation of `run`; returns at once, never raises.

        `traceparent` defaults to the check span's, which the runner records on each violation; failing
        that, to the active span's.
        """
        if not self.enabled or self._closed or not run.violations:
            return
        try:
            events = build_run_events(
                run,
                traceparent,
                self.default_catalog,
                fallback_traceparent=None if traceparent else current_traceparent(),
            )
        except Exception as exc:
            self._problem("build", exc)
            return
        for event in events:
            self.emit(event)

    def emit(self, event: RunEvent) -> bool:
        """Queue one prepared event; False when disabled, closed or dropped (queue full). Never raises."""
        if not self.enabled or self._closed:
            return False
        try:
            self._after_fork()
            with self._lock:
                self._pending += 1
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self._done()
                self._problem("queue_full", None)
                return False
            with self._lock:
                self.queued += 1
            self._ensure_worker()  # after the put: a worker that just went idle is replaced
            return True
        except Exception as exc:  # e.g. a thread cannot start: lineage must not take a check down
            self._problem("build", exc)
            return False

    # -- draining ----------------------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was handed to the transport (or failed); False on timeout."""
        if not self.enabled:
            return True
        deadline = time.monotonic() + max(0.0, timeout)
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Flush (bounded), stop the worker and close the client's transport; further emits are no-ops."""
        if not self.enabled or self._closed:
            return True
        drained = self.flush(timeout)
        self._closed = True
        with self._lock:
            worker = self._worker
        if worker is not None and worker.is_alive():
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                pass  # the worker is stuck in a transport call; it is a daemon thread
            worker.join(max(0.0, min(timeout, 1.0)))
        if self._client is not None:
            try:
                self._client.close(0)
            except Exception as exc:
                log.debug("closing the OpenLineage client failed: %s", type(exc).__name__)
        return drained

    def _after_fork(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's thread and queue do not exist here
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._idle = threading.Condition(self._lock)
            self._queue = queue.Queue(maxsize=self._queue.maxsize)
            self._worker = None
            self._pending = 0

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker = threading.Thread(target=self._drain, name="floe-lineage", daemon=True)
            self._worker.start()

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:  # go idle only if nothing arrived meanwhile (emit re-checks under this lock)
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            if item is _STOP:
                return
            try:
                assert self._client is not None
                self._client.emit(item)
                with self._lock:
                    self.sent += 1
            except Exception as exc:  # any transport or serialization error: count, log throttled, go on
                self._problem("transport", exc)
            finally:
                self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending <= 0:
                self._idle.notify_all()

    def _at_exit(self, deadline: float) -> None:
        """Give the queue until `deadline`; count what is left as dropped (reason `exit`)."""
        if self._closed or self._pid != os.getpid() or self.exit_flush_seconds is None:
            return
        own = time.monotonic() + self.exit_flush_seconds
        if self.flush(max(0.0, min(deadline, own) - time.monotonic())):
            return
        left = self.pending
        for _ in range(left):
            self._problem("exit", None, log_it=False)
        log.warning(
            "OpenLineage: %d event(s) still queued at exit were dropped (%d transport errors so far)", left, self.failed
        )

    def _problem(self, reason: str, exc: BaseException | None, *, log_it: bool = True) -> None:
        try:
            _failures_counter().add(1, {"reason": reason})
        except Exception:  # a broken metrics pipeline must not break lineage either
            pass
        with self._lock:
            if reason in ("queue_full", "exit"):
                self.dropped += 1
            elif reason == "transport":
                self.failed += 1
            else:
                self.build_errors += 1
            self._problems += 1
            n = self._problems
        if log_it and (n == 1 or n % self.log_every == 0):
            what = "queue full, event dropped" if exc is None else f"{type(exc).__name__}: {_short(exc)}"
            log.warning(
                "OpenLineage event not delivered (%s); %d delivery problems so far (%d dropped, "
                "%d transport errors); checks are unaffected",
                what,
                n,
                self.dropped,
                self.failed,
            )


def _short(exc: BaseException) -> str:
    """An exception for a log line: the HTTP status if there is one, else its text with any URL query cut."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    text = str(exc).split("?", 1)[0]
    return text[:200]


@atexit.register
def _flush_at_exit() -> None:
    """At interpreter exit, every live emitter drains for at most its `exit_flush_seconds` (all together)."""
    emitters = [e for e in list(_live) if e.exit_flush_seconds is not None]
    if not emitters:
        return
    deadline = time.monotonic() + max(e.exit_flush_seconds or 0.0 for e in emitters)
    for emitter in emitters:
        try:
            emitter._at_exit(deadline)
        except Exception:  # never fail the interpreter's exit
            pass


_emitters: dict[tuple[Any, ...], LineageEmitter] = {}
_emitters_lock = threading.Lock()
_ALIASES = "OPENLINEAGE__TRANSPORT__TRANSPORTS__DEFAULT_HTTP"  # written into os.environ by the client itself


def _config_key() -> tuple[Any, ...]:
    env = tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith("OPENLINEAGE") and not k.startswith(_ALIASES))
    )
    files = tuple((str(p), p.stat().st_mtime_ns) for p in _config_files() if p.is_file())
    return (env, files, os.environ.get("FLOE_CATALOG"), os.getpid())


def lineage_emitter() -> LineageEmitter:
    """The process's emitter for the current OpenLineage configuration (built by `from_env` on first use).

    Cached per configuration (the OPENLINEAGE* variables, the openlineage.yml files, FLOE_CATALOG), so
    every step of a process shares one client and one sending thread, and a changed environment (tests)
    gets its own.
    """
    key = _config_key()
    with _emitters_lock:
        emitter = _emitters.get(key)
        if emitter is None:
            emitter = _emitters[key] = LineageEmitter.from_env()
        return emitter
