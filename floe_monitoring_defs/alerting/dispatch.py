"""Routing and delivery of what the outbox holds (FR-028..030, edge case 6, SC-003/004).

`route`: every pending alert is matched against the routing rules (minimum severity, contract glob,
channel), then deduplicated (30 min per contract + type, bypassed when the severity rises above the
episode's highest or `renotify_minutes` passed) and rate-limited (N occurrences per contract per window).
Routing goes page by page (`route_page_size` entries), each page decided in one write transaction under
per-contract locks (PostgreSQL advisory locks; SQLite's single writer, BEGIN IMMEDIATE, serialises whole
passes), so any number of replicas (eager dispatch in check steps, sensor ticks, `floe alerts dispatch`
loops) decide each entry exactly once. Each decision is stored; suppressions are counted and logged.
`deliver`: due deliveries are claimed with a lease, grouped into one batch per contract and channel, sent,
and acknowledged; a failure is retried with exponential backoff, so nothing is lost while a channel is down.
Incidents (one open per contract + type) follow the violations.

Per-contract settings (FR-045): an entry written by a contract with `floe.monitoring` `alerts` overrides carries
its effective `AlertSettings` (routing rules, dedup / renotify / rate-limit windows; `alert_outbox.alert_settings`),
and is decided with them, never with the pass's global rules; so a `floe alerts dispatch --loop` replica that loads
no contract decides it exactly as the check step's eager dispatch would. Entries without settings follow the global
`alerts` config. Channels stay global: a stored rule naming a channel this process does not have routes nowhere.

A configured channel that cannot be built (`unavailable`: a wrong setting, an unset secret variable) is still
a route: its deliveries are created, then recorded as failed with the reason (`channel_unavailable`) on every
cycle and retried with the same backoff, so they are delivered once the channel works; the other channels
deliver as usual.
"""

from __future__ import annotations

import fnmatch
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from floe_monitoring_defs.alerting.channels.base import AlertChannel, open_channels
from floe_monitoring_defs.alerting.delivery import Deliverer, DeliveryPass
from floe_monitoring_defs.alerting.model import AlertKind
from floe_monitoring_defs.config import AlertChannelRoutingRule, AlertConfig, AlertSettings
from floe_monitoring_defs.models import ViolationSeverity, utcnow
from floe_monitoring_defs.store.outbox import (
    DedupKey,
    DedupState,
    Incident,
    IncidentChange,
    OutboxRepository,
    PendingAlert,
    RoutedPage,
    RoutingConflict,
    RoutingDecision,
    RoutingOutcome,
    RoutingPage,
)
from floe_monitoring_defs.telemetry.metrics import monitor_metrics

log = logging.getLogger(__name__)

_MAX_CONFLICTS = 3  # pages rolled back in a row before a pass gives up (the next pass retries)


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
    route_pages: int = 0  # routing pages committed

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
        self.settings = config.entry_settings()  # an entry's, unless it carries the contract's own
        self._stored: dict[str, AlertSettings] = {}  # parsed stored settings, by their JSON text

    def dispatch(self, outbox_ids: Sequence[str] | None = None) -> DispatchReport:
        """Route what is pending, then deliver what is due: everything, or only the alerts `outbox_ids`
        (a check's eager attempt at the alerts it just wrote)."""
        report = DispatchReport(unavailable=dict(self.unavailable))
        self.route(report, outbox_ids)
        self.deliver(report, outbox_ids)
        return report

    # -- routing -------------------------------------------------------------------------------

    def settings_for(self, entry: PendingAlert) -> AlertSettings:
        """The settings `entry` is decided with: those it carries (its contract's), else the global ones. Stored
        settings this version cannot read (written by a newer floe) fall back to the global ones, logged."""
        raw: Mapping[str, Any] | None = entry.settings
        if not raw:
            return self.settings
        key = repr(sorted(raw.items()))
        parsed = self._stored.get(key)
        if parsed is None:
            try:
                parsed = AlertSettings.model_validate(dict(raw))
            except ValidationError:
                log.warning(
                    "alert %s of %s: stored alert settings unreadable; global settings used",
                    entry.id,
                    entry.contract_name,
                )
                parsed = self.settings
            self._stored[key] = parsed
        return parsed

    def _rate_window(self, entry: PendingAlert) -> timedelta:
        return timedelta(minutes=self.settings_for(entry).rate_limit_window_minutes)

    def channels_for(
        self, contract: str, severity: ViolationSeverity, rules: Sequence[AlertChannelRoutingRule] | None = None
    ) -> list[str]:
        """The channels an alert of `contract` at `severity` goes to under `rules` (the global ones by default)."""
        out: list[str] = []
        for rule in self.config.routing_rules if rules is None else rules:
            if severity < rule.min_severity:
                continue
            if rule.contract_filter and not fnmatch.fnmatchcase(contract, rule.contract_filter):
                continue
            known = rule.channel_name in self.channels or rule.channel_name in self.unavailable
            if known and rule.channel_name not in out:
                out.append(rule.channel_name)
        return out

    def route(
        self, report: DispatchReport, outbox_ids: Sequence[str] | None = None, *, budget_seconds: float | None = None
    ) -> None:
        """Decide what is pending (only `outbox_ids` when given), page after page until nothing is pending
        or `budget_seconds` passed; each page is decided exactly once whatever other passes run meanwhile
        (`OutboxRepository.route_page`). The contracts another pass holds, and those this call has drained,
        are left out of its later pages."""
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        rate_window = timedelta(minutes=self.config.rate_limit_window_minutes)
        exclude: set[str] = set()
        conflicts = 0
        while True:
            try:
                routed = self.alerts.route_page(
                    self.clock(),
                    self._decide,
                    page_size=self.config.route_page_size,
                    rate_window=rate_window,
                    outbox_ids=outbox_ids,
                    exclude=exclude,
                    entry_rate_window=self._rate_window,
                )
            except RoutingConflict as exc:  # nothing was written: read the page again, a few times at most
                conflicts += 1
                log.warning("alert routing page rolled back (%s); attempt %d", exc, conflicts)
                if conflicts >= _MAX_CONFLICTS:
                    return
                continue
            if routed is None:
                return
            exclude |= routed.page.skipped | routed.page.complete
            report.route_pages += 1
            self._account(routed, report)
            if deadline is not None and time.monotonic() >= deadline:
                return

    def route_all(self, *, budget_seconds: float | None = None) -> DispatchReport:
        """Route everything pending without delivering; the counts (for benchmarks and operations)."""
        report = DispatchReport(unavailable=dict(self.unavailable))
        self.route(report, budget_seconds=budget_seconds)
        return report

    def _decide(self, page: RoutingPage) -> RoutingDecision:
        """The decisions for one page, in order: an occurrence sees the dedup states, rate-limit counts and
        incidents the page's earlier occurrences left. Pure: it runs inside the page's transaction.

        The violations one check run found (e.g. three drifts: same contract, type, kind and event time) are
        one occurrence: dedup and the rate limit decide once for them, on their highest severity, and the
        episode keeps that highest severity."""
        now = page.now
        dedup: dict[DedupKey, DedupState | None] = dict(page.dedup)
        changed: dict[DedupKey, DedupState | None] = {}
        routed_counts = dict(page.routed_occurrences)
        incidents = _IncidentBook(page.open_incidents)
        outcomes: list[RoutingOutcome] = []
        routes: dict[tuple[str, ViolationSeverity, int], tuple[str, ...]] = {}
        occurrences: dict[tuple[str, str, str, str], list[PendingAlert]] = defaultdict(list)
        for entry in page.entries:
            occurrences[entry.occurrence].append(entry)
        for (contract, vtype, kind, _), entries in occurrences.items():
            key = (contract, vtype)
            # One check run wrote the occurrence's entries, with the same settings.
            settings = self.settings_for(entries[0])
            window = timedelta(minutes=settings.dedup_window_minutes)
            worst = max((x.severity for x in entries), key=lambda s: s.rank)
            if kind == AlertKind.VIOLATION.value:
                for entry in entries:
                    if entry.severity >= ViolationSeverity.ERROR:
                        incidents.add(key, entry.id, entry.severity)
            if kind == AlertKind.RESOLVED.value:
                incidents.resolve(key)
                reason = None
            else:
                reason = self._suppression(worst, now, dedup.get(key), routed_counts.get(contract, 0), settings)
            any_routed = False
            for entry in sorted(entries, key=lambda x: -x.severity.rank):
                route = (contract, entry.severity, id(settings))
                targets = routes.get(route)
                if targets is None:  # the rules' globs, once per contract, severity and settings of the page
                    targets = routes[route] = tuple(self.channels_for(contract, entry.severity, settings.routing_rules))
                if not targets:
                    outcomes.append(RoutingOutcome(entry.id, "no_route"))
                elif reason:
                    outcomes.append(RoutingOutcome(entry.id, "suppressed", reason))
                else:
                    outcomes.append(RoutingOutcome(entry.id, "routed", None, targets))
                    any_routed = True
            if kind == AlertKind.RESOLVED.value:  # a resolved notice ends the episode: the next one alerts at once
                dedup[key] = changed[key] = None
                continue
            if any_routed:
                routed_counts[contract] = routed_counts.get(contract, 0) + 1
            if kind != AlertKind.VIOLATION.value:
                continue
            state = dedup.get(key)
            if any_routed:
                if state is None or now - state.last_seen_at >= window:  # a new episode
                    state = DedupState(now, worst, 1, now, now)
                else:  # the same episode, alerted again (escalation or renotify): keep its highest severity
                    top = worst if state.last_severity is None or worst > state.last_severity else state.last_severity
                    state = DedupState(now, top, state.count + 1, state.window_start, now)
                dedup[key] = changed[key] = state
            elif reason and state is not None:  # a suppressed repeat still extends the episode
                dedup[key] = changed[key] = replace(state, last_seen_at=now)
        return RoutingDecision(outcomes, changed, incidents.changes())

    def _suppression(
        self,
        severity: ViolationSeverity,
        now: datetime,
        state: DedupState | None,
        routed_occurrences: int,
        settings: AlertSettings | None = None,
    ) -> str | None:
        """Why an occurrence of highest severity `severity` is not sent, or None.

        Dedup: a repeat of the same contract + type within `dedup_window_minutes` of its previous occurrence
        belongs to the same episode and is suppressed, unless its severity is higher than any the episode
        alerted (an escalation) or `renotify_minutes` passed since the last alert (a sustained violation is
        re-announced, not forgotten). Then the rate limit: at most `rate_limit_per_contract` occurrences
        routed per contract per `rate_limit_window_minutes`. All from `settings` (the entry's; the global ones
        by default)."""
        s = settings or self.settings
        if state is not None and now - state.last_seen_at < timedelta(minutes=s.dedup_window_minutes):
            escalated = state.last_severity is not None and severity > state.last_severity
            renotify = now - state.last_alerted_at >= timedelta(minutes=s.renotify_minutes)
            if not (escalated or renotify):
                return "dedup"
        if routed_occurrences >= s.rate_limit_per_contract:
            return "rate_limited"
        return None

    def _account(self, routed: RoutedPage, report: DispatchReport) -> None:
        """Count and log a committed page (never before its commit: a rolled-back page decided nothing)."""
        by_id = {e.id: e for e in routed.page.entries}
        suppressed: dict[tuple[str, str, str], list[PendingAlert]] = defaultdict(list)
        for out in routed.decision.outcomes:
            if out.state == "routed":
                report.routed += 1
            elif out.state == "no_route":
                report.no_route += 1
            else:
                reason = out.reason or "suppressed"
                report.suppressed[reason] = report.suppressed.get(reason, 0) + 1
                entry = by_id[out.entry_id]
                suppressed[(entry.contract_name, entry.violation_type, reason)].append(entry)
        for (contract, vtype, reason), entries in suppressed.items():
            monitor_metrics().suppressed.add(len(entries), {"contract": contract, "reason": reason})
            log.info(
                "%d alerts for %s (%s) suppressed: %s (%s)",
                len(entries),
                contract,
                vtype,
                reason,
                ", ".join(f"{e.id} {e.severity.value}" for e in entries),
            )

    # -- delivery (alerting.delivery) ---------------------------------------------------------

    def deliver(
        self, report: DispatchReport, outbox_ids: Sequence[str] | None = None, *, budget_seconds: float | None = None
    ) -> DeliveryPass:
        """Deliver what is due (`Deliverer.deliver`: one batch per contract and channel, pooled clients, a circuit
        breaker per channel, no new batch after the time budget)."""
        deliverer = Deliverer(self.alerts, self.channels, self.config, self.clock, unavailable=self.unavailable)
        return deliverer.deliver(report, outbox_ids, budget_seconds=budget_seconds)


@dataclass
class _Draft:
    id: str
    contract_name: str
    violation_type: str
    new: bool
    added: int
    severity: ViolationSeverity
    last_violation_id: str | None
    resolved: bool = False


class _IncidentBook:
    """The incidents of a page as its occurrences change them, in order: one open incident per contract +
    type, opened by an ERROR or CRITICAL violation, counting every one, escalating (never downgrading), closed
    by a resolved notice (the next violation opens a new one)."""

    def __init__(self, open_incidents: Mapping[DedupKey, Incident]) -> None:
        self._stored = dict(open_incidents)  # open before the page, not looked at yet
        self._open: dict[DedupKey, _Draft] = {}
        self._touched: list[_Draft] = []

    def _current(self, key: DedupKey) -> _Draft | None:
        stored = self._stored.pop(key, None)
        if stored is not None:
            draft = _Draft(
                stored.id,
                stored.contract_name,
                stored.violation_type,
                False,
                0,
                ViolationSeverity(stored.severity),
                stored.last_violation_id,
            )
            self._open[key] = draft
            self._touched.append(draft)
        return self._open.get(key)

    def add(self, key: DedupKey, violation_id: str, severity: ViolationSeverity) -> None:
        draft = self._current(key)
        if draft is None:
            draft = _Draft(str(uuid.uuid4()), key[0], key[1], True, 0, severity, None)
            self._open[key] = draft
            self._touched.append(draft)
        draft.added += 1
        draft.severity = max(draft.severity, severity, key=lambda s: s.rank)
        draft.last_violation_id = violation_id

    def resolve(self, key: DedupKey) -> None:
        draft = self._current(key)
        if draft is not None:
            draft.resolved = True
            del self._open[key]

    def changes(self) -> list[IncidentChange]:
        return [
            IncidentChange(
                d.id, d.contract_name, d.violation_type, d.new, d.added, d.severity, d.last_violation_id, d.resolved
            )
            for d in self._touched
        ]


def open_dispatcher(
    alerts: OutboxRepository,
    config: AlertConfig,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> AlertDispatcher:
    """A dispatcher over the configured channels, built as the code location builds them (`open_channels`):
    a channel that cannot be built now (a wrong setting, an unset secret variable) is unavailable, its alerts
    routed to it and held in the outbox until it works; never fatal."""
    channels, problems = open_channels(config.channels, environ)
    unavailable = {name: problem.reason for name, problem in problems.items()}
    return AlertDispatcher(alerts, channels, config, clock, unavailable=unavailable)
