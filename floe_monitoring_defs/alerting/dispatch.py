"""Routing and delivery of what the outbox holds (FR-028..030, edge case 6, SC-003/004).

`route`: every pending alert is matched against the routing rules (minimum severity, contract glob,
channel), then deduplicated (30 min per contract + type, bypassed when the severity escalates) and
rate-limited (N per contract per window). Each decision is stored; suppressions are counted and
logged. `deliver`: due deliveries are claimed with a lease, grouped into one batch per contract and
channel, sent, and acknowledged; a failure is retried with exponential backoff, so nothing is lost
while a channel is down. Incidents (one open per contract + type) follow the violations.

A configured channel that cannot be built (`unavailable`: a wrong setting, an unset secret variable) is still
a route: its deliveries are created, then recorded as failed with the reason (`channel_unavailable`) on every
cycle and retried with the same backoff, so they are delivered once the channel works; the other channels
deliver as usual.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from opentelemetry import propagate

from floe_monitoring_defs.alerting.channels.base import AlertChannel
from floe_monitoring_defs.alerting.model import AlertBatch, AlertItem, AlertKind, DeliveryResult
from floe_monitoring_defs.config import AlertConfig
from floe_monitoring_defs.models import ViolationSeverity, utcnow
from floe_monitoring_defs.store.outbox import Attempt, Delivery, OutboxEntry, OutboxRepository
from floe_monitoring_defs.telemetry.metrics import monitor_metrics
from floe_monitoring_defs.telemetry.tracing import tracer

log = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    routed: int = 0
    no_route: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    delivered: int = 0  # deliveries (alert x channel) acknowledged
    failed: int = 0  # deliveries that failed this cycle and wait for a retry
    batches: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)  # channel -> why it cannot deliver now
    held: dict[str, int] = field(default_factory=dict)  # channel -> deliveries held for it this cycle

    def summary(self) -> str:
        sup = ", ".join(f"{k} {v}" for k, v in sorted(self.suppressed.items())) or "none"
        text = (
            f"routed {self.routed}, no route {self.no_route}, suppressed: {sup}; "
            f"{self.batches} batches, {self.delivered} delivered, {self.failed} failed (will retry)"
        )
        if self.unavailable:
            text += "; channels unavailable (their alerts are held and retried): " + "; ".join(
                f"{name} ({self.held.get(name, 0)} held this cycle): {reason}"
                for name, reason in sorted(self.unavailable.items())
            )
        return text


class AlertDispatcher:
    def __init__(
        self,
        alerts: OutboxRepository,
        channels: Mapping[str, AlertChannel],
        config: AlertConfig,
        clock: Callable[[], datetime] = utcnow,
        *,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self.alerts = alerts
        self.channels = dict(channels)
        self.unavailable = {k: v for k, v in (unavailable or {}).items() if k not in self.channels}
        self.config = config
        self.clock = clock

    def dispatch(self, outbox_ids: Sequence[str] | None = None) -> DispatchReport:
        """Route what is pending, then deliver what is due: everything, or only the alerts `outbox_ids`
        (a check's eager attempt at the alerts it just wrote)."""
        report = DispatchReport(unavailable=dict(self.unavailable))
        self.route(report, outbox_ids)
        self.deliver(report, outbox_ids)
        return report

    # -- routing -------------------------------------------------------------------------------

    def channels_for(self, contract: str, severity: ViolationSeverity) -> list[str]:
        out: list[str] = []
        for rule in self.config.routing_rules:
            if severity < rule.min_severity:
                continue
            if rule.contract_filter and not fnmatch.fnmatchcase(contract, rule.contract_filter):
                continue
            known = rule.channel_name in self.channels or rule.channel_name in self.unavailable
            if known and rule.channel_name not in out:
                out.append(rule.channel_name)
        return out

    def route(self, report: DispatchReport, outbox_ids: Sequence[str] | None = None) -> None:
        # The violations one check run found (e.g. three drifts) are one occurrence: dedup and the rate
        # limit decide once for them, on their highest severity.
        occurrences: dict[tuple[str, str, str, datetime], list[OutboxEntry]] = defaultdict(list)
        for entry in self.alerts.pending(outbox_ids):
            e = entry.event
            occurrences[(e.contract_name, e.violation_type.value, entry.kind, e.timestamp)].append(entry)
        for (contract, vtype, kind, _), entries in occurrences.items():
            now = self.clock()
            worst = max(entries, key=lambda x: x.event.severity.rank)
            for entry in entries:
                if kind == AlertKind.VIOLATION.value and entry.event.severity >= ViolationSeverity.ERROR:
                    self.alerts.open_or_update_incident(entry.event, entry.id, now)
            if kind == AlertKind.RESOLVED.value:
                self.alerts.resolve_incident(contract, vtype, now)
            reason = self._suppression(worst, now) if kind != AlertKind.RESOLVED.value else None
            for entry in sorted(entries, key=lambda x: -x.event.severity.rank):
                targets = self.channels_for(contract, entry.event.severity)
                if not targets:
                    self.alerts.mark(entry, "no_route", None, now)
                    report.no_route += 1
                elif reason:
                    self.alerts.mark(entry, "suppressed", reason, now)
                    report.suppressed[reason] = report.suppressed.get(reason, 0) + 1
                    monitor_metrics().suppressed.add(1, {"contract": contract, "reason": reason})
                    log.info(
                        "alert %s for %s (%s, %s) suppressed: %s",
                        entry.id,
                        contract,
                        vtype,
                        entry.event.severity.value,
                        reason,
                    )
                else:
                    self.alerts.mark(
                        entry,
                        "routed",
                        None,
                        now,
                        targets,
                        dedup_window=timedelta(minutes=self.config.dedup_window_minutes),
                    )
                    report.routed += 1

    def _suppression(self, entry: OutboxEntry, now: datetime) -> str | None:
        """Dedup: a repeat of the same contract + type within `dedup_window_minutes` of its previous
        occurrence belongs to the same episode and is suppressed, unless the severity escalates or
        `renotify_minutes` passed since the last alert (a sustained violation is re-announced, not
        forgotten). Then the rate limit per contract."""
        event = entry.event
        state = self.alerts.dedup_state(event.contract_name, event.violation_type.value)
        if state is not None and now - state.last_seen_at < timedelta(minutes=self.config.dedup_window_minutes):
            escalated = state.last_severity is not None and event.severity > state.last_severity
            renotify = now - state.last_alerted_at >= timedelta(minutes=self.config.renotify_minutes)
            if not (escalated or renotify):
                return "dedup"
        window = timedelta(minutes=self.config.rate_limit_window_minutes)
        if self.alerts.routed_since(event.contract_name, now - window) >= self.config.rate_limit_per_contract:
            return "rate_limited"
        return None

    # -- delivery ------------------------------------------------------------------------------

    def deliver(self, report: DispatchReport, outbox_ids: Sequence[str] | None = None) -> None:
        now = self.clock()
        lease = timedelta(seconds=self.config.delivery_lease_seconds)
        groups: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
        for d in self.alerts.claim_due(now, lease, outbox_ids):
            groups[(d.channel, d.entry.event.contract_name)].append(d)
        for (channel_name, contract), deliveries in groups.items():
            if channel_name in self.unavailable:
                self._hold(channel_name, self.unavailable[channel_name], contract, deliveries, report)
                continue
            channel = self.channels.get(channel_name)
            if channel is None:  # the channel was removed from the config: keep the deliveries for later
                log.warning(
                    "channel %s is no longer configured; %d alerts for %s wait", channel_name, len(deliveries), contract
                )
                continue
            report.batches += 1
            self._deliver_batch(channel, contract, deliveries, report)

    def _retry_at(self, deliveries: Sequence[Delivery]) -> datetime:
        tries = max(d.attempts for d in deliveries)
        delay = min(self.config.retry_max_seconds, self.config.retry_base_seconds * (2**tries))
        return self.clock() + timedelta(seconds=delay)

    def _hold(
        self, channel_name: str, reason: str, contract: str, deliveries: list[Delivery], report: DispatchReport
    ) -> None:
        """A channel that cannot be built: each delivery is a failed attempt with the reason, retried later."""
        retry_at = self._retry_at(deliveries)
        attempts = [Attempt(d.id, channel_name, False, "channel_unavailable", reason, 0.0) for d in deliveries]
        self.alerts.record_attempts(attempts, self.clock(), retry_at)
        monitor_metrics().delivery_failures.add(len(deliveries), {"channel": channel_name})
        log.warning(
            "channel %s cannot deliver (%s); %d alerts for %s held, retry at %s",
            channel_name,
            reason,
            len(deliveries),
            contract,
            retry_at.isoformat(),
        )
        report.failed += len(deliveries)
        report.held[channel_name] = report.held.get(channel_name, 0) + len(deliveries)

    def _deliver_batch(
        self, channel: AlertChannel, contract: str, deliveries: list[Delivery], report: DispatchReport
    ) -> None:
        by_kind: dict[bool, list[Delivery]] = {True: [], False: []}
        for d in deliveries:
            by_kind[d.entry.kind == AlertKind.RESOLVED.value].append(d)
        for resolved, part in by_kind.items():
            if not part:
                continue
            items = tuple(AlertItem(d.entry.id, AlertKind(d.entry.kind), d.entry.event) for d in part)
            latest = max(items, key=lambda i: i.event.timestamp)
            consumers = tuple(sorted({c for i in items for c in i.event.affected_consumers}))
            batch = AlertBatch(contract, latest.event.contract_version, items, consumers, self.config.dagster_url)
            started = time.perf_counter()
            # Deliver inside a span whose parent is the span of the check that found the newest alert,
            # so the receiver's `traceparent` belongs to that check's trace (FR-035).
            parent = propagate.extract({k: v for k, v in latest.event.metadata.items() if k == "traceparent"})
            with tracer().start_as_current_span(
                "floe.alert.deliver",
                context=parent,
                attributes={"alert.channel": channel.name, "alert.items": len(items), "floe.contract.name": contract},
            ) as span:
                result = self._call(channel, batch, resolved)
                span.set_attribute("alert.delivery_status", "delivered" if result.ok else "failed")
            latency = (time.perf_counter() - started) * 1000
            attempts = [Attempt(d.id, channel.name, result.ok, result.status, result.error, latency) for d in part]
            now = self.clock()
            retry_at = None
            if not result.ok:
                retry_at = self._retry_at(part)
                monitor_metrics().delivery_failures.add(len(part), {"channel": channel.name})
                log.warning(
                    "delivery of %d alerts for %s to %s failed (%s: %s); retry at %s",
                    len(part),
                    contract,
                    channel.name,
                    result.status,
                    result.error,
                    retry_at.isoformat(),
                )
                report.failed += len(part)
            else:
                report.delivered += len(part)
            self.alerts.record_attempts(attempts, now, retry_at)

    @staticmethod
    def _call(channel: AlertChannel, batch: AlertBatch, resolved: bool) -> DeliveryResult:
        try:
            return channel.resolve(batch) if resolved else channel.send(batch)
        except Exception as exc:  # a plugin that raises despite the contract: a retryable failure
            return DeliveryResult(False, "plugin_error", channel.redact(f"{type(exc).__name__}: {exc}"))
