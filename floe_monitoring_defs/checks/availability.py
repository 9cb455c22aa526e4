"""Availability: ping a contract table through its catalog and grade the rolling uptime (FR-019..022).

A ping is one catalog round trip plus the table's metadata load (`catalog.load_table`), bounded by the
check timeout. It runs in a daemon thread: a catalog that never answers is abandoned after the timeout,
never joined, and the ping fails with reason "timeout". Every ping records its latency.

Pings are stored (`store.availability.record_ping`) and read back as an `AvailabilityWindow`
(`store.availability.window`): uptime over the rolling window, the current streak of failures, the
last failure. `evaluate_availability` grades the window against the contract's SLA by the share of the
error budget consumed, as freshness grades the share of its threshold. The pings of one run go out in
parallel (`AvailabilityKind.begin`), so a hung catalog costs one timeout per run, not one per table.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, Target, moment, scalar
from floe_monitoring_defs.checks.severity import consumption_severity
from floe_monitoring_defs.config import MonitoringConfig, SeverityThresholds
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable, TableRef
from floe_monitoring_defs.models import (
    AvailabilityWindow,
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    Finding,
    PingResult,
    ViolationSeverity,
    ViolationType,
    ensure_utc,
)
from floe_monitoring_defs.sources.base import CatalogNotConfiguredError, SourceError, TableNotFoundError
from floe_monitoring_defs.telemetry.metrics import GaugeSpec

log = logging.getLogger(__name__)

REASON_TIMEOUT = "timeout"
REASON_TABLE_MISSING = "table_missing"
REASON_NOT_CONFIGURED = "catalog_not_configured"
REASON_UNREACHABLE = "unreachable"  # stored as "unreachable: <ExceptionType>"
REASON_MAX_LENGTH = 64  # contract_availability_pings.reason
WINDOW = timedelta(hours=24)  # the rolling window of uptime (FR-020)
MAX_PARALLEL_PINGS = 16


class TableLoader(Protocol):
    """What a ping needs from a source; `IcebergSource` is one."""

    def catalog_name(self, ref: TableRef) -> str: ...

    def load_table(self, ref: TableRef) -> Any: ...


# -- ping -------------------------------------------------------------------------------------------


def ping_table(source: TableLoader, ref: TableRef, timeout_s: float, clock: Callable[[], datetime]) -> PingResult:
    """Load the table's metadata through its catalog, giving up after `timeout_s` seconds.

    The round trip runs in a daemon thread; on timeout that thread is abandoned (a catalog that never
    answers cannot hold the caller, nor the process at exit). `checked_at` is `clock()` when the ping
    starts; the latency is measured on the monotonic clock.
    """
    checked_at = ensure_utc(clock())
    done = threading.Event()
    box: list[BaseException | None] = []

    def round_trip() -> None:
        try:
            source.load_table(ref)
            box.append(None)
        except BaseException as exc:  # handed to the caller, which classifies it
            box.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=round_trip, name=f"floe-ping:{ref.identifier}", daemon=True)
    started = time.perf_counter()
    worker.start()
    finished = done.wait(max(0.0, timeout_s))
    latency_ms = (time.perf_counter() - started) * 1000.0
    catalog = _catalog_name(source, ref)
    if not finished or not box:
        return PingResult(
            ok=False,
            latency_ms=latency_ms,
            reason=REASON_TIMEOUT,
            checked_at=checked_at,
            message=f"catalog {catalog!r} did not return table {ref.identifier} within {timeout_s:g}s",
        )
    error = box[0]
    if error is None:
        return PingResult(ok=True, latency_ms=latency_ms, reason=None, message=None, checked_at=checked_at)
    reason, message = classify_failure(error, ref, catalog)
    return PingResult(ok=False, latency_ms=latency_ms, reason=reason, message=message, checked_at=checked_at)


def _catalog_name(source: TableLoader, ref: TableRef) -> str:
    try:
        return source.catalog_name(ref)
    except Exception:
        return ref.catalog or "default"


def classify_failure(error: BaseException, ref: TableRef, catalog: str) -> tuple[str, str]:
    """(reason code, message) for a failed round trip; only exception *types* are shown, never text.

    `IcebergSource` raises its own errors `from None`; the library error it replaced is still the
    exception's `__context__`, whose type names the real cause (ConnectionError, FileNotFoundError...).
    """
    if isinstance(error, TableNotFoundError):
        return REASON_TABLE_MISSING, f"table {ref.identifier} does not exist in catalog {catalog!r}"
    if isinstance(error, CatalogNotConfiguredError):
        return REASON_NOT_CONFIGURED, f"Iceberg catalog {catalog!r} of table {ref.identifier} is not configured"
    cause = error
    if isinstance(error, SourceError):
        cause = error.__cause__ or error.__context__ or error
    kind = type(cause).__name__
    reason = f"{REASON_UNREACHABLE}: {kind}"[:REASON_MAX_LENGTH]
    return reason, f"cannot load table {ref.identifier} from catalog {catalog!r}: {kind}"


# -- grading ----------------------------------------------------------------------------------------


def error_budget_consumed_pct(uptime: float, target_pct: float) -> float:
    """(100 - uptime) / (100 - target) * 100; with a 100 % target any failure is infinitely over budget.

    Rounded to 6 decimals so that float noise (100 - 99.9 = 0.0999...) cannot turn an uptime exactly at
    the target into a breach.
    """
    down = max(0.0, 100.0 - uptime)
    allowed = 100.0 - target_pct
    if allowed <= 0.0:
        return 0.0 if down <= 1e-9 else math.inf
    return round(down / allowed * 100.0, 6)


def format_pct(value: float) -> str:
    """A percentage with two decimals, rounded *down* so 99.899 never shows as a met 99.9 SLA."""
    if value >= 100.0:
        return "100%"
    return f"{math.floor(value * 100.0 + 1e-9) / 100.0:.2f}%"


def evaluate_availability(
    ping: PingResult,
    window: AvailabilityWindow,
    target_pct: float,
    target_text: str,
    thresholds: SeverityThresholds,
    *,
    table: str | None = None,
    window_text: str = "24h",
) -> CheckOutcome:
    """Grade the rolling uptime (`window`, which already includes `ping`) against the SLA.

    Error budget consumed above 100 % (uptime below the target): ERROR `below_sla`, FAIL; at or above
    `warning_pct`: WARNING `approaching_sla`, FAIL; at or above `info_pct`: INFO `approaching_sla`, PASS.
    A failed ping with the uptime still within the SLA passes with an INFO `ping_failed` finding.
    A success after failures is a recovery: `details["recovered"]`, no finding of its own.
    """
    uptime = window.uptime_pct
    budget = error_budget_consumed_pct(uptime, target_pct)
    severity = consumption_severity(budget, thresholds)
    subject = f"Availability of {table}" if table else "Availability"
    last_failure_at = None if window.last_failure_at is None else ensure_utc(window.last_failure_at)
    details: dict[str, Any] = {
        "uptime_pct": round(uptime, 4),
        "target_pct": target_pct,
        "target": target_text,
        "window": window_text,
        "error_budget_consumed_pct": round(budget, 2) if math.isfinite(budget) else None,
        "consecutive_failures": window.consecutive_failures,
        "total_pings": window.total,
        "successful_pings": window.ok,
        "last_failure_at": None if last_failure_at is None else last_failure_at.isoformat(),
        "last_failure_reason": window.last_failure_reason,
        "ping_ok": ping.ok,
        "latency_ms": round(ping.latency_ms, 3),
        "reason": ping.reason,
        "checked_at": ensure_utc(ping.checked_at).isoformat(),
    }
    if ping.message:
        details["message"] = ping.message
    if ping.ok and window.previous_ok is False:
        details["recovered"] = True
        details["recovered_after_failures"] = window.recovered_after_failures
    metadata = {
        "uptime_pct": f"{uptime:.4f}",
        "consecutive_failures": str(window.consecutive_failures),
        "total_pings": str(window.total),
        "successful_pings": str(window.ok),
        "last_failure_reason": window.last_failure_reason or "",
        "latency_ms": f"{ping.latency_ms:.1f}",
        "error_budget_consumed_pct": f"{budget:.1f}" if math.isfinite(budget) else "inf",
    }
    outcome_kw: dict[str, Any] = {"details": details, "measured_value": uptime / 100.0, "threshold": target_pct / 100.0}
    shown = format_pct(uptime)
    if window.consecutive_failures:
        plural = "s" if window.consecutive_failures != 1 else ""
        streak = f"{window.consecutive_failures} consecutive failure{plural}"
        streak += f", last: {window.last_failure_reason}" if window.last_failure_reason else ""
    elif window.last_failure_reason:
        streak = f"available again; last failure: {window.last_failure_reason}"
    else:
        streak = ""
    streak = f" ({streak})" if streak else ""
    expected, actual = f">= {target_text}", shown

    finding: Finding | None = None
    if severity is ViolationSeverity.ERROR:
        finding = Finding(
            kind="below_sla",
            severity=severity,
            expected=expected,
            actual=actual,
            metadata=metadata,
            message=f"{subject} is {shown} over the last {window_text}{streak}; the SLA is {target_text}",
        )
    elif severity is not None and (severity is ViolationSeverity.WARNING or ping.ok):
        consumed = f"{budget:.0f}%"
        finding = Finding(
            kind="approaching_sla",
            severity=severity,
            expected=expected,
            actual=actual,
            metadata=metadata,
            message=(
                f"{subject} is {shown} over the last {window_text}{streak}: {consumed} of the error "
                f"budget of the {target_text} SLA consumed"
            ),
        )
    elif not ping.ok:
        used = f" ({budget:.0f}% of the error budget consumed)" if severity is not None else ""
        finding = Finding(
            kind="ping_failed",
            severity=ViolationSeverity.INFO,
            expected=expected,
            actual=actual,
            metadata={**metadata, "reason": ping.reason or ""},
            message=(
                f"{subject}: ping failed ({ping.reason}); {shown} over the last {window_text} is "
                f"still within the {target_text} SLA{used}"
            ),
        )
    if finding is None:
        return CheckOutcome(ViolationType.AVAILABILITY, CheckStatus.PASS, **outcome_kw)
    status = CheckStatus.FAIL if finding.severity >= ViolationSeverity.WARNING else CheckStatus.PASS
    return CheckOutcome(ViolationType.AVAILABILITY, status, findings=(finding,), **outcome_kw)


_EVIDENCE = (
    "uptime_pct",
    "consecutive_failures",
    "total_pings",
    "successful_pings",
    "latency_ms",
    "reason",
    "last_failure_at",
    "last_failure_reason",
    "recovered",
)


class AvailabilityKind(CheckKind):
    """Checks contracts with an availability SLA (`slaProperties` availability, e.g. "99.9%")."""

    name = ViolationType.AVAILABILITY.value
    description = "Catalog round trip + table metadata load; rolling 24 h uptime against the SLA"
    failure_label = "unavailable"
    gauge = GaugeSpec("floe_contract_availability_ratio", "1", "Rolling 24 h availability, 0..1")

    def __init__(self) -> None:
        self._pings: dict[tuple[str, str], PingResult] = {}

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return contract.availability is not None

    @classmethod
    def sla_target_pct(cls, contract: MonitoredContract, default_pct: float) -> float:
        return float(contract.availability.target_pct) if contract.availability is not None else default_pct

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        d = outcome.details
        out: Evidence = {k: scalar(d[k]) for k in _EVIDENCE if d.get(k) is not None}
        if (failed_at := moment(d.get("last_failure_at"))) is not None:
            out["last_failure_at"] = failed_at  # shown as a timestamp
        return out

    def begin(self, ctx: CheckContext, targets: Sequence[Target]) -> None:
        """Ping every table at once: a hung catalog then costs one timeout per run, not one per table."""
        todo = [(c, t) for c, t in targets if c.availability is not None]
        if not todo:
            return
        workers = min(MAX_PARALLEL_PINGS, len(todo))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="floe-ping") as pool:
            futures = {
                (c.name, t.ref.identifier): pool.submit(
                    ping_table, ctx.source, t.ref, float(ctx.config_for(c).check_timeout_seconds), ctx.clock
                )
                for c, t in todo
            }
            self._pings = {key: f.result() for key, f in futures.items()}

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        sla = contract.availability
        if sla is None:
            reason = "the contract has no availability SLA"
            return CheckOutcome(ViolationType.AVAILABILITY, CheckStatus.SKIPPED, reason=reason)
        ident = table.ref.identifier
        ping = self._pings.pop((contract.name, ident), None) or ping_table(
            ctx.source, table.ref, float(config.check_timeout_seconds), ctx.clock
        )
        window = AvailabilityWindow.of_single_ping(ping)
        if ctx.store is not None:
            try:
                ctx.store.availability.record_ping(contract.name, ident, ping)
                window = ctx.store.availability.window(contract.name, ident, ctx.clock() - WINDOW)
            except Exception as exc:  # degraded: grade this ping alone, say so
                log.error("availability history of %s unavailable (%s); grading this ping alone", contract.name, exc)
        outcome = evaluate_availability(ping, window, sla.target_pct, sla.text, config.severity_thresholds, table=ident)
        if outcome.details.get("recovered"):
            log.info(
                "%s (%s) recovered after %s failed pings",
                contract.name,
                ident,
                outcome.details.get("recovered_after_failures"),
            )
        return outcome
