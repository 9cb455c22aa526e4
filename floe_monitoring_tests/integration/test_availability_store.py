"""Availability on real Iceberg catalogs, pings stored on SQLite and PostgreSQL (US5, FR-019..022).

The outage is real: the table's warehouse directory is moved away, so loading its metadata fails with
the storage's own error, and moved back for the recovery. The hang is real too: a TCP server on
127.0.0.1 that accepts connections and never answers, configured as a REST catalog. Ping times come
from an injected clock (five minutes apart); the timeout test waits out real 2 s timeouts but asserts no
durations.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, TimestamptzType

from floe_monitoring_defs.checks.availability import (
    evaluate_availability,
    ping_table,
)
from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.contracts.model import TableRef
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.models.availability import AvailabilityWindow, PingResult
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, create, make_catalog

pytestmark = pytest.mark.integration

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
DAY = timedelta(hours=24)
CONTRACT = "orders"
REF = TableRef(namespace=("shop",), name="orders", catalog=CATALOG)
TABLE = REF.identifier
TH = SeverityThresholds()
HANG_GUARD = 30.0  # seconds; only reached when something hangs, and then the test fails
T = TypeVar("T")


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    yield s
    s.dispose()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A SqlCatalog (SQLite) with table shop.orders holding data; returns the catalog root."""
    cat = make_catalog(tmp_path)
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "updated_at", TimestamptzType(), required=False),
    )
    create(cat, "shop.orders", schema, {"id": [1, 2], "updated_at": [T0, T0]})
    return tmp_path


def sql_catalog(root: Path) -> dict[str, str]:
    return {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": f"file://{root / 'wh'}"}


def check(
    store: MonitoringStore,
    source: IcebergSource,
    at: datetime,
    *,
    ref: TableRef = REF,
    timeout_s: float = 30.0,
    contract: str = CONTRACT,
) -> tuple[PingResult, AvailabilityWindow, CheckOutcome]:
    """One availability check as the runner will do it: ping, store, read the window back, grade."""
    ping = ping_table(source, ref, timeout_s, lambda: at)
    store.availability.record_ping(contract, ref.identifier, ping)
    window = store.availability.window(contract, ref.identifier, at - DAY)
    return ping, window, evaluate_availability(ping, window, 99.9, "99.9%", TH, table=ref.identifier)


def outage(store: MonitoringStore, root: Path, source: IcebergSource) -> list[CheckOutcome]:
    """20 good pings, then the warehouse goes away for three pings (15 minutes); returns the 23 outcomes."""
    outcomes = [check(store, source, T0 + i * STEP)[2] for i in range(20)]
    (root / "wh").rename(root / "wh.down")
    for i in range(20, 23):
        ping, window, outcome = check(store, source, T0 + i * STEP)
        assert (ping.ok, ping.reason) == (False, "unreachable: FileNotFoundError")
        assert ping.message == f"cannot load table {TABLE} from catalog {CATALOG!r}: FileNotFoundError"
        assert window.consecutive_failures == i - 19
        outcomes.append(outcome)
    return outcomes


# -- US5-1, US5-2 ----------------------------------------------------------------------------------


def test_three_failures_in_a_row_breach_a_999_sla(store: MonitoringStore, warehouse: Path) -> None:
    source = IcebergSource(catalog_properties={CATALOG: sql_catalog(warehouse)})
    outcomes = outage(store, warehouse, source)
    before, after = outcomes[19], outcomes[22]
    assert (before.status, before.findings, before.measured_value) == (CheckStatus.PASS, (), 1.0)
    assert after.status is CheckStatus.FAIL
    [finding] = after.findings
    assert (finding.kind, finding.severity) == ("below_sla", ViolationSeverity.ERROR)
    assert after.measured_value == pytest.approx(20 / 23)
    assert after.measured_value is not None and before.measured_value is not None
    assert after.measured_value < before.measured_value
    assert after.details["consecutive_failures"] == 3
    assert after.details["last_failure_reason"] == "unreachable: FileNotFoundError"
    assert after.details["last_failure_at"] == (T0 + 22 * STEP).isoformat()
    assert finding.message == (
        f"Availability of {TABLE} is 86.95% over the last 24h (3 consecutive failures, "
        "last: unreachable: FileNotFoundError); the SLA is 99.9%"
    )
    window = store.availability.window(CONTRACT, TABLE, T0 + 22 * STEP - DAY)
    assert (window.total, window.ok, window.consecutive_failures) == (23, 20, 3)
    assert (window.latest_ok, window.previous_ok, window.recovered) == (False, False, False)


def test_the_next_good_ping_is_a_recovery(store: MonitoringStore, warehouse: Path) -> None:
    source = IcebergSource(catalog_properties={CATALOG: sql_catalog(warehouse)})
    outage(store, warehouse, source)
    (warehouse / "wh.down").rename(warehouse / "wh")
    ping, window, outcome = check(store, source, T0 + 23 * STEP)
    assert ping.ok and ping.reason is None
    assert window.consecutive_failures == 0 and window.recovered and window.recovered_after_failures == 3
    assert outcome.details["recovered"] is True and outcome.details["recovered_after_failures"] == 3
    assert outcome.details["consecutive_failures"] == 0
    assert outcome.measured_value == pytest.approx(21 / 24)
    # The 24 h uptime is still below 99.9 %: the SLA stays breached, the recovery adds no finding.
    assert [f.kind for f in outcome.findings] == ["below_sla"]
    ping, window, outcome = check(store, source, T0 + 24 * STEP)
    assert "recovered" not in outcome.details and window.previous_ok is True
    assert outcome.measured_value == pytest.approx(22 / 25)


# -- US5-3 -----------------------------------------------------------------------------------------


class SilentServer:
    """Listens on 127.0.0.1, accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.accepted:  # the abandoned ping threads get their connection closed and end
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = SilentServer()
    yield server
    server.close()


def guarded(call: Callable[[], T]) -> T:
    """`call()` in a thread: a ping that waited for the catalog would still be running; fail, do not hang."""
    results: list[T] = []
    caller = threading.Thread(target=lambda: results.append(call()), daemon=True)
    caller.start()
    caller.join(HANG_GUARD)
    assert not caller.is_alive() and results, "ping_table did not return within its timeout"
    return results[0]


def test_a_catalog_that_never_answers_is_a_timeout(
    store: MonitoringStore, warehouse: Path, silent_server: SilentServer
) -> None:
    source = IcebergSource(
        catalog_properties={
            "hang": {"type": "rest", "uri": f"http://127.0.0.1:{silent_server.port}"},
            CATALOG: sql_catalog(warehouse),
        }
    )
    hung = TableRef(namespace=("shop",), name="orders", catalog="hang")
    hung_contract = "orders_on_rest"
    before = set(threading.enumerate())
    ping, window, outcome = guarded(lambda: check(store, source, T0, ref=hung, timeout_s=2.0, contract=hung_contract))
    assert (ping.ok, ping.reason) == (False, "timeout")
    assert ping.message == "catalog 'hang' did not return table shop.orders within 2s"
    assert silent_server.accepted, "the ping never reached the catalog endpoint"
    # The catalog never answers, so the ping's round trip is still waiting for it: abandoned, not joined.
    [abandoned] = [t for t in set(threading.enumerate()) - before if t.name.startswith("floe-ping:")]
    assert abandoned.is_alive()
    assert (window.total, window.consecutive_failures, window.last_failure_reason) == (1, 1, "timeout")
    assert outcome.findings[0].kind == "below_sla" and outcome.details["reason"] == "timeout"

    # The abandoned thread is still waiting for the catalog: other catalogs of the same source are not
    # held up by it (a ping held up would time out, not be ok), and the hung one keeps timing out.
    good, _, _ = guarded(lambda: check(store, source, T0))
    assert good.ok and abandoned.is_alive()
    again, window, _ = guarded(lambda: check(store, source, T0 + STEP, ref=hung, timeout_s=2.0, contract=hung_contract))
    assert again.reason == "timeout"
    assert window.consecutive_failures == 2


# -- the rolling window ----------------------------------------------------------------------------


def _ping(at: datetime, ok: bool, reason: str | None = None) -> PingResult:
    return PingResult(ok=ok, latency_ms=3.5, reason=reason, message=None if ok else f"{reason} happened", checked_at=at)


_READ_WINDOW = """
import json, sys
from datetime import datetime
from floe_monitoring_defs.store import MonitoringStore
store = MonitoringStore(sys.argv[1])
w = store.availability.window(sys.argv[2], sys.argv[3], datetime.fromisoformat(sys.argv[4]))
store.dispose()
print(json.dumps({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in w.__dict__.items()}))
"""


def _as_json(window: AvailabilityWindow) -> dict[str, object]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(window).items()}


def test_the_window_is_read_back_from_stored_pings_after_a_restart(store_url: str) -> None:
    now = T0 + 3 * DAY
    writer = MonitoringStore(store_url)
    pings = [
        _ping(now - timedelta(hours=40), True),
        _ping(now - timedelta(hours=30), False, "timeout"),  # older than 24 h: outside the window...
        _ping(now - timedelta(hours=26), False, "table_missing"),
        *[_ping(now - timedelta(hours=h), True) for h in range(23, 5, -1)],  # 18 good
        _ping(now - timedelta(hours=4), False, "timeout"),
        _ping(now - timedelta(hours=3), False, "unreachable: ConnectionError"),
        _ping(now - timedelta(hours=2), False, "timeout"),
    ]
    for p in pings:
        writer.availability.record_ping(CONTRACT, TABLE, p)
    writer.availability.record_ping(CONTRACT, "shop.other", _ping(now - timedelta(hours=1), True))  # another table
    writer.availability.record_ping("other_contract", TABLE, _ping(now - timedelta(hours=1), True))  # another contract
    before = writer.availability.window(CONTRACT, TABLE, now - DAY)
    writer.dispose()

    assert (before.total, before.ok, before.consecutive_failures) == (21, 18, 3)
    assert before.uptime_pct == pytest.approx(18 / 21 * 100)
    assert (before.last_failure_at, before.last_failure_reason) == (now - timedelta(hours=2), "timeout")
    assert (before.latest_ok, before.previous_ok, before.recovered_after_failures) == (False, False, 0)

    reopened = MonitoringStore(store_url)
    try:
        assert reopened.availability.window(CONTRACT, TABLE, now - DAY) == before
    finally:
        reopened.dispose()
    proc = subprocess.run(
        [sys.executable, "-c", _READ_WINDOW, store_url, CONTRACT, TABLE, (now - DAY).isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == _as_json(before)


def test_the_failure_streak_spans_pings_older_than_the_window(store: MonitoringStore) -> None:
    now = T0 + 3 * DAY
    for p in (
        _ping(now - timedelta(hours=40), True),
        _ping(now - timedelta(hours=30), False, "timeout"),
        _ping(now - timedelta(hours=26), False, "timeout"),
        _ping(now - timedelta(hours=2), False, "timeout"),
        _ping(now - timedelta(hours=1), False, "table_missing"),
    ):
        store.availability.record_ping(CONTRACT, TABLE, p)
    w = store.availability.window(CONTRACT, TABLE, now - DAY)
    assert (w.total, w.ok, w.uptime_pct, w.consecutive_failures) == (2, 0, 0.0, 4)
    assert w.last_failure_reason == "table_missing"
    # A success ends a streak of four: the recovery reports all of them.
    store.availability.record_ping(CONTRACT, TABLE, _ping(now, True))
    w = store.availability.window(CONTRACT, TABLE, now - DAY)
    assert (w.consecutive_failures, w.recovered, w.recovered_after_failures) == (0, True, 4)
    assert w.last_failure_at == now - timedelta(hours=1)


def test_an_empty_window_is_fully_available(store: MonitoringStore) -> None:
    w = store.availability.window(CONTRACT, TABLE, T0)
    assert (w.total, w.ok, w.uptime_pct, w.consecutive_failures, w.latest_ok, w.previous_ok) == (
        0,
        0,
        100.0,
        0,
        None,
        None,
    )


def test_a_long_reason_is_cut_to_the_column(store: MonitoringStore) -> None:
    store.availability.record_ping(CONTRACT, TABLE, _ping(T0, False, "unreachable: " + "X" * 200))
    w = store.availability.window(CONTRACT, TABLE, T0 - DAY)
    assert w.last_failure_reason == ("unreachable: " + "X" * 200)[:64]


# -- SLA status ------------------------------------------------------------------------------------


def _violation(
    at: datetime, severity: ViolationSeverity, vtype: ViolationType, contract: str
) -> ContractViolationEvent:
    return ContractViolationEvent(
        contract_name=contract,
        contract_version="1.0.0",
        violation_type=vtype,
        severity=severity,
        message="m",
        timestamp=at,
        check_duration_seconds=0.1,
    )


def _record(
    store: MonitoringStore,
    at: datetime,
    status: CheckStatus,
    *severities: ViolationSeverity,
    contract: str = CONTRACT,
    check_type: ViolationType = ViolationType.FRESHNESS,
) -> None:
    violations = [_violation(at, s, check_type, contract) for s in severities]
    result = CheckResult(
        contract_name=contract,
        check_type=check_type,
        status=status,
        duration_seconds=0.1,
        timestamp=at,
        violation=violations[0] if status is CheckStatus.FAIL and violations else None,
    )
    store.results.record_check(result, violations, table_name=TABLE)


def test_refresh_sla_status_from_the_stored_history(store: MonitoringStore) -> None:
    now = T0 + 2 * DAY
    h = timedelta(hours=1)
    E, W, INFO = ViolationSeverity.ERROR, ViolationSeverity.WARNING, ViolationSeverity.INFO
    _record(store, now - 30 * h, CheckStatus.FAIL, E)  # outside the window
    _record(store, now - 20 * h, CheckStatus.PASS)
    _record(store, now - 10 * h, CheckStatus.FAIL, E)
    _record(store, now - 5 * h, CheckStatus.SKIPPED)  # did not run: counts neither way
    _record(store, now - 2 * h, CheckStatus.ERROR)
    _record(store, now - 1 * h, CheckStatus.FAIL, W, INFO)  # INFO is not a violation of the SLA
    _record(store, now - 1 * h, CheckStatus.FAIL, E, contract="another")
    _record(store, now - 1 * h, CheckStatus.FAIL, E, check_type=ViolationType.SCHEMA_DRIFT)
    _record(store, now - 1 * h, CheckStatus.PASS, check_type=ViolationType.AVAILABILITY)

    status = store.results.refresh_sla_status(
        CONTRACT, ViolationType.FRESHNESS, now, current_value=9000.0, threshold=7200.0
    )
    assert status.compliance_pct == pytest.approx(25.0)  # 1 pass of 4 run
    assert status.consecutive_failures == 3  # fail, error, fail since the newest pass
    assert status.violation_count_24h == 2  # ERROR at -10 h, WARNING at -1 h
    assert status.last_check_time == now - h
    assert status.window_start == now - DAY
    assert (status.current_value, status.threshold) == (9000.0, 7200.0)
    assert store.results.sla_status(CONTRACT, ViolationType.FRESHNESS) == status

    _record(store, now + h, CheckStatus.PASS)
    later = store.results.refresh_sla_status(
        CONTRACT, ViolationType.FRESHNESS, now + h, current_value=60.0, threshold=7200.0, window_hours=6
    )
    # window [now - 5 h, ...): skipped (does not count), error, fail, pass
    assert later.compliance_pct == pytest.approx(100 / 3)
    assert (later.consecutive_failures, later.violation_count_24h) == (0, 1)
    assert later.last_check_time == now + h and later.window_start == now - 5 * h
    assert store.results.sla_status(CONTRACT, ViolationType.FRESHNESS) == later


def test_refresh_sla_status_without_history(store: MonitoringStore) -> None:
    status = store.results.refresh_sla_status(
        "nothing", ViolationType.AVAILABILITY, T0, current_value=1.0, threshold=0.999
    )
    assert (status.compliance_pct, status.consecutive_failures, status.violation_count_24h) == (100.0, 0, 0)
    assert status.last_check_time is None and status.window_start == T0 - DAY
    assert store.results.sla_status("nothing", ViolationType.AVAILABILITY) == status
