"""Delivery of what the outbox holds to the channels (FR-028..030, edge case 6, SC-003).

A delivery pass claims due deliveries by whole (channel, contract) groups with a lease
(`OutboxRepository.claim_due`), so everything due for one contract and channel goes out as ONE batch, sends
the batches and acknowledges them; a failure is retried with exponential backoff, so nothing is lost while a
channel is down. Several processes may run passes on one store: a leased delivery is sent by one of them
only, and a lease that expires unacknowledged (a crash after sending) is sent again with the same alert id
(at-least-once with a stable idempotency key).

Time is bounded, so a pass fits in a Dagster sensor tick whatever the receivers do:
- channels are served in parallel (a thread pool), each with up to `delivery_concurrency_per_channel` batches
  in flight; a channel starts with one batch and opens up once its receiver has answered in this pass, so a
  dead receiver is tried one batch at a time;
- a circuit breaker per channel: after `breaker_failure_threshold` timeouts / connection errors in a row the
  channel's remaining batches are held at once (failed attempts with status `circuit_open`, retried with the
  usual backoff) and the channel rests for `breaker_cooldown_seconds` (at most `retry_max_seconds`), after
  which one batch probes it (half-open). A hanging channel costs its own timeout, never the others' time;
- a time budget (`dispatch_budget_seconds`; `eager_dispatch_budget_seconds` for a check's own attempt): no
  batch, nor a per-alert request of a batch, starts after it; what was not attempted stays due for the next
  pass. A pass lasts at most the budget plus one channel timeout.

A configured channel that cannot be built (`unavailable`) is held the same way with `channel_unavailable`.
The breaker state belongs to the channel object, so it lasts as long as the channel does (the Dagster adapter
keeps its channels, and their pooled HTTP clients, across sensor ticks: `ChannelCache`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry import propagate

from floe_monitoring_defs.alerting.channels.base import AlertChannel
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind, DeliveryResult
from floe_monitoring_defs.config import AlertConfig
from floe_monitoring_defs.models import utcnow
from floe_monitoring_defs.store.outbox import Attempt, Delivery, OutboxRepository
from floe_monitoring_defs.telemetry.metrics import monitor_metrics
from floe_monitoring_defs.telemetry.tracing import tracer

log = logging.getLogger(__name__)

# Failures that say the receiver cannot be reached or does not answer: the next request would most likely wait
# the same timeout. They count towards the circuit breaker; an answer, even an error status, resets it.
TRIPPING_STATUSES = frozenset({"timeout", "connect_error", "transport_error"})
CIRCUIT_OPEN = "circuit_open"
CHANNEL_UNAVAILABLE = "channel_unavailable"
_MAX_THREADS = 64  # batches in flight in one pass, all channels together
_WAIT_SLICE = 0.2  # seconds a waiting worker sleeps before it looks at the budget again


class DeliveryReport(Protocol):
    """The counts a delivery pass adds to (alerting.dispatch.DispatchReport has these fields)."""

    delivered: int
    failed: int
    batches: int
    held: dict[str, int]


@dataclass
class DeliveryCounts:
    """A DeliveryReport for callers without a DispatchReport (benchmarks, tools)."""

    delivered: int = 0
    failed: int = 0
    batches: int = 0
    held: dict[str, int] = field(default_factory=dict)


@dataclass
class DeliveryPass:
    """What one delivery pass did, beyond the report's counts."""

    claimed: int = 0  # deliveries claimed
    batches: int = 0  # batches sent (a group with both violations and recoveries is one batch of two requests)
    requests_by_channel: dict[str, int] = field(default_factory=dict)  # channel calls (send/resolve) made
    circuit_open: dict[str, int] = field(default_factory=dict)  # channel -> deliveries held by its breaker
    deferred: int = 0  # claimed but not attempted before the budget ended: due again at once
    budget_exhausted: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        text = f"{self.claimed} claimed, {self.batches} batches"
        if self.circuit_open:
            text += "; circuit open (held, retried later): " + ", ".join(
                f"{name} {n}" for name, n in sorted(self.circuit_open.items())
            )
        if self.budget_exhausted:
            text += f"; time budget reached, {self.deferred} left due for the next pass"
        return text


class CircuitBreaker:
    """Consecutive tripping failures of one channel; open (`allows` is False) for a cooldown once they reach the
    threshold. After the cooldown it allows again (half-open): the next result closes it (an answer) or opens it
    for another cooldown (one more tripping failure). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures = 0
        self.open_until: datetime | None = None

    def allows(self, now: datetime) -> bool:
        with self._lock:
            return self.open_until is None or now >= self.open_until

    def record(self, tripped: bool, now: datetime, threshold: int, cooldown: timedelta) -> bool:
        """Count one result; True when this result opened the breaker."""
        with self._lock:
            if not tripped:
                self.failures, self.open_until = 0, None
                return False
            self.failures += 1
            if self.failures >= threshold:
                self.open_until = now + cooldown
                return True
            return False


_BREAKERS: weakref.WeakKeyDictionary[AlertChannel, CircuitBreaker] = weakref.WeakKeyDictionary()
_BREAKERS_LOCK = threading.Lock()


def breaker_for(channel: AlertChannel) -> CircuitBreaker:
    """The circuit breaker of this channel object (made on first use, gone with the channel)."""
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(channel)
        if breaker is None:
            breaker = _BREAKERS[channel] = CircuitBreaker()
        return breaker


class ChannelCache:
    """Keeps built channels across delivery passes, so their pooled clients, connections and circuit breakers
    last: `reuse(fresh)` gives the kept channel of that name when it was built from the same type, settings and
    secrets, else keeps `fresh` and closes the one it replaces. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, AlertChannel] = {}

    def reuse(self, fresh: AlertChannel) -> AlertChannel:
        with self._lock:
            kept = self._channels.get(fresh.name)
            if kept is not None and _same(kept, fresh):
                return kept
            self._channels[fresh.name] = fresh
        if kept is not None:
            kept.close()
        return fresh

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()


def _same(a: AlertChannel, b: AlertChannel) -> bool:
    # SecretStr compares the secret values; nothing is printed or kept beyond the channels themselves.
    return type(a) is type(b) and a.config == b.config and a.secrets == b.secrets


class _Acks:
    """Acknowledgements written by group commit: a worker adds its batch's attempts; if no write is under way it
    writes everything added so far in one transaction (again, until nothing is left), else it returns at once
    and the writer takes its attempts along. One transaction per batch made the store's write lock the
    bottleneck of a pass over many contracts. An acknowledgement lost with the process is harmless: its
    deliveries stay leased and are sent again, with the same ids, once the lease expires."""

    def __init__(self, alerts: OutboxRepository, clock: Callable[[], datetime]) -> None:
        self._alerts = alerts
        self._clock = clock
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []
        self._released: list[str] = []
        self._writing = False

    def add(self, attempts: Sequence[Attempt] = (), released: Sequence[str] = ()) -> None:
        """Record `attempts` and give back `released` (claimed, not attempted: due at once). Raises the store's
        error when this call did the writing and it failed."""
        with self._lock:
            self._attempts.extend(attempts)
            self._released.extend(released)
            if self._writing:
                return
            self._writing = True
        try:
            while True:
                with self._lock:
                    todo, self._attempts = self._attempts, []
                    back, self._released = self._released, []
                    if not todo and not back:
                        self._writing = False
                        return
                if todo:
                    self._alerts.record_attempts(todo, self._clock(), None)
                if back:
                    self._alerts.release_claims(back, self._clock())
        except BaseException:
            with self._lock:
                self._writing = False
            raise


@dataclass
class _Group:
    contract: str
    deliveries: list[Delivery]


class _ChannelRun:
    """One channel's batches in one pass, taken by its workers (worker 0 first; the others once the receiver
    answered in this pass)."""

    def __init__(self, channel: AlertChannel, groups: list[_Group], breaker: CircuitBreaker, workers: int) -> None:
        self.channel = channel
        self.breaker = breaker
        self.queue: deque[_Group] = deque(groups)
        self.workers = workers
        self.cond = threading.Condition()
        self.responsive = False
        self.stop: str | None = None  # "budget" | "circuit_open" | "error"
        self.requests = 0
        self.error: BaseException | None = None


class Deliverer:
    """Delivery passes over one outbox and a set of channels (see the module docstring)."""

    def __init__(
        self,
        alerts: OutboxRepository,
        channels: Mapping[str, AlertChannel],
        config: AlertConfig,
        clock: Callable[[], datetime] = utcnow,
        *,
        unavailable: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.alerts = alerts
        self.channels = dict(channels)
        self.unavailable = {k: v for k, v in (unavailable or {}).items() if k not in self.channels}
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()  # guards the report and the pass counts (workers add to them)
        self._acks = _Acks(alerts, clock)

    # -- a pass ----------------------------------------------------------------------------------

    def deliver(
        self, report: DeliveryReport, outbox_ids: Sequence[str] | None = None, *, budget_seconds: float | None = None
    ) -> DeliveryPass:
        """Deliver what is due (only the alerts `outbox_ids` when given: a check's eager attempt), page by page of
        claimed groups, until nothing is due or the budget (default: `dispatch_budget_seconds`, or
        `eager_dispatch_budget_seconds` with `outbox_ids`) is spent. Raises the first store error, after the
        batches already in flight are done (what was sent and not acknowledged is sent again after the lease)."""
        if budget_seconds is None:
            eager = outbox_ids is not None
            budget_seconds = self.config.eager_dispatch_budget_seconds if eager else self.config.dispatch_budget_seconds
        started = self.monotonic()
        deadline = started + budget_seconds
        out = DeliveryPass()
        lease = timedelta(seconds=self.config.delivery_lease_seconds)
        caller = otel_context.get_current()  # deliveries without a check's traceparent stay under the caller's span
        try:
            while True:
                if self.monotonic() >= deadline:
                    out.budget_exhausted = True
                    break
                now = self.clock()
                claimed = self.alerts.claim_due(now, lease, outbox_ids, groups=self.config.delivery_groups_per_claim)
                if not claimed:
                    break
                out.claimed += len(claimed)
                groups = self._pass(claimed, deadline, caller, report, out)
                if out.budget_exhausted or groups < self.config.delivery_groups_per_claim:
                    break
        finally:
            out.seconds = self.monotonic() - started
        return out

    def _pass(
        self,
        claimed: list[Delivery],
        deadline: float,
        caller: otel_context.Context,
        report: DeliveryReport,
        out: DeliveryPass,
    ) -> int:
        """Deliver one claimed page; returns its number of groups."""
        by_group: dict[tuple[str, str], list[Delivery]] = {}
        for d in claimed:
            by_group.setdefault((d.channel, d.entry.event.contract_name), []).append(d)
        runs: dict[str, _ChannelRun] = {}
        unavailable: dict[str, list[_Group]] = {}
        for (channel_name, contract), deliveries in by_group.items():
            if channel_name in self.unavailable:
                unavailable.setdefault(channel_name, []).append(_Group(contract, deliveries))
                continue
            channel = self.channels.get(channel_name)
            if channel is None:  # the channel was removed from the config: keep the deliveries for later
                log.warning(
                    "channel %s is no longer configured; %d alerts for %s wait", channel_name, len(deliveries), contract
                )
                continue
            run = runs.get(channel_name)
            if run is None:
                run = runs[channel_name] = _ChannelRun(channel, [], breaker_for(channel), 0)
            run.queue.append(_Group(contract, deliveries))
        for channel_name, groups in unavailable.items():
            self._hold(channel_name, CHANNEL_UNAVAILABLE, self.unavailable[channel_name], groups, report)
        limit = self.config.delivery_concurrency_per_channel
        for run in runs.values():
            run.workers = min(limit, len(run.queue))
        jobs = [(run, i) for run in runs.values() for i in range(run.workers)]
        if len(jobs) == 1:  # one batch in flight at most: no thread needed
            self._work(jobs[0][0], 0, deadline, caller, report, out)
        elif jobs:
            with ThreadPoolExecutor(
                max_workers=min(len(jobs), _MAX_THREADS), thread_name_prefix="floe-deliver"
            ) as pool:
                for run, i in jobs:
                    pool.submit(self._work, run, i, deadline, caller, report, out)
        first_error: BaseException | None = None
        for run in runs.values():
            self._settle(run, report, out)
            first_error = first_error or run.error
            out.requests_by_channel[run.channel.name] = out.requests_by_channel.get(run.channel.name, 0) + run.requests
        if first_error is not None:
            raise first_error
        return len(by_group)

    def _settle(self, run: _ChannelRun, report: DeliveryReport, out: DeliveryPass) -> None:
        """What a channel's workers left: held (breaker open), given back (budget), or leased (a store error)."""
        left = list(run.queue)
        if not left:
            return
        if run.stop == CIRCUIT_OPEN:
            reason = (
                f"circuit open: {run.channel.name} did not answer {self.config.breaker_failure_threshold} times in a "
                f"row (timeouts or connection errors); it is tried again after its cooldown"
            )
            self._hold(run.channel.name, CIRCUIT_OPEN, reason, left, report)
            out.circuit_open[run.channel.name] = out.circuit_open.get(run.channel.name, 0) + sum(
                len(g.deliveries) for g in left
            )
        elif run.stop == "budget":
            ids = [d.id for g in left for d in g.deliveries]
            self._acks.add(released=ids)
            out.deferred += len(ids)
            out.budget_exhausted = True

    # -- a channel's worker ----------------------------------------------------------------------

    def _take(self, run: _ChannelRun, worker: int, deadline: float) -> _Group | None:
        with run.cond:
            while True:
                if run.stop is not None or not run.queue:
                    return None
                if self.monotonic() >= deadline:
                    run.stop = "budget"
                    run.cond.notify_all()
                    return None
                if not run.breaker.allows(self.clock()):
                    run.stop = CIRCUIT_OPEN
                    run.cond.notify_all()
                    return None
                if worker == 0 or run.responsive:
                    return run.queue.popleft()
                run.cond.wait(max(min(_WAIT_SLICE, deadline - self.monotonic()), 0.001))

    def _work(
        self,
        run: _ChannelRun,
        worker: int,
        deadline: float,
        caller: otel_context.Context,
        report: DeliveryReport,
        out: DeliveryPass,
    ) -> None:
        while (group := self._take(run, worker, deadline)) is not None:
            try:
                tripped = self._deliver_group(run, group, deadline, caller, report, out)
            except BaseException as exc:  # a store error: stop this channel, raise once the pass is done
                with run.cond:
                    run.error = run.error or exc
                    run.stop = "error"
                    run.cond.notify_all()
                return
            threshold = self.config.breaker_failure_threshold
            cooldown = timedelta(seconds=min(self.config.breaker_cooldown_seconds, self.config.retry_max_seconds))
            opened = run.breaker.record(tripped, self.clock(), threshold, cooldown)
            if opened:
                log.warning(
                    "channel %s: %d timeouts or connection errors in a row, circuit open for %.0f s; "
                    "its other alerts are held and retried",
                    run.channel.name,
                    run.breaker.failures,
                    cooldown.total_seconds(),
                )
            with run.cond:
                run.responsive = run.responsive or not tripped
                run.cond.notify_all()

    def _deliver_group(
        self,
        run: _ChannelRun,
        group: _Group,
        deadline: float,
        caller: otel_context.Context,
        report: DeliveryReport,
        out: DeliveryPass,
    ) -> bool:
        """Send one group (a violations part and a recoveries part, each one call); True if a call tripped."""
        channel, contract = run.channel, group.contract
        with self._lock:
            report.batches += 1
            out.batches += 1
        # The channel's clock is time.monotonic(), whatever clock this Deliverer was given.
        send_by = time.monotonic() + (deadline - self.monotonic())
        tripped = False
        parts: dict[bool, list[Delivery]] = {False: [], True: []}
        for d in group.deliveries:
            parts[d.entry.kind == AlertKind.RESOLVED.value].append(d)
        for resolved, part in parts.items():
            if not part:
                continue
            if tripped:  # the receiver just failed to answer: the other part waits with it
                self._fail(channel.name, contract, part, "not_attempted", None, 0.0, report)
                continue
            items = tuple(AlertItem(d.entry.id, AlertKind(d.entry.kind), d.entry.event) for d in part)
            latest = max(items, key=lambda i: i.event.timestamp)
            consumers = tuple(sorted({c for i in items for c in i.event.affected_consumers}))
            batch = AlertBatch(
                contract, latest.event.contract_version, items, consumers, self.config.dagster_url, send_by=send_by
            )
            started = time.perf_counter()
            # Deliver inside a span whose parent is the span of the check that found the newest alert,
            # so the receiver's `traceparent` belongs to that check's trace (FR-035).
            carrier = {k: v for k, v in latest.event.metadata.items() if k == "traceparent"}
            parent = propagate.extract(carrier, context=caller)
            with tracer().start_as_current_span(
                "floe.alert.deliver",
                context=parent,
                attributes={"alert.channel": channel.name, "alert.items": len(items), "floe.contract.name": contract},
            ) as span:
                result = self._call(channel, batch, resolved)
                span.set_attribute("alert.delivery_status", "delivered" if result.ok else "failed")
            with self._lock:
                run.requests += 1
            latency = (time.perf_counter() - started) * 1000
            self._acknowledge(channel.name, contract, part, result, latency, report)
            tripped = not result.ok and result.status in TRIPPING_STATUSES
        return tripped

    def _acknowledge(
        self,
        channel_name: str,
        contract: str,
        part: list[Delivery],
        result: DeliveryResult,
        latency: float,
        report: DeliveryReport,
    ) -> None:
        """Record one call's outcome per delivery. A channel that reports items one by one (`item:<id>` in the
        detail) has the items it delivered acknowledged and those it deferred given back untried."""
        if result.ok:
            with self._lock:
                report.delivered += len(part)
            self._acks.add([Attempt(d.id, channel_name, True, result.status, None, latency) for d in part])
            return
        status = {d.id: result.detail.get(f"item:{d.entry.id}") for d in part}
        done = [d for d in part if status[d.id] == "delivered"]
        later = [d for d in part if status[d.id] == "deferred"]
        failed = [d for d in part if status[d.id] not in ("delivered", "deferred")]
        attempts = [Attempt(d.id, channel_name, True, "delivered", None, latency) for d in done]
        retry_at = self._retry_at(failed) if failed else None
        attempts += [
            Attempt(d.id, channel_name, False, _failed_status(status[d.id], result), result.error, latency, retry_at)
            for d in failed
        ]
        with self._lock:
            report.delivered += len(done)
            report.failed += len(failed)
        self._acks.add(attempts, [d.id for d in later])
        if failed and retry_at is not None:
            monitor_metrics().delivery_failures.add(len(failed), {"channel": channel_name})
            log.warning(
                "delivery of %d alerts for %s to %s failed (%s: %s); retry at %s",
                len(failed),
                contract,
                channel_name,
                result.status,
                result.error,
                retry_at.isoformat(),
            )

    def _fail(
        self,
        channel_name: str,
        contract: str,
        part: list[Delivery],
        status: str,
        error: str | None,
        latency: float,
        report: DeliveryReport,
    ) -> None:
        retry_at = self._retry_at(part)
        monitor_metrics().delivery_failures.add(len(part), {"channel": channel_name})
        with self._lock:
            report.failed += len(part)
        self._acks.add([Attempt(d.id, channel_name, False, status, error, latency, retry_at) for d in part])

    def _retry_at(self, deliveries: Sequence[Delivery]) -> datetime:
        tries = max(d.attempts for d in deliveries)
        delay = min(self.config.retry_max_seconds, self.config.retry_base_seconds * (2**tries))
        return self.clock() + timedelta(seconds=delay)

    def _hold(self, channel_name: str, status: str, reason: str, groups: list[_Group], report: DeliveryReport) -> None:
        """A channel that cannot be built (`channel_unavailable`) or whose breaker is open (`circuit_open`): each
        delivery is a failed attempt with the reason, retried with the usual backoff (one write, one log line)."""
        attempts: list[Attempt] = []
        first_retry: datetime | None = None
        for g in groups:
            retry_at = self._retry_at(g.deliveries)
            first_retry = retry_at if first_retry is None else min(first_retry, retry_at)
            attempts += [Attempt(d.id, channel_name, False, status, reason, 0.0, retry_at) for d in g.deliveries]
        if not attempts or first_retry is None:
            return
        self._acks.add(attempts)
        monitor_metrics().delivery_failures.add(len(attempts), {"channel": channel_name})
        contracts = sorted({g.contract for g in groups})
        shown = ", ".join(contracts[:5]) + (f" (+{len(contracts) - 5} more)" if len(contracts) > 5 else "")
        log.warning(
            "channel %s cannot deliver (%s); %d alerts for %s held, retry from %s",
            channel_name,
            reason,
            len(attempts),
            shown,
            first_retry.isoformat(),
        )
        with self._lock:
            report.failed += len(attempts)
            report.held[channel_name] = report.held.get(channel_name, 0) + len(attempts)

    @staticmethod
    def _call(channel: AlertChannel, batch: AlertBatch, resolved: bool) -> DeliveryResult:
        try:
            return channel.resolve(batch) if resolved else channel.send(batch)
        except Exception as exc:  # a plugin that raises despite the contract: a retryable failure
            return DeliveryResult(False, "plugin_error", channel.redact(f"{type(exc).__name__}: {exc}"))


def _failed_status(item_status: str | None, result: DeliveryResult) -> str:
    """An item's own status when the channel reported it (e.g. `http_503`), else the call's."""
    if item_status is None or item_status == "delivered":
        return result.status
    return item_status


# -- plain functions (benchmarks, tools) -------------------------------------------------------------


def delivery_pass(
    alerts: OutboxRepository,
    channels: Mapping[str, AlertChannel],
    config: AlertConfig,
    *,
    clock: Callable[[], datetime] = utcnow,
    outbox_ids: Sequence[str] | None = None,
    budget_seconds: float | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> tuple[DeliveryCounts, DeliveryPass]:
    """One delivery pass, as the sensor runs it (production defaults from `config`)."""
    counts = DeliveryCounts()
    deliverer = Deliverer(alerts, channels, config, clock, unavailable=unavailable)
    return counts, deliverer.deliver(counts, outbox_ids, budget_seconds=budget_seconds)


def deliver_until_done(
    alerts: OutboxRepository,
    channels: Mapping[str, AlertChannel],
    config: AlertConfig,
    *,
    clock: Callable[[], datetime] = utcnow,
    max_passes: int = 100,
) -> tuple[DeliveryCounts, list[DeliveryPass]]:
    """Delivery passes until one finds nothing due (or `max_passes`); the counts of all of them."""
    total = DeliveryCounts()
    passes: list[DeliveryPass] = []
    deliverer = Deliverer(alerts, channels, config, clock)
    for _ in range(max_passes):
        done = deliverer.deliver(total)
        passes.append(done)
        if done.claimed == 0:
            break
    return total, passes
