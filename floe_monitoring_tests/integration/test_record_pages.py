"""Check results recorded a page per transaction (issue 15): `ResultsRepository.record_checks` and the pipeline.

The batched path must write exactly what `record_check` called once per record writes (results, violations,
outbox entries with their "resolved" notices, SLA status), on SQLite and PostgreSQL; a store failure in the middle
of a page rolls the whole page back and spools all of it, and draining the spool then loses and doubles nothing.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pyiceberg.catalog.sql import SqlCatalog

import floe_monitoring_defs.store.results as results_module
from floe_monitoring_defs.config import MonitoringConfig, SpoolSettings
from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore, SLAUpdate
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.results import CheckRecord
from floe_monitoring_defs.store.spool import Spool
from floe_monitoring_tests.integration.iceberg_helpers import FRESHNESS_SCHEMA as SCHEMA
from floe_monitoring_tests.integration.iceberg_helpers import catalog_env, create, make_catalog
from floe_monitoring_tests.integration.iceberg_helpers import freshness_contract as contract

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
F = ViolationType.FRESHNESS
TABLES = (t.contract_check_results, t.contract_violations, t.alert_outbox, t.contract_sla_status)


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url, clock=lambda: T0 + timedelta(seconds=5))
    yield s
    s.dispose()


def violation(contract: str, severity: ViolationSeverity, at: datetime, message: str) -> ContractViolationEvent:
    return ContractViolationEvent(
        contract_name=contract,
        contract_version="1.0.0",
        violation_type=F,
        severity=severity,
        message=message,
        element="updated_at",
        expected_value="<= 1h",
        actual_value="7200s",
        timestamp=at,
        affected_consumers=["bi"],
        check_duration_seconds=0.01,
        metadata={"table": f"shop.{contract}"},
    )


def record(
    contract: str, status: CheckStatus, at: datetime, *vs: ContractViolationEvent, table: str | None = "default"
) -> CheckRecord:
    worst = max(vs, key=lambda v: v.severity.rank) if vs and status is CheckStatus.FAIL else None
    result = CheckResult(
        id=str(uuid.uuid4()),
        contract_name=contract,
        check_type=F,
        status=status,
        duration_seconds=0.01,
        timestamp=at,
        details={"table": f"shop.{contract}"},
        violation=worst,
    )
    name = f"shop.{contract}" if table == "default" else table
    return CheckRecord(result, vs, table_name=name, sla=SLAUpdate(current_value=7200.0, threshold=3600.0))


def history() -> list[CheckRecord]:
    """What is stored before the page: a failure of `a` to resolve, a pass of `b`, an old failure of `c`."""
    warn = ViolationSeverity.WARNING
    return [
        record("a", CheckStatus.FAIL, T0 - timedelta(hours=2), violation("a", warn, T0 - timedelta(hours=2), "old")),
        record("b", CheckStatus.PASS, T0 - timedelta(hours=3)),
        record("c", CheckStatus.FAIL, T0 - timedelta(hours=30), violation("c", warn, T0 - timedelta(hours=30), "x")),
        record("n", CheckStatus.FAIL, T0 - timedelta(hours=1), violation("n", warn, T0 - timedelta(hours=1), "y")),
    ]


def mixed_page() -> list[CheckRecord]:
    """Passes (one owing a "resolved" notice, one with an INFO early warning), failures, an error, a skipped
    check, a record without a table name, and `a` twice (its second record must see its first)."""
    at = T0
    return [
        record("a", CheckStatus.PASS, at),
        record(
            "b",
            CheckStatus.FAIL,
            at,
            violation("b", ViolationSeverity.WARNING, at, "stale"),
            violation("b", ViolationSeverity.INFO, at, "early"),
        ),
        record("c", CheckStatus.ERROR, at),
        record("d", CheckStatus.SKIPPED, at),
        record("e", CheckStatus.PASS, at, violation("e", ViolationSeverity.INFO, at, "early warning")),
        record("n", CheckStatus.PASS, at, table=None),
        record("a", CheckStatus.FAIL, at + timedelta(seconds=1), violation("a", ViolationSeverity.ERROR, at, "bad")),
        record("a", CheckStatus.PASS, at + timedelta(seconds=2)),
    ]


def snapshot(store: MonitoringStore) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    with store.db.transaction("reading everything") as conn:
        for table_ in TABLES:
            keys = list(table_.primary_key.columns)
            out[table_.name] = [dict(r) for r in conn.execute(sa.select(table_).order_by(*keys)).mappings()]
    return out


def wipe(store: MonitoringStore) -> None:
    with store.db.transaction("wiping", write=True) as conn:
        for table_ in TABLES:
            conn.execute(sa.delete(table_))


def deterministic_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1)
    monkeypatch.setattr(results_module, "new_id", lambda: str(uuid.UUID(int=next(counter))))


def test_a_page_recorded_in_one_transaction_writes_what_one_record_at_a_time_writes(
    store: MonitoringStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded, page = history(), mixed_page()

    def seed() -> None:
        deterministic_ids(monkeypatch)
        for r in seeded:
            store.results.record_check(r.result, r.violations, table_name=r.table_name, sla=r.sla)

    seed()
    one_by_one = [store.results.record_check(r.result, r.violations, table_name=r.table_name, sla=r.sla) for r in page]
    expected = snapshot(store)
    wipe(store)
    assert snapshot(store) == {table_.name: [] for table_ in TABLES}
    seed()
    batched = store.results.record_checks(page)
    assert snapshot(store) == expected
    assert batched == one_by_one
    # The page did what it is for: notices owed are there, the SLA rows of every key, the duplicate key seen.
    kinds = [(row["kind"], row["contract_name"]) for row in expected["alert_outbox"]]
    assert kinds.count(("resolved", "a")) == 2 and ("resolved", "n") in kinds
    assert {(r["contract_name"], r["consecutive_failures"]) for r in expected["contract_sla_status"]} >= {
        ("a", 0),
        ("c", 2),
    }
    assert len(expected["contract_check_results"]) == len(seeded) + len(page)


def test_an_empty_page_writes_nothing(store: MonitoringStore) -> None:
    assert store.results.record_checks([]) == []
    assert snapshot(store) == {table_.name: [] for table_ in TABLES}


def test_the_grouped_sla_refresh_covers_pages_larger_than_one_statement(
    store: MonitoringStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys beyond `SLA_GROUP_SIZE` are refreshed by further grouped statements, each key with its own values."""
    monkeypatch.setattr(results_module, "SLA_GROUP_SIZE", 3)
    page = [record(f"k{i}", CheckStatus.FAIL if i % 2 else CheckStatus.PASS, T0) for i in range(7)]
    store.results.record_checks(page)
    for i in range(7):
        status = store.results.sla_status(f"k{i}", F)
        assert status is not None
        assert (status.compliance_pct, status.consecutive_failures) == ((0.0, 1) if i % 2 else (100.0, 0))
        assert status.last_check_time == T0 and status.window_start == T0 - timedelta(hours=24)


# -- the pipeline: a store failure in the middle of a page ---------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


def count_rows(store: MonitoringStore, table_: sa.Table) -> int:
    with store.db.transaction("counting") as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table_)).scalar_one())


def test_a_store_failure_in_the_middle_of_a_page_spools_the_whole_page_and_loses_or_doubles_nothing(
    store_url: str, catalog: SqlCatalog, tmp_path: Path
) -> None:
    store = MonitoringStore(store_url)
    try:
        names = [f"orders_{i}" for i in range(5)]
        now = datetime.now(UTC)
        for i, name in enumerate(names):  # odd ones stale (a violation each), even ones fresh
            newest = now - (timedelta(hours=3) if i % 2 else timedelta(minutes=1))
            create(catalog, f"shop.{name}", SCHEMA, {"id": ["a"], "amount": [Decimal("1")], "updated_at": [newest]})
        contracts = [contract(n) for n in names]
        targets = [(c, tb) for c in contracts for tb in c.tables]
        spool = Spool(SpoolSettings(tmp_path / "spool"))
        fail = {"left": 1}

        # One failure, after the first page's check results were inserted, in the same transaction.
        @sa.event.listens_for(store.db.engine, "before_cursor_execute")
        def _fail_violations(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if fail["left"] and statement.lstrip().upper().startswith("INSERT INTO CONTRACT_VIOLATIONS"):
                fail["left"] -= 1
                raise sa.exc.OperationalError(statement, {}, Exception("the store went away"))

        pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), spool=spool)
        runs = list(pipeline.run(F, targets[:3], page_size=3))
        assert [r.contract.name for r in runs] == names[:3]
        assert fail["left"] == 0 and not any(r.persisted for r in runs)
        assert [len(r.violations) for r in runs] == [0, 1, 0]
        assert count_rows(store, t.contract_check_results) == 0  # rolled back: nothing half-written
        assert len(spool.files()) == 3  # every record of the page spooled, once

        # The next step drains the spool first (in order), then writes its own page directly.
        later = list(pipeline.run(F, targets[3:], page_size=3))
        assert all(r.persisted for r in later) and not spool.files()
        assert spool.drain(store).drained == 0
        stored = [r.id for r in reversed(store.results.check_results())]
        assert sorted(stored) == sorted(r.result.id for r in runs + later)  # each once
        assert count_rows(store, t.contract_violations) == 2
        assert count_rows(store, t.alert_outbox) == 2
        assert count_rows(store, t.contract_sla_status) == len(names)
    finally:
        store.dispose()


def test_a_page_is_recorded_once_its_first_check_is_a_second_old_so_slow_checks_do_not_hold_alerts_back(
    store_url: str, catalog: SqlCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MonitoringStore(store_url)
    try:
        names = [f"slow_{i}" for i in range(5)]
        now = datetime.now(UTC)
        for name in names:
            create(catalog, f"shop.{name}", SCHEMA, {"id": ["a"], "amount": [Decimal("1")], "updated_at": [now]})
        targets = [(c, tb) for c in (contract(n) for n in names) for tb in c.tables]
        pages: list[int] = []
        record_checks = store.results.record_checks

        def counting(records: Any) -> Any:
            pages.append(len(records))
            return record_checks(records)

        monkeypatch.setattr(store.results, "record_checks", counting)
        ticks = itertools.count()
        # Each reading of the page clock is 0.6 s after the previous one: every second check finds its page's
        # first check 1.2 s old, past the 1 s bound, while the page size (200) is never reached.
        pipeline = CheckPipeline(
            IcebergSource(),
            store,
            MonitoringConfig(),
            spool=Spool(SpoolSettings(tmp_path / "spool")),
            monotonic=lambda: 0.6 * next(ticks),
        )
        runs = list(pipeline.run(F, targets, page_size=200, max_page_seconds=1.0))
        assert [r.contract.name for r in runs] == names and all(r.persisted for r in runs)
        assert pages == [2, 2, 1]
    finally:
        store.dispose()
