"""The SLA report library API: compliance per contract and check type over daily / weekly / monthly windows.

A window of N days covers the N whole UTC days before today plus today so far: [midnight - N days, now).
Whole days are read from `contract_daily_aggregates`; today, and any earlier day the `contract_sla_daily`
asset has not aggregated yet (e.g. yesterday before 00:15 UTC), are read from the raw rows with the same
SQL, and their expected checks come from the cadence recorded on the newest aggregated day. The four
weekly buckets are the 28 whole days before today, 7 days each, each computed on its own.

    reporter = SLAReporter(MonitoringStore.from_env())
    report = reporter.report("orders", "weekly")          # SLAComplianceReport
    everyone = reporter.reports(ReportWindow.MONTHLY)     # one per contract with data, by name
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import TypeVar

from floe_monitoring_defs.contracts.model import ResponseSLA
from floe_monitoring_defs.models import Expectation, Key, Totals, ensure_utc, utcnow
from floe_monitoring_defs.sla.build import ContractPeriod, build_report
from floe_monitoring_defs.sla.compliance import DEFAULT_TARGET_PCT
from floe_monitoring_defs.sla.model import ReportWindow, SLAComplianceReport
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store.aggregates import day_start, days_in

WEEKS = 4
WEEK = timedelta(days=7)


class ReportError(RuntimeError):
    """A report cannot be produced (e.g. no data at all for the named contract)."""


def window_days(window: ReportWindow | str | int) -> tuple[str, int]:
    """(name, days) of a window given as a ReportWindow, its name, or a number of days."""
    if isinstance(window, int) and not isinstance(window, bool):
        if window < 1:
            raise ValueError("a report window is at least one day")
        return f"{window}d", window
    w = ReportWindow(str(window.value if isinstance(window, ReportWindow) else window).lower())
    return w.value, w.days


class SLAReporter:
    """Builds SLA compliance reports from the store (aggregates first, raw rows only where needed)."""

    def __init__(
        self,
        store: MonitoringStore,
        *,
        default_target_pct: float = DEFAULT_TARGET_PCT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.aggregates = store.aggregates
        self.default_target_pct = default_target_pct
        self.clock = clock

    def report(
        self,
        contract: str,
        window: ReportWindow | str | int = ReportWindow.WEEKLY,
        now: datetime | None = None,
        response: ResponseSLA | None = None,
    ) -> SLAComplianceReport:
        """The report of one contract; `ReportError` when the store has nothing on it in the window.

        `response`: the contract's timeToDetect / timeToNotify / timeToRepair promises, reported against what
        the period measured (the store keeps results, not contracts, so the caller hands them in).
        """
        found = self.reports(window, now=now, contract=contract, responses={contract: response} if response else None)
        if not found:
            name, days = window_days(window)
            end = ensure_utc(now) if now is not None else self.clock()
            start = day_start(end) - timedelta(days=days)
            raise ReportError(
                f"no monitoring data for contract {contract!r} between {start.isoformat()} "
                f"and {end.isoformat()} ({name} window)"
            )
        return found[0]

    def reports(
        self,
        window: ReportWindow | str | int = ReportWindow.WEEKLY,
        now: datetime | None = None,
        contract: str | None = None,
        responses: Mapping[str, ResponseSLA] | None = None,
    ) -> list[SLAComplianceReport]:
        """One report per contract with data in the window (only `contract` when given), by name; `responses`:
        each contract's response promises (see `report`)."""
        with _no_cycle_collection():
            return self._reports(window, now, contract, responses)

    def _reports(
        self,
        window: ReportWindow | str | int,
        now: datetime | None,
        contract: str | None,
        responses: Mapping[str, ResponseSLA] | None,
    ) -> list[SLAComplianceReport]:
        name, days = window_days(window)
        generated = self.clock()
        end = ensure_utc(now) if now is not None else generated
        today = day_start(end)
        start = today - timedelta(days=days)
        week_bounds = [today - WEEK * (WEEKS - i) for i in range(WEEKS + 1)]
        known = self.aggregates.aggregated_days(min(start, week_bounds[0]).date(), today.date())
        latest = self.aggregates.latest_aggregated_day(before=today.date() + timedelta(days=1))
        stored = {} if latest is None else self.aggregates.stored_expectations(latest, contract)
        # The window and each week summed in SQL (one grouped query over the aggregates), raw rows added after.
        spans = [(start, end), *((week_bounds[i], week_bounds[i + 1]) for i in range(WEEKS))]
        window_totals, *weeks = self._collect(spans, known, stored, contract)
        whole_days = list(days_in(start.date(), today.date()))
        agg_days = sum(1 for d in whole_days if d in known)
        raw_days = len(whole_days) - agg_days + (1 if end > today else 0)
        resolutions = self.aggregates.resolution_times(start, end, contract)
        targets = _by_contract({k: e.target_pct for k, e in stored.items() if e.target_pct is not None})
        by_contract = _by_contract(window_totals)
        weekly = [_by_contract(w) for w in weeks]
        resolved = _by_contract(resolutions)
        notified = _by_contract(self.aggregates.notification_delays(start, end, contract))
        responses = responses or {}
        return [
            build_report(
                ContractPeriod(
                    contract_name=c,
                    window=name,
                    period_start=start,
                    period_end=end,
                    generated_at=generated,
                    totals=by_contract[c],
                    weeks=[(week_bounds[i], week_bounds[i + 1], weekly[i].get(c, {})) for i in range(WEEKS)],
                    targets=targets.get(c, {}),
                    resolutions=resolved.get(c, {}),
                    notifications=notified.get(c, {}),
                    response=responses.get(c),
                    days_from_aggregates=agg_days,
                    days_from_raw_rows=raw_days,
                    default_target_pct=self.default_target_pct,
                )
            )
            for c in sorted(by_contract)
        ]

    def _collect(
        self,
        spans: Sequence[tuple[datetime, datetime]],
        known: set[date],
        stored: Mapping[Key, Expectation],
        contract: str | None,
    ) -> list[dict[Key, Totals]]:
        """Totals per (contract, type) for each span [lo, hi): stored days from the aggregates (all spans in one
        query), the rest (days not aggregated, and today so far) from raw rows, added to every span holding them."""
        end = max(hi for _, hi in spans)
        last_day = day_start(end)
        day_spans = [(min(lo, last_day).date(), min(hi, last_day).date()) for lo, hi in spans]
        out = self.aggregates.span_totals(day_spans, contract)
        full_days = list(days_in(min(lo for lo, _ in spans).date(), last_day.date()))
        missing = [d for d in full_days if d not in known]
        ranges = [(day_start(d), day_start(d) + timedelta(days=1)) for d in missing]
        if end > last_day:
            ranges.append((last_day, end))
        for lo, hi in ranges:
            holders = [out[i] for i, (s_lo, s_hi) in enumerate(spans) if s_lo <= lo and hi <= s_hi]
            if not holders:
                continue
            raw = self.aggregates.raw_totals(lo, hi, contract)
            keys = set(raw)
            if hi == end and hi > last_day:
                # Today so far: what the cadence owes counts even for a check that has not run at all. A past
                # day never aggregated only counts for what ran (it may predate the contract's monitoring).
                keys |= {k for k in stored if contract is None or k[0] == contract}
            for key in keys:
                exp = stored.get(key)
                piece = raw.get(key, Totals()).with_expected(None if exp is None else exp.expected_between(lo, hi))
                if piece == Totals():
                    continue
                for part in holders:
                    part[key] = part[key] + piece if key in part else piece
        return out


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while a report is read and built: a fleet report allocates tens of
    thousands of acyclic objects, and the collections they would trigger (each scanning every live object)
    were a third of the model building. Reference counting still frees everything; the state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


V = TypeVar("V")


def _by_contract(by_key: Mapping[Key, V]) -> dict[str, dict[str, V]]:
    """{(contract, check type): v} -> {contract: {check type: v}}."""
    out: dict[str, dict[str, V]] = {}
    for (contract, check_type), value in by_key.items():
        out.setdefault(contract, {})[check_type] = value
    return out
