"""One monitoring step, end to end, in the core: the one path every check result takes.

For each target of a step: evaluate (`CheckRunner`: read, grade, escalate, build the violation events)
-> record (one transaction: the result, its violations, their outbox entries and the SLA status)
-> OpenLineage FAIL events (queued for a background sender) -> eager dispatch of exactly the outbox
entries just written (SC-003: detection to delivery in seconds; whatever fails stays in the outbox for
`alert_dispatch_sensor`). The Dagster adapter calls `CheckPipeline.run_step` once per step and only
turns what it yields into `AssetCheckResult`s.

If the store is down, checks keep running and results still reach the caller; the lost history is
logged as an error (`CheckRun.persisted` is False).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.checks.kind import CheckKind, Target
from floe_monitoring_defs.checks.runner import CheckRun, CheckRunner
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import ViolationType, utcnow
from floe_monitoring_defs.sources.base import TableSource
from floe_monitoring_defs.store import MonitoringStore, SLAUpdate
from floe_monitoring_defs.telemetry.lineage import LineageEmitter

_log = logging.getLogger(__name__)

LINEAGE_FLUSH_SHARE = 0.05  # at the end of a step, queued lineage events get 5 % of its duration to leave
LINEAGE_FLUSH_MIN_SECONDS = 0.05


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
    ) -> None:
        self.runner = CheckRunner(source, store, config, clock, kinds)
        self.store = store
        self.lineage = lineage if lineage is not None else LineageEmitter.disabled()
        self._make_dispatcher = dispatcher  # built on the first alert, inside the guard (channels read secrets)
        self._dispatcher: AlertDispatcher | None = None
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

    def run(self, check_type: ViolationType | str, targets: Sequence[Target]) -> Iterator[CheckRun]:
        """Check, record, emit and dispatch, one target at a time; yields each run once it is recorded."""
        started = time.monotonic()
        for run in self.runner.run(check_type, targets):
            run = self._record(run)
            if run.violations:  # queued for a background sender: never blocks or fails the check
                self.lineage.emit_violations(run, traceparent=run.violations[0].metadata.get("traceparent"))
            if run.outbox_ids:
                self._dispatch(run)
            yield run
        # Give queued lineage events a moment to leave, bounded to a share of the step so that a slow or down
        # collector cannot slow monitoring down (what is still queued at exit is counted as dropped).
        self.lineage.flush(timeout=max(LINEAGE_FLUSH_MIN_SECONDS, LINEAGE_FLUSH_SHARE * (time.monotonic() - started)))

    def _record(self, run: CheckRun) -> CheckRun:
        if self.store is None:
            return run
        outcome = run.outcome
        sla = SLAUpdate(current_value=outcome.measured_value or 0.0, threshold=outcome.threshold or 0.0)
        try:
            recorded = self.store.results.record_check(
                run.result, run.violations, table_name=run.table.ref.identifier, sla=sla
            )
        except Exception as exc:  # degraded mode (edge case 3): keep checking, say so loudly
            _log.error("check result of %s not persisted: %s", run.contract.name, exc)
            return run
        return replace(run, recorded=recorded)

    def _dispatch(self, run: CheckRun) -> None:
        """The eager delivery attempt of exactly this check's alerts."""
        if self._make_dispatcher is None:
            return
        name = run.contract.name
        try:
            if self._dispatcher is None:
                self._dispatcher = self._make_dispatcher()
            report = self._dispatcher.dispatch(outbox_ids=run.outbox_ids)
        except Exception as exc:
            self.log.warning(f"eager alert dispatch for {name} failed ({exc}); alert_dispatch_sensor will retry")
            return
        self.log.info(f"alerts for {name}: {report.summary()}")
