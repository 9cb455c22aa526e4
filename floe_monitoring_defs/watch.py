"""`floe metrics serve`: the monitor watched from outside, through Prometheus (issue 13, FR-005).

Dagster runs are short processes, so what they record (violations, durations, delivery failures) is pushed
over OTLP and is gone from a scrape the moment a run ends. Whether monitoring still happens is better read
from the store, which every run, replica and dispatcher writes: this module turns it into gauges every
`refresh_s` in a background thread, so a scrape is answered at once from the last read whatever the store's or
the contracts' size (a read slower than the scrape timeout would otherwise make the target look down), served
by one long-lived process (`floe metrics serve`, a sidecar of the code-location pod):

- `floe_contract_last_check_timestamp_seconds{contract, check_type}`: the newest check that ran to the end
  (PASS or FAIL) of each scheduled contract and kind; `floe_contract_check_interval_seconds` beside it, so a
  rule can say "not checked within two intervals" without knowing any cadence.
- `floe_alert_outbox_backlog` (entries waiting to be routed), `floe_alert_outbox_oldest_pending_age_seconds`,
  `floe_alert_deliveries_undelivered{channel, state=pending|retrying}`.
- `floe_alert_channel_last_delivery_ok{channel}` and `..._timestamp_seconds`, and
  `floe_alert_delivery_attempts_total{channel, ok}` (attempts the store holds; a retention cleanup lowers
  it, which Prometheus' `rate`/`increase` treat as a counter reset).
- `floe_contracts{state=loaded|refused|registered}`, `floe_monitor_store_up`, `floe_monitor_config_valid`,
  `floe_monitor_collect_duration_seconds`.

A store that cannot be read sets `floe_monitor_store_up` to 0 and drops the store-derived series (an alert on
them must not see stale values as fresh); the exporter keeps serving and retries on the next scrape.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from floe_monitoring_defs.checks.plan import Plan
from floe_monitoring_defs.config import ConfigError, MonitoringConfig, Settings, load_config
from floe_monitoring_defs.health import last_delivery_attempts, load_plan, newest_completed_checks
from floe_monitoring_defs.models import utcnow
from floe_monitoring_defs.store import MonitoringStore, StoreError
from floe_monitoring_defs.store import tables as t

log = logging.getLogger(__name__)

DEFAULT_PORT = 9464  # OpenTelemetry's Prometheus exporter default
DEFAULT_REFRESH_S = 15.0
DEFAULT_PLAN_REFRESH_S = 60.0


@dataclass
class Family:
    """One metric family as Prometheus exposition shows it (plain data: rendered by `prometheus_client`)."""

    name: str
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, value: float, *labels: str) -> None:
        self.samples.append((labels, float(value)))


class MonitorCollector:
    """Reads the store (and, less often, the contracts and config) into metric families.

    `clock` gives "now" for ages; `monotonic` paces the caches. Both are injectable so tests need no waiting.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        plan_refresh_s: float = DEFAULT_PLAN_REFRESH_S,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._env = dict(os.environ if environ is None else environ)
        self._refresh_s = refresh_s
        self._plan_refresh_s = plan_refresh_s
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._store: MonitoringStore | None = None
        self._families: list[Family] | None = None
        self._families_at = 0.0
        self._plan: Plan | None = None
        self._config_ok = False
        self._plan_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            self.close_store()

    def start(self) -> None:
        """Read once now, then keep re-reading every `refresh_s` in a daemon thread; `families()` then only
        returns the newest read (never reads in the caller's thread)."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._refresh_loop, name="floe-metrics-refresh", daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._refresh_s or 1.0):
            try:
                self.refresh()
            except Exception as exc:  # the exporter must outlive any one bad read; the next one retries
                # the type only: an unexpected error's text could hold a URL with its password
                log.error("floe metrics: a read failed (%s); retrying in %s s", type(exc).__name__, self._refresh_s)

    def refresh(self) -> list[Family]:
        """Read the store now (and the contracts when older than `plan_refresh_s`)."""
        with self._lock:
            self._families = self._read()
            self._families_at = self._monotonic()
            return self._families

    def families(self) -> list[Family]:
        """The current families: the background thread's newest read once `start()`ed, else a read on demand
        when the last one is older than `refresh_s`."""
        if self._thread is not None and self._families is not None:
            return self._families
        with self._lock:
            now = self._monotonic()
            if self._families is None or now - self._families_at >= self._refresh_s:
                self._families = self._read()
                self._families_at = now
            return self._families

    # -- reading -------------------------------------------------------------------------------

    def _open_store(self) -> MonitoringStore:
        if self._store is None:
            self._store = MonitoringStore.open_existing(self._env)  # read only: never creates or migrates
        return self._store

    def _read(self) -> list[Family]:
        started = time.perf_counter()
        store_up = Family("floe_monitor_store_up", "gauge", "1 when the monitoring store could be read")
        config_valid = Family("floe_monitor_config_valid", "gauge", "1 when settings and monitoring config load")
        families = [store_up, config_valid]
        try:
            store = self._open_store()
            registrations = store.registry.registrations()
            self._refresh_plan(registrations)
            families += self._store_families(store, registrations)
            store_up.add(1)
        except StoreError as exc:
            log.warning("floe metrics: store not readable: %s", exc)  # StoreError text masks the password
            store_up.add(0)
            self.close_store()
        config_valid.add(1 if self._config_ok else 0)
        duration = Family(
            "floe_monitor_collect_duration_seconds", "gauge", "Seconds the last read of the store and contracts took"
        )
        duration.add(time.perf_counter() - started)
        families.append(duration)
        return families

    def close_store(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None

    def _refresh_plan(self, registrations: list[dict[str, Any]]) -> None:
        now = self._monotonic()
        if self._plan_at is not None and now - self._plan_at < self._plan_refresh_s:
            return
        self._plan_at = now
        try:
            settings = Settings.from_env(self._env)
            config = MonitoringConfig() if settings.config_path is None else load_config(settings.config_path)
        except ConfigError as exc:
            log.warning("floe metrics: %s", exc)
            self._plan, self._config_ok = None, False
            return
        self._plan, self._config_ok = load_plan(settings, config, registrations), True

    def _store_families(self, store: MonitoringStore, registrations: list[dict[str, Any]]) -> list[Family]:
        now = self._clock()
        out: list[Family] = []
        contracts = Family(
            "floe_contracts",
            "gauge",
            "Contracts by state: loaded (monitored), refused (invalid), registered",
            ("state",),
        )
        contracts.add(len(registrations), "registered")
        last = Family(
            "floe_contract_last_check_timestamp_seconds",
            "gauge",
            "Unix time of the newest completed check (PASS or FAIL) per scheduled contract and check kind",
            ("contract", "check_type"),
        )
        interval = Family(
            "floe_contract_check_interval_seconds",
            "gauge",
            "The check kind's interval for the contract (absent for an uneven cron)",
            ("contract", "check_type"),
        )
        if self._plan is not None:
            contracts.add(len(self._plan.report.contracts), "loaded")
            contracts.add(len(self._plan.report.errors), "refused")
            newest = newest_completed_checks(store)
            for planned in self._plan.contracts:
                if not planned.scheduled:
                    continue
                name = planned.contract.name
                for kind, minutes in sorted(planned.intervals.items()):
                    if minutes is not None:
                        interval.add(minutes * 60, name, kind)
                    at = newest.get((name, kind))
                    if at is not None:
                        last.add(at.timestamp(), name, kind)
        out += [contracts, last, interval]

        status = store.outbox.status(now)
        backlog = Family("floe_alert_outbox_backlog", "gauge", "Alert outbox entries waiting to be routed")
        backlog.add(sum(n for state, n in status.entries.items() if state == "pending"))
        oldest = Family(
            "floe_alert_outbox_oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest alert outbox entry waiting to be routed (0 when none waits)",
        )
        pending_at = status.oldest_pending_at
        oldest.add(0.0 if pending_at is None else max(0.0, (now - pending_at).total_seconds()))
        undelivered = Family(
            "floe_alert_deliveries_undelivered",
            "gauge",
            "Alert deliveries not yet delivered, per channel: pending (never tried) or retrying (failed before)",
            ("channel", "state"),
        )
        for channel in sorted(status.deliveries):
            for state in ("pending", "retrying"):
                undelivered.add(status.deliveries[channel].get(state, 0), channel, state)
        out += [backlog, oldest, undelivered]

        last_ok = Family(
            "floe_alert_channel_last_delivery_ok",
            "gauge",
            "1 when the channel's newest delivery attempt succeeded",
            ("channel",),
        )
        last_at = Family(
            "floe_alert_channel_last_delivery_timestamp_seconds",
            "gauge",
            "Unix time of the channel's newest delivery attempt",
            ("channel",),
        )
        for channel, attempt in sorted(last_delivery_attempts(store).items()):
            last_ok.add(1 if attempt["ok"] else 0, channel)
            last_at.add(datetime.fromisoformat(attempt["at"]).timestamp(), channel)
        attempts = Family(
            "floe_alert_delivery_attempts",
            "counter",
            "Alert delivery attempts the store holds, per channel and outcome",
            ("channel", "ok"),
        )
        a = t.alert_delivery_attempts.c
        with store.db.transaction("counting alert delivery attempts") as conn:
            for channel, ok, n in conn.execute(
                sa.select(a.channel, a.ok, sa.func.count()).group_by(a.channel, a.ok).order_by(a.channel, a.ok)
            ):
                attempts.add(int(n), str(channel), "true" if ok else "false")
        out += [last_ok, last_at, attempts]
        return out

    # -- prometheus_client ---------------------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        """The `prometheus_client` collector protocol (a custom collector on a private registry)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for family in self.families():
            metric: Any
            if family.kind == "counter":
                metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
            for labels, value in family.samples:
                metric.add_metric(list(labels), value)
            yield metric


def registry_for(collector: MonitorCollector) -> Any:
    """A private `prometheus_client` registry holding only `collector` (no process or platform metrics)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(collector: MonitorCollector) -> str:
    """The Prometheus text exposition of one read (what `floe metrics show` prints)."""
    from prometheus_client import generate_latest

    return generate_latest(registry_for(collector)).decode("utf-8")


def serve(collector: MonitorCollector, host: str, port: int) -> Any:
    """Start the HTTP endpoint (`/metrics`) in a daemon thread; returns the server (`.shutdown()` stops it)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry_for(collector))
    collector.start()
    return server
