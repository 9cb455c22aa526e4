"""One monitoring step, end to end, in the core: the one path every check result takes.

For each page of targets of a step (`RECORD_PAGE_SIZE`): evaluate each (`CheckRunner`: read, grade, escalate,
build the violation events) -> record the page (one transaction: the results, their violations, their outbox
entries and the SLA status of each contract, `ResultsRepository.record_checks`) -> OpenLineage FAIL events
(queued for a background sender) -> one eager dispatch of exactly the outbox entries the page wrote (SC-003:
detection to delivery in seconds; whatever fails stays in the outbox for `alert_dispatch_sensor`). The Dagster
adapter calls `CheckPipeline.run_step` once per step and only turns what it yields into `AssetCheckResult`s.

If the store is down, checks keep running and results still reach the caller (`CheckRun.persisted` is False),
and the whole page goes to the local durable spool (store/spool.py), one record per check: it enters the store,
with its original ids and times, at the start of the next pipeline run or dispatch pass that finds the store
answering (`drain_spool`); while records wait there, new ones queue behind them, so the store receives them in
order. A page is all or nothing in the store, so a failure in its middle leaves nothing of it half-written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.checks.kind import CheckKind, Target
from floe_monitoring_defs.checks.runner import CheckRun, CheckRunner
from floe_monitoring_defs.config import ConfigError, MonitoringConfig, SpoolSettings
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import ViolationType, utcnow
from floe_monitoring_defs.sources.base import TableSource
from floe_monitoring_defs.sources.iceberg import ManifestBoundsCache, process_manifest_cache
from floe_monitoring_defs.store import MonitoringStore, SLAUpdate
from floe_monitoring_defs.store.results import CheckRecord
from floe_monitoring_defs.store.spool import DrainReport, Spool
from floe_monitoring_defs.telemetry.lineage import LineageEmitter
from floe_monitoring_defs.telemetry.metrics import monitor_metrics

_log = logging.getLogger(__name__)

LINEAGE_FLUSH_SHARE = 0.05  # at the end of a step, queued lineage events get 5 % of its duration to leave
LINEAGE_FLUSH_MIN_SECONDS = 0.05
# A drain at the start of a step or a dispatch pass stops after this long (what is left is drained next time, and
# new records queue behind it), so that a large backlog cannot push a sensor tick past Dagster's 60 s limit.
SPOOL_DRAIN_BUDGET_SECONDS = 5.0
# Checks recorded per store transaction: one commit (an fsync) and one grouped SLA refresh per page instead of
# per check. Bounded so that alerts leave within seconds of detection and a page stays a small transaction.
RECORD_PAGE_SIZE = 200
# ...and a page is also recorded once its first check is this old, so that slow checks (quality scans of seconds
# each) never hold a detected violation back from delivery for long (SC-003: detection to dispatch < 5 s).
RECORD_PAGE_MAX_SECONDS = 1.0


class StepLog(Protocol):
    """Where a step reports what it skipped and what it sent: a `logging.Logger`, or Dagster's `context.log`."""

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


@dataclass(frozen=True)
class RemovedTarget:
    """A scheduled target whose contract file was deleted after the code location loaded (edge case 2)."""

    contract: MonitoredContract
    table: MonitoredTable


class CheckPipeline:
    """Evaluates, records, emits lineage and dispatches alerts for the targets of one step."""

    def __init__(
        self,
        source: TableSource,
        store: MonitoringStore | None,
        config: MonitoringConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        kinds: Mapping[str, type[CheckKind]] | None = None,
        lineage: LineageEmitter | None = None,
        dispatcher: Callable[[], AlertDispatcher] | None = None,
        log: StepLog | None = None,
        spool: Spool | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = CheckRunner(source, store, config, clock, kinds)
        self._monotonic = monotonic  # the page-age clock (injected in tests)
        self.store = store
        # Iceberg manifest bounds read by the checks are kept in the store for the next runs (each its own
        # process): attach the store as the cross-run tier of the process cache (the one IcebergSource reads and
        # fills); flushed after every page.
        self.manifest_cache: ManifestBoundsCache = process_manifest_cache()
        if store is not None:
            self.manifest_cache.attach(store.manifests)
        # Where records go when the store cannot take them (None: from FLOE_SPOOL_* / DAGSTER_HOME).
        self.spool = spool if spool is not None or store is None else open_spool()
        self.lineage = lineage if lineage is not None else LineageEmitter.disabled()
        self._make_dispatcher = dispatcher  # built on the first alert, inside the guard (channels read secrets)
        self._dispatcher: AlertDispatcher | None = None
        self._settings: dict[tuple[str, str], dict[str, Any] | None] = {}  # per contract: its alert settings
        self.log: StepLog = log if log is not None else _log

    def run_step(
        self, check_type: ViolationType | str, targets: Sequence[Target]
    ) -> Iterator[CheckRun | RemovedTarget]:
        """Every target of the step: a `CheckRun` per checked one, then a `RemovedTarget` per target whose
        contract file no longer exists (skipped until the code location reloads)."""
        missing = [t for t in targets if t[0].source_path is not None and not t[0].source_path.exists()]
        for contract, _table in missing:
            self.log.warning(
                f"contract {contract.name} ({contract.source}) was removed; skipping it until the code location reloads"
            )
        yield from self.run(check_type, [t for t in targets if t not in missing])
        for contract, table in missing:
            yield RemovedTarget(contract, table)

    def run(
        self,
        check_type: ViolationType | str,
        targets: Sequence[Target],
        *,
        page_size: int = RECORD_PAGE_SIZE,
        max_page_seconds: float = RECORD_PAGE_MAX_SECONDS,
    ) -> Iterator[CheckRun]:
        """Check, record, emit and dispatch, a page of targets at a time (`page_size` checks, or fewer once the
        page's first check is `max_page_seconds` old); yields each run once its page is recorded."""
        started = time.monotonic()
        self._drain_spool()  # what an outage left behind enters the store before this step's records
        page: list[CheckRun] = []
        page_started = 0.0
        for run in self.runner.run(check_type, targets):
            if not page:
                page_started = self._monotonic()
            page.append(run)
            if len(page) >= max(1, page_size) or self._monotonic() - page_started >= max_page_seconds:
                yield from self._finish_page(page)
                page = []
        if page:
            yield from self._finish_page(page)
        # Give queued lineage events a moment to leave, bounded to a share of the step so that a slow or down
        # collector cannot slow monitoring down (what is still queued at exit is counted as dropped).
        self.lineage.flush(timeout=max(LINEAGE_FLUSH_MIN_SECONDS, LINEAGE_FLUSH_SHARE * (time.monotonic() - started)))

    def _finish_page(self, page: Sequence[CheckRun]) -> list[CheckRun]:
        recorded = self._record_page(page)
        self.manifest_cache.flush()  # the manifests this page read (one write; never raises)
        for run in recorded:
            if run.violations:  # queued for a background sender: never blocks or fails the check
                self.lineage.emit_violations(run, traceparent=run.violations[0].metadata.get("traceparent"))
        self._dispatch([run for run in recorded if run.outbox_ids])
        return recorded

    @staticmethod
    def _sla(run: CheckRun) -> SLAUpdate:
        outcome = run.outcome
        return SLAUpdate(current_value=outcome.measured_value or 0.0, threshold=outcome.threshold or 0.0)

    def _record_page(self, page: Sequence[CheckRun]) -> list[CheckRun]:
        """Record a page in one transaction; spool all of it when the store cannot take it (nothing of a failed
        page was committed, so nothing is doubled when the spool drains)."""
        if self.store is None:
            return list(page)
        if self.spool is not None and self.spool.pending():
            self._drain_spool()
            if self.spool.pending():  # older records still wait: this page queues behind them (order)
                return [self._spool(run, self._sla(run), "earlier records wait in the spool") for run in page]
        records = [
            CheckRecord(
                run.result,
                run.violations,
                table_name=run.table.ref.identifier,
                sla=self._sla(run),
                alert_settings=self._alert_settings(run.contract),
            )
            for run in page
        ]
        try:
            written = self.store.results.record_checks(records)
        except Exception as exc:  # degraded mode (edge case 3): keep checking, keep the records, say so loudly
            if self.spool is None:
                for run in page:
                    _log.error("check result of %s not persisted: %s", run.contract.name, exc)
                return list(page)
            return [self._spool(run, self._sla(run), str(exc)) for run in page]
        return [replace(run, recorded=rec) for run, rec in zip(page, written, strict=True)]

    def _alert_settings(self, contract: MonitoredContract) -> dict[str, Any] | None:
        """The contract's effective alert settings when its `floe.monitoring` overrides `alerts` (written with its
        outbox entries, so any routing pass decides them alike); None: the global config decides."""
        overrides = contract.monitoring_overrides
        if not overrides or "alerts" not in overrides:
            return None
        key = (contract.name, contract.source)
        if key not in self._settings:
            where = f"{contract.source}: customProperties.floe.monitoring"
            try:
                cfg = self.runner.config.merged(overrides, where)
                self._settings[key] = cfg.alerts.entry_settings().model_dump(mode="json")
            except (ConfigError, ValueError) as exc:  # refused when definitions load; never fails a check here
                _log.error("alert overrides of %s not applied (global alert settings used): %s", contract.name, exc)
                self._settings[key] = None
        return self._settings[key]

    def _spool(self, run: CheckRun, sla: SLAUpdate, why: str) -> CheckRun:
        """Keep the record in the local spool (it stays unrecorded: `persisted` is False)."""
        if self.spool is None:
            return run
        name = run.contract.name
        spooled = self.spool.append(
            run.result,
            run.violations,
            table_name=run.table.ref.identifier,
            sla=sla,
            alert_settings=self._alert_settings(run.contract),
        )
        if spooled is None:  # past the spool's bounds or the disk refused: logged at ERROR and counted by the spool
            _log.error("check result of %s not persisted (%s) and not spooled", name, why)
        else:
            self.log.warning(
                f"check result of {name} not persisted ({why}); spooled with its {len(run.violations)} violations "
                f"to {self.spool.directory}: they enter the store and are alerted when it answers"
            )
        return run

    def _drain_spool(self) -> None:
        if self.spool is None or self.store is None:
            return
        report = self.spool.drain(self.store, budget_seconds=SPOOL_DRAIN_BUDGET_SECONDS)
        if report.drained:
            self.log.info(f"spool: {report.summary()}")

    def _dispatch(self, runs: Sequence[CheckRun]) -> None:
        """The eager delivery attempt of exactly the alerts these checks wrote (one pass for a page)."""
        if self._make_dispatcher is None or not runs:
            return
        ids = [i for run in runs for i in run.outbox_ids]
        names = list(dict.fromkeys(run.contract.name for run in runs))
        name = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        try:
            if self._dispatcher is None:
                self._dispatcher = self._make_dispatcher()
            report = self._dispatcher.dispatch(outbox_ids=ids)
        except Exception as exc:
            self.log.warning(f"eager alert dispatch for {name} failed ({exc}); alert_dispatch_sensor will retry")
            return
        self.log.info(f"alerts for {name}: {report.summary()}")


def open_spool(settings: SpoolSettings | None = None) -> Spool | None:
    """The spool of this process (`SpoolSettings.from_env()` unless given), counted by the monitor's metrics;
    None (logged) when the FLOE_SPOOL_* settings are wrong."""
    try:
        return Spool(settings or SpoolSettings.from_env(), counters=monitor_metrics())
    except ConfigError as exc:
        _log.error("no local spool for check records (%s): a record the store cannot take is lost", exc)
        return None


def drain_spool(
    store: MonitoringStore, spool: Spool | None = None, *, budget_seconds: float = SPOOL_DRAIN_BUDGET_SECONDS
) -> DrainReport | None:
    """Move what the local spool holds into `store`, in order and with the records' original ids and times.

    Call it at the start of every dispatch pass (the sensor, `floe alerts dispatch`), before routing, so that
    the alerts of what was detected while the store was down are routed (dedup and rate limits as usual) as
    soon as the store answers. Never raises; a no-op (one directory listing) when nothing waits; bounded by
    `budget_seconds` (the rest waits for the next pass). Returns what it did, None without a usable spool."""
    spool = spool if spool is not None else open_spool()
    if spool is None:
        return None
    return spool.drain(store, budget_seconds=budget_seconds)
