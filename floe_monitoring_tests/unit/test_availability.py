"""Availability grading (pure) and the ping's timeout and failure classification (no catalog needed).

Windows are built by hand here; the store that computes them from stored pings is tested in
integration/test_availability_store.py.
"""

from __future__ import annotations

import math
import threading
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from floe_monitoring_defs.checks import availability
from floe_monitoring_defs.checks.availability import (
    classify_failure,
    error_budget_consumed_pct,
    evaluate_availability,
    format_pct,
    ping_table,
)
from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.contracts.model import TableRef
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.models.availability import AvailabilityWindow, PingResult
from floe_monitoring_defs.sources.base import (
    CatalogNotConfiguredError,
    SourceUnavailableError,
    TableNotFoundError,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TH = SeverityThresholds()
REF = TableRef(namespace=("shop",), name="orders", catalog="prod")


def ping(ok: bool = True, reason: str | None = None, latency_ms: float = 12.5) -> PingResult:
    return PingResult(
        ok=ok,
        latency_ms=latency_ms,
        reason=None if ok else reason or "timeout",
        message=None if ok else f"failed: {reason}",
        checked_at=NOW,
    )


def window(
    total: int,
    ok: int,
    *,
    streak: int = 0,
    latest_ok: bool | None = True,
    previous_ok: bool | None = True,
    reason: str | None = "timeout",
    recovered_after: int = 0,
) -> AvailabilityWindow:
    failed = total - ok
    return AvailabilityWindow(
        since=NOW - timedelta(hours=24),
        total=total,
        ok=ok,
        uptime_pct=100.0 if not total else ok / total * 100,
        consecutive_failures=streak,
        last_failure_at=NOW - timedelta(minutes=5) if failed else None,
        last_failure_reason=reason if failed else None,
        latest_ok=latest_ok,
        previous_ok=previous_ok,
        recovered_after_failures=recovered_after,
    )


def grade(p: PingResult, w: AvailabilityWindow, target: float = 99.9, text: str = "99.9%") -> Any:
    return evaluate_availability(p, w, target, text, TH, table="shop.orders")


# -- grading --------------------------------------------------------------------------------------


def test_below_sla_is_an_error_finding_with_evidence() -> None:
    # 285 good of 288 five-minute pings = 98.96 %, three consecutive timeouts at the end.
    out = grade(
        ping(False, "timeout", latency_ms=2001.0), window(288, 285, streak=3, latest_ok=False, previous_ok=False)
    )
    assert out.check_type is ViolationType.AVAILABILITY
    assert out.status is CheckStatus.FAIL
    [f] = out.findings
    assert (f.kind, f.severity) == ("below_sla", ViolationSeverity.ERROR)
    assert f.message == (
        "Availability of shop.orders is 98.95% over the last 24h (3 consecutive failures, "
        "last: timeout); the SLA is 99.9%"
    )
    assert (f.expected, f.actual, f.element) == (">= 99.9%", "98.95%", None)
    assert f.metadata["consecutive_failures"] == "3"
    assert f.metadata["total_pings"] == "288" and f.metadata["successful_pings"] == "285"
    assert f.metadata["last_failure_reason"] == "timeout" and f.metadata["latency_ms"] == "2001.0"
    assert float(f.metadata["uptime_pct"]) == pytest.approx(285 / 288 * 100, abs=1e-4)
    assert out.measured_value == pytest.approx(285 / 288)
    assert out.threshold == pytest.approx(0.999)
    d = out.details
    assert d["consecutive_failures"] == 3 and d["total_pings"] == 288 and d["successful_pings"] == 285
    assert d["reason"] == "timeout" and d["latency_ms"] == 2001.0 and d["ping_ok"] is False
    assert d["last_failure_at"] == (NOW - timedelta(minutes=5)).isoformat()
    assert d["last_failure_reason"] == "timeout"
    assert "recovered" not in d


def test_warning_at_90_pct_of_the_error_budget() -> None:
    # target 99 %: 1 % budget; 19 failures in 2000 = 0.95 % down = 95 % of the budget.
    out = grade(ping(True), window(2000, 1981, streak=0), target=99.0, text="99%")
    assert out.status is CheckStatus.FAIL
    [f] = out.findings
    assert (f.kind, f.severity) == ("approaching_sla", ViolationSeverity.WARNING)
    assert "95% of the error budget of the 99% SLA consumed" in f.message
    assert out.details["error_budget_consumed_pct"] == pytest.approx(95.0)


def test_info_at_80_pct_of_the_error_budget_passes() -> None:
    out = grade(ping(True), window(1000, 991), target=99.0, text="99%")  # 0.9 % down = 90 % of the budget
    assert out.findings[0].severity is ViolationSeverity.WARNING
    out = grade(ping(True), window(1000, 992), target=99.0, text="99%")  # 0.8 % down = 80 % of the budget
    assert out.status is CheckStatus.PASS
    [f] = out.findings
    assert (f.kind, f.severity) == ("approaching_sla", ViolationSeverity.INFO)
    out = grade(ping(True), window(1000, 993), target=99.0, text="99%")  # 70 %: nothing to say
    assert (out.status, out.findings) == (CheckStatus.PASS, ())


def test_uptime_exactly_at_the_target_is_not_a_breach() -> None:
    # 1 failure in 1000 = 99.9 %; 100 - 99.9 is 0.0999... in floats, which must not read as > 100 %.
    out = grade(ping(True), window(1000, 999))
    assert out.details["error_budget_consumed_pct"] == 100.0
    [f] = out.findings
    assert f.severity is ViolationSeverity.WARNING and f.kind == "approaching_sla"
    out = grade(ping(True), window(1000, 998))
    assert out.findings[0].kind == "below_sla"


def test_a_failed_ping_within_the_sla_passes_with_an_info_finding() -> None:
    # target 99 %, 1 failure in 288 = 0.35 % down = 35 % of the budget
    out = grade(
        ping(False, "unreachable: ConnectionError"),
        window(288, 287, streak=1, latest_ok=False),
        target=99.0,
        text="99%",
    )
    assert out.status is CheckStatus.PASS
    [f] = out.findings
    assert (f.kind, f.severity) == ("ping_failed", ViolationSeverity.INFO)
    assert "ping failed (unreachable: ConnectionError)" in f.message and "still within the 99% SLA" in f.message
    assert f.metadata["reason"] == "unreachable: ConnectionError"
    assert out.details["reason"] == "unreachable: ConnectionError"


def test_recovery_is_reported_in_details_without_a_finding() -> None:
    # Back after 3 failures; 3 in 2000 = 0.15 % down, 15 % of a 1 % budget: the SLA holds.
    w = window(2000, 1997, streak=0, latest_ok=True, previous_ok=False, recovered_after=3)
    out = grade(ping(True), w, target=99.0, text="99%")
    assert (out.status, out.findings) == (CheckStatus.PASS, ())
    assert out.details["recovered"] is True and out.details["recovered_after_failures"] == 3
    assert out.details["consecutive_failures"] == 0 and out.details["reason"] is None
    assert w.recovered


def test_recovery_below_the_sla_still_fails_on_the_window() -> None:
    w = window(24, 21, streak=0, latest_ok=True, previous_ok=False, recovered_after=3)
    out = grade(ping(True), w)
    assert out.details["recovered"] is True
    [f] = out.findings
    assert f.kind == "below_sla"
    assert "(available again; last failure: timeout)" in f.message


def test_no_recovery_when_the_previous_ping_was_ok_or_missing() -> None:
    assert "recovered" not in grade(ping(True), window(10, 10, previous_ok=True)).details
    assert "recovered" not in grade(ping(True), window(1, 1, previous_ok=None)).details


def test_a_100_pct_target_breaches_on_any_failure() -> None:
    out = grade(ping(False), window(10_000, 9_999, streak=1, latest_ok=False), target=100.0, text="100%")
    [f] = out.findings
    assert f.kind == "below_sla" and f.severity is ViolationSeverity.ERROR
    assert f.actual == "99.99%"  # rounded down, never shown as the met target
    assert out.details["error_budget_consumed_pct"] is None  # infinite: not JSON
    assert f.metadata["error_budget_consumed_pct"] == "inf"
    out = grade(ping(True), window(10_000, 10_000), target=100.0, text="100%")
    assert (out.status, out.findings, out.measured_value) == (CheckStatus.PASS, (), 1.0)


def test_error_budget_and_percent_formatting() -> None:
    assert error_budget_consumed_pct(99.95, 99.9) == pytest.approx(50.0)
    assert error_budget_consumed_pct(100.0, 100.0) == 0.0
    assert math.isinf(error_budget_consumed_pct(99.0, 100.0))
    assert format_pct(99.8999) == "99.89%" and format_pct(100.0) == "100%" and format_pct(0.0) == "0.00%"


def test_single_ping_window_for_a_store_outage() -> None:
    w = AvailabilityWindow.of_single_ping(ping(False, "timeout"))
    assert (w.total, w.ok, w.uptime_pct, w.consecutive_failures, w.last_failure_reason) == (1, 0, 0.0, 1, "timeout")


# -- ping -----------------------------------------------------------------------------------------


class FakeSource:
    """Raises `error`, or blocks until `release` is set (a catalog that never answers)."""

    def __init__(self, error: BaseException | None = None, block: bool = False) -> None:
        self.error = error
        self.release = threading.Event()
        self.entered = threading.Event()  # load_table was called
        self.block = block
        self.calls = 0

    def catalog_name(self, ref: TableRef) -> str:
        return ref.catalog or "default"

    def load_table(self, ref: TableRef) -> object:
        self.calls += 1
        self.entered.set()
        if self.block:
            self.release.wait(60)
        if self.error is not None:
            raise self.error
        return object()


def test_ping_ok_records_latency_and_the_injected_time() -> None:
    src = FakeSource()
    result = ping_table(src, REF, 5.0, lambda: NOW)
    assert result.ok and result.reason is None and result.message is None
    assert result.checked_at == NOW and 0 <= result.latency_ms < 5000
    assert src.calls == 1


def test_ping_times_out_without_waiting_for_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog answers only when released (after 60 s at the latest, and then the ping would be ok): a
    timeout result while it is still blocked means the ping gave up on it. The latency is that of the
    ping's own counter, here a fake one that reads 5.0 s at the start and 5.3 s from then on."""
    readings = iter([5.0])
    monkeypatch.setattr(availability, "time", types.SimpleNamespace(perf_counter=lambda: next(readings, 5.3)))
    src = FakeSource(block=True)
    result = ping_table(src, REF, 0.3, lambda: NOW)  # the catalog cannot answer before the release below
    assert src.entered.wait(30) and src.calls == 1  # the ping did ask the catalog (30 s: a hang guard only)
    src.release.set()
    assert (result.ok, result.reason) == (False, "timeout")
    assert result.latency_ms == pytest.approx(300.0)
    assert result.message == "catalog 'prod' did not return table shop.orders within 0.3s"


def _raised_from(error: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception:
            raise error from None
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TableNotFoundError("table shop.orders does not exist"), "table_missing"),
        (CatalogNotConfiguredError("Iceberg catalog 'prod' is not configured"), "catalog_not_configured"),
        (
            _raised_from(SourceUnavailableError("cannot load: password=hunter2"), ConnectionRefusedError("hunter2")),
            "unreachable: ConnectionRefusedError",
        ),
        (SourceUnavailableError("uri=http://u:hunter2@h"), "unreachable: SourceUnavailableError"),
        (RuntimeError("token hunter2"), "unreachable: RuntimeError"),
    ],
)
def test_failures_are_classified_without_exception_text(error: Exception, reason: str) -> None:
    result = ping_table(FakeSource(error), REF, 5.0, lambda: NOW)
    assert (result.ok, result.reason) == (False, reason)
    assert result.message and "shop.orders" in result.message and "'prod'" in result.message
    assert "hunter2" not in result.message


def test_a_long_exception_type_fits_the_reason_column() -> None:
    long_error = type("E" * 100, (Exception,), {})()
    reason, _ = classify_failure(long_error, REF, "prod")
    assert len(reason) == 64 and reason.startswith("unreachable: EEE")
