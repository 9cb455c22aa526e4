"""Retention with frozen time: exactly the raw rows older than the window go, in batches; aggregates stay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=90)  # 2026-03-03 03:00 UTC
TICK = timedelta(microseconds=1)


def _id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def _result(n: int, at: datetime) -> dict[str, Any]:
    return {
        "id": _id(n),
        "contract_name": "orders",
        "check_type": "freshness",
        "status": "fail",
        "duration_seconds": 0.1,
        "checked_at": at,
        "details": {},
        "violation": None,
        "created_at": at,
        "table_name": "shop.orders",
    }


def _violation(n: int, at: datetime, result: int | None) -> dict[str, Any]:
    return {
        "id": _id(n),
        "contract_name": "orders",
        "contract_version": "1",
        "violation_type": "freshness",
        "severity": "error",
        "message": "stale",
        "element": None,
        "expected_value": None,
        "actual_value": None,
        "affected_consumers": [],
        "detected_at": at,
        "check_result_id": None if result is None else _id(result),
        "check_duration_seconds": 0.1,
        "metadata": {},
    }


def _ping(n: int, at: datetime) -> dict[str, Any]:
    return {
        "id": _id(n),
        "contract_name": "orders",
        "table_name": "shop.orders",
        "checked_at": at,
        "ok": True,
        "latency_ms": 3.0,
        "reason": None,
        "message": None,
    }


def _outbox(n: int, at: datetime, state: str) -> dict[str, Any]:
    return {
        "id": _id(n),
        "kind": "violation",
        "contract_name": "orders",
        "violation_type": "freshness",
        "severity": "error",
        "event": {},
        "created_at": at,
        "state": state,
        "reason": None,
        "routed_at": None,
    }


def _delivery(n: int, outbox: int, at: datetime, state: str) -> dict[str, Any]:
    return {
        "id": _id(n),
        "outbox_id": _id(outbox),
        "channel": f"hook-{n}",
        "contract_name": "orders",
        "state": state,
        "attempts": 1,
        "next_attempt_at": at,
        "last_error": None,
        "created_at": at,
        "delivered_at": None,
    }


@pytest.fixture
def seeded(store_url: str) -> Iterator[tuple[MonitoringStore, str]]:
    store = MonitoringStore(store_url, clock=lambda: NOW)
    store.db.upgrade()
    old = [CUTOFF - TICK, *(CUTOFF - timedelta(days=d, hours=1) for d in range(1, 24))]  # 24 rows past the window
    new = [CUTOFF, CUTOFF + TICK, NOW - timedelta(hours=1)]  # on the boundary and inside: kept
    results = [_result(1000 + i, at) for i, at in enumerate(old)] + [_result(2000 + i, at) for i, at in enumerate(new)]
    violations = (
        [_violation(3000 + i, at, 1000 + i) for i, at in enumerate(old)]
        + [_violation(4000, CUTOFF + timedelta(minutes=1), 1001)]  # recent, about an old result
        + [_violation(4001, CUTOFF, 2000)]
    )
    pings = [_ping(5000 + i, at) for i, at in enumerate(old[:10])] + [_ping(6000, CUTOFF), _ping(6001, NOW)]
    long_ago = CUTOFF - timedelta(days=5)
    outbox = [
        _outbox(7000, long_ago, "suppressed"),
        _outbox(7001, long_ago, "no_route"),
        _outbox(7002, long_ago, "routed"),  # every delivery done: goes, with its deliveries
        _outbox(7003, long_ago, "routed"),  # a delivery still pending: kept
        _outbox(7004, long_ago, "pending"),
        _outbox(7005, CUTOFF + TICK, "suppressed"),
    ]
    deliveries = [
        _delivery(8000, 7002, long_ago, "delivered"),
        _delivery(8001, 7003, long_ago, "delivered"),
        _delivery(8002, 7003, long_ago, "pending"),
    ]
    engine = sa.create_engine(store_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for table, rows in (
                (t.contract_check_results, results),
                (t.contract_violations, violations),
                (t.contract_availability_pings, pings),
                (t.alert_outbox, outbox),
                (t.alert_deliveries, deliveries),
            ):
                conn.execute(table.insert(), rows)
    finally:
        engine.dispose()
    aggregates = store.aggregates
    for day in (date(2026, 2, 10), date(2026, 3, 2), date(2026, 3, 3)):
        aggregates.aggregate_day(day, now=NOW)
    try:
        yield store, store_url
    finally:
        store.dispose()


def _ids(url: str, table: sa.Table) -> set[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {str(uuid.UUID(str(v))) for v in conn.execute(sa.select(table.c.id)).scalars()}
    finally:
        engine.dispose()


def test_cleanup_removes_exactly_the_rows_older_than_the_window(seeded: tuple[MonitoringStore, str]) -> None:
    store, url = seeded
    aggregates = store.aggregates
    kept_aggregates = aggregates.daily_aggregates()
    assert {a.date for a in kept_aggregates} == {date(2026, 2, 10), date(2026, 3, 2), date(2026, 3, 3)}
    deletes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CONTRACT_CHECK_RESULTS"):
            deletes.append(statement)

    sa.event.listen(store.db.engine, "before_cursor_execute", count)
    try:
        result = store.retention.cleanup(NOW, retention_days=90, batch_size=7)
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", count)

    assert result.cutoff == CUTOFF
    assert (result.results_deleted, result.violations_deleted, result.pings_deleted, result.alerts_deleted) == (
        24,
        24,
        10,
        3,
    )
    assert len(deletes) == 4  # 24 rows in batches of 7: 7 + 7 + 7 + 3
    assert _ids(url, t.contract_check_results) == {_id(2000), _id(2001), _id(2002)}
    assert _ids(url, t.contract_violations) == {_id(4000), _id(4001)}
    assert _ids(url, t.contract_availability_pings) == {_id(6000), _id(6001)}
    assert _ids(url, t.alert_outbox) == {_id(7003), _id(7004), _id(7005)}
    assert _ids(url, t.alert_deliveries) == {_id(8001), _id(8002)}
    # The recent violation of a deleted check result stays, no longer pointing at it.
    [recent] = [v for v in store.results.violations() if v.id == _id(4000)]
    assert recent.check_result_id is None
    # Aggregates, even of days past the window, are kept as they were.
    assert aggregates.daily_aggregates() == kept_aggregates
    # Running again deletes nothing.
    again = store.retention.cleanup(NOW, retention_days=90, batch_size=7)
    assert (again.results_deleted, again.violations_deleted, again.pings_deleted, again.alerts_deleted) == (0, 0, 0, 0)


def test_cleanup_rejects_nonsense(seeded: tuple[MonitoringStore, str]) -> None:
    store, _ = seeded
    with pytest.raises(ValueError, match="retention_days"):
        store.retention.cleanup(NOW, retention_days=0)
    with pytest.raises(ValueError, match="batch_size"):
        store.retention.cleanup(NOW, retention_days=90, batch_size=0)
