"""Integration tests of the monitoring store on real SQLite and PostgreSQL databases.

Every store test runs on both backends (`store_url`); all times are fixed, never the real clock.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    SLAStatus,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.store import (
    MonitoringStore,
    StoreError,
    default_db_url,
    mask_url,
    results,
)
from floe_monitoring_defs.store import tables as t

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CLOCK_NOW = datetime(2026, 3, 2, 8, 30, 0, tzinfo=UTC)

EXPECTED_TABLES = {
    "contract_check_results",
    "contract_violations",
    "contract_sla_status",
    "contract_daily_aggregates",
    "contract_aggregated_days",
    "registered_contracts",
    "alert_dedup_state",
    "contract_schema_baselines",
    "contract_availability_pings",
    "alert_outbox",
    "alert_deliveries",
    "alert_delivery_attempts",
    "manifest_bounds",
    "table_commits",
    "volume_models",
    "incidents",
}
EXPECTED_INDEXES = {
    "contract_check_results": {
        "idx_check_results_contract",
        "idx_check_results_type",
        "idx_check_results_checked_at",
        "idx_check_results_key",
    },
    "contract_violations": {
        "idx_violations_contract",
        "idx_violations_severity",
        "idx_violations_type",
        "idx_violations_detected_at",
        "idx_violations_check_result",
    },
    "contract_daily_aggregates": {"idx_daily_aggregates_date"},
    "contract_availability_pings": {"idx_availability_pings_table", "idx_availability_pings_checked_at"},
    "alert_outbox": {"idx_alert_outbox_state", "idx_alert_outbox_contract"},
    "alert_delivery_attempts": {"idx_alert_delivery_attempts_delivery"},
    "manifest_bounds": {"idx_manifest_bounds_used_at"},
    "table_commits": {"idx_table_commits_key_time", "idx_table_commits_time"},
    "incidents": {"uq_incidents_open"},
}


def _fixed_clock() -> datetime:
    return CLOCK_NOW


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url, clock=_fixed_clock)
    try:
        yield s
    finally:
        s.dispose()


def _event(
    contract: str = "orders",
    *,
    at: datetime = T0,
    vtype: ViolationType = ViolationType.FRESHNESS,
    severity: ViolationSeverity = ViolationSeverity.ERROR,
    element: str | None = None,
    metadata: dict[str, str] | None = None,
    consumers: list[str] | None = None,
) -> ContractViolationEvent:
    return ContractViolationEvent(
        contract_name=contract,
        contract_version="1.2.0",
        violation_type=vtype,
        severity=severity,
        message=f"{vtype.value} SLA breached on {contract}",
        element=element,
        expected_value="<= 6h" if element else None,
        actual_value="7h 12m" if element else None,
        timestamp=at,
        affected_consumers=consumers or [],
        check_duration_seconds=0.25,
        metadata=metadata or {},
    )


def _result(
    contract: str = "orders",
    *,
    at: datetime = T0,
    status: CheckStatus = CheckStatus.FAIL,
    check_type: ViolationType = ViolationType.FRESHNESS,
    violation: ContractViolationEvent | None = None,
) -> CheckResult:
    return CheckResult(
        contract_name=contract,
        check_type=check_type,
        status=status,
        duration_seconds=0.25,
        timestamp=at,
        details={"age_seconds": 25920.0, "tables": ["orders"], "nested": {"ok": False}},
        violation=violation,
    )


def _scalar(store_url: str, query: sa.Executable) -> object:
    engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(query).scalar_one()
    finally:
        engine.dispose()


def _is_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


# -- migrations ------------------------------------------------------------------------------------


def test_migrations_build_an_empty_database_from_zero(store_url: str) -> None:
    store = MonitoringStore(store_url, auto_migrate=False)
    try:
        assert store.db.current_revision() is None
        store.db.upgrade()
        assert store.db.current_revision() == "0007"
        engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
        try:
            inspector = sa.inspect(engine)
            assert set(inspector.get_table_names()) == EXPECTED_TABLES | {"alembic_version"}
            for table, names in EXPECTED_INDEXES.items():
                assert {ix["name"] for ix in inspector.get_indexes(table)} == names
            fks = inspector.get_foreign_keys("contract_violations")
            assert [(fk["referred_table"], fk["constrained_columns"]) for fk in fks] == [
                ("contract_check_results", ["check_result_id"])
            ]
            assert (fks[0].get("options") or {}).get("ondelete", "").upper() == "SET NULL"
            assert inspector.get_pk_constraint("contract_schema_baselines")["constrained_columns"] == [
                "contract_name",
                "table_name",
                "column_name",
            ]
            # The hand-written migration creates exactly what tables.py describes.
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                assert compare_metadata(context, t.metadata) == []
        finally:
            engine.dispose()

        store.db.upgrade()  # at head already: a no-op
        assert store.db.current_revision() == "0007"
    finally:
        store.dispose()


def test_first_use_migrates_automatically(store_url: str) -> None:
    store = MonitoringStore(store_url)
    try:
        assert store.db.current_revision() is None  # reading the revision does not migrate
        assert store.results.check_results() == []
        assert store.db.current_revision() == "0007"
    finally:
        store.dispose()


def test_concurrent_upgrades_do_not_race(store_url: str) -> None:
    stores = [MonitoringStore(store_url, auto_migrate=False) for _ in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(s: MonitoringStore) -> None:
        barrier.wait()
        try:
            s.db.upgrade()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert [s.db.current_revision() for s in stores] == ["0007"] * 3
    finally:
        for s in stores:
            s.dispose()


def test_database_at_unknown_revision_is_a_store_error(store_url: str) -> None:
    store = MonitoringStore(store_url)
    store.db.upgrade()
    engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    store.dispose()
    newer = MonitoringStore(store_url)
    try:
        with pytest.raises(StoreError, match="9999"):
            newer.results.check_results()
    finally:
        newer.dispose()


# -- check results and violations ------------------------------------------------------------------


def test_record_check_writes_result_and_violations(store: MonitoringStore, store_url: str) -> None:
    first = _event(
        element="orders.updated_at",
        metadata={"table": "analytics.orders", "root_cause": "upstream late"},
        consumers=["finance-dashboard", "ml-churn"],
        at=datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),  # 12:00 UTC
    )
    second = _event(severity=ViolationSeverity.CRITICAL, at=T0 + timedelta(seconds=1))
    result = _result(violation=first)

    ids = list(store.results.record_check(result, [first, second], table_name="analytics.orders").violation_ids)

    assert len(ids) == 2 and len(set(ids)) == 2
    assert all(len(i) == 36 for i in ids)

    [stored_result] = store.results.check_results()
    assert stored_result == result
    assert stored_result.id == result.id
    assert _is_utc(stored_result.timestamp) and stored_result.timestamp == T0
    assert stored_result.violation is not None
    assert stored_result.violation.affected_consumers == ["finance-dashboard", "ml-churn"]

    stored = store.results.violations()
    assert [v.id for v in stored] == [ids[1], ids[0]]  # newest first
    assert all(v.check_result_id == result.id for v in stored)
    assert stored[1].event == first
    assert stored[0].event == second
    assert _is_utc(stored[1].event.timestamp) and stored[1].event.timestamp == T0

    c = t.contract_check_results.c
    assert _scalar(store_url, sa.select(c.table_name)) == "analytics.orders"
    assert _scalar(store_url, sa.select(c.violation)) == result.model_dump(mode="json")["violation"]
    assert _scalar(store_url, sa.select(c.created_at)) == CLOCK_NOW


def test_a_result_without_violation_stores_sql_null(store: MonitoringStore, store_url: str) -> None:
    result = _result(status=CheckStatus.PASS)
    assert list(store.results.record_check(result, []).violation_ids) == []
    [stored_result] = store.results.check_results()
    assert stored_result.violation is None
    assert stored_result.status is CheckStatus.PASS
    c = t.contract_check_results.c
    assert _scalar(store_url, sa.select(sa.func.count()).where(c.violation.is_(None))) == 1
    assert _scalar(store_url, sa.select(c.table_name)) is None


def test_a_failure_mid_transaction_leaves_no_rows(store: MonitoringStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # The second violation gets the same id as the first: its insert fails after the check result
    # and the first violation have been written in the same transaction.
    monkeypatch.setattr(results, "new_id", lambda: "00000000-0000-4000-8000-000000000001")
    with pytest.raises(StoreError, match="recording a check result"):
        store.results.record_check(_result(), [_event(), _event(at=T0 + timedelta(seconds=1))])
    assert store.results.check_results() == []
    assert store.results.violations() == []

    monkeypatch.undo()
    ids = list(store.results.record_check(_result(), [_event()]).violation_ids)
    assert [v.id for v in store.results.violations()] == ids


def test_deleting_a_check_result_unlinks_its_violations(store: MonitoringStore) -> None:
    result = _result(violation=_event())
    [violation_id] = store.results.record_check(result, [_event()]).violation_ids
    # Through the store's own engine: on SQLite the foreign key only acts if the store enabled it.
    with store.db.engine.begin() as conn:
        conn.execute(sa.delete(t.contract_check_results))
    [stored] = store.results.violations()
    assert stored.id == violation_id
    assert stored.check_result_id is None


def test_count_failed_checks_counts_failures_in_the_window_per_contract(store: MonitoringStore) -> None:
    since = T0 - timedelta(hours=1)
    fresh = ViolationType.FRESHNESS
    rows = [
        _result("a", at=since),  # on the boundary: counted
        _result("a", at=since - timedelta(microseconds=1)),  # just before: not counted
        _result("a", at=T0),
        _result("a", at=T0, status=CheckStatus.PASS),
        _result("a", at=T0, status=CheckStatus.ERROR),
        _result("a", at=T0, status=CheckStatus.SKIPPED),
        _result("a", at=T0, check_type=ViolationType.QUALITY),
        _result("b", at=T0 + timedelta(minutes=5)),
        _result("z", at=T0),  # not asked for
    ]
    for row in rows:
        store.results.record_check(row, [])

    assert store.results.count_failed_checks(["a", "b", "c"], fresh, since) == {"a": 2, "b": 1, "c": 0}
    # The same instant in another zone, and naive (= UTC), give the same answer.
    plus5 = since.astimezone(timezone(timedelta(hours=5)))
    assert store.results.count_failed_checks(["a", "b"], fresh, plus5) == {"a": 2, "b": 1}
    assert store.results.count_failed_checks(["a"], fresh, since.replace(tzinfo=None)) == {"a": 2}
    assert store.results.count_failed_checks(["a"], ViolationType.QUALITY, since) == {"a": 1}
    assert store.results.count_failed_checks(["a", "b"], fresh, T0 + timedelta(minutes=1)) == {"a": 0, "b": 1}
    assert store.results.count_failed_checks([], fresh, since) == {}


def test_check_results_filters_and_orders_newest_first(store: MonitoringStore) -> None:
    r1 = _result("a", at=T0)
    r2 = _result("a", at=T0 + timedelta(minutes=10), check_type=ViolationType.SCHEMA_DRIFT)
    r3 = _result("b", at=T0 + timedelta(minutes=20), status=CheckStatus.PASS)
    for r in (r2, r1, r3):
        store.results.record_check(r, [])

    assert [r.id for r in store.results.check_results()] == [r3.id, r2.id, r1.id]
    assert [r.id for r in store.results.check_results(contract_name="a")] == [r2.id, r1.id]
    assert [r.id for r in store.results.check_results(check_type=ViolationType.FRESHNESS)] == [r3.id, r1.id]
    assert [r.id for r in store.results.check_results(since=T0 + timedelta(minutes=10))] == [r3.id, r2.id]
    assert [r.id for r in store.results.check_results(limit=1)] == [r3.id]


def test_violations_filter_by_type_severity_and_time(store: MonitoringStore) -> None:
    e1 = _event("a", at=T0, severity=ViolationSeverity.WARNING)
    e2 = _event("a", at=T0 + timedelta(minutes=1), vtype=ViolationType.SCHEMA_DRIFT)
    e3 = _event("b", at=T0 + timedelta(minutes=2), severity=ViolationSeverity.CRITICAL)
    store.results.record_check(_result("a", violation=e1), [e1, e2])
    store.results.record_check(_result("b", violation=e3), [e3])

    assert [v.event for v in store.results.violations()] == [e3, e2, e1]
    assert [v.event for v in store.results.violations(contract_name="a")] == [e2, e1]
    assert [v.event for v in store.results.violations(violation_type=ViolationType.SCHEMA_DRIFT)] == [e2]
    assert [v.event for v in store.results.violations(severity=ViolationSeverity.CRITICAL)] == [e3]
    assert [v.event for v in store.results.violations(since=T0 + timedelta(minutes=1))] == [e3, e2]
    assert [v.event for v in store.results.violations(limit=2)] == [e3, e2]


# -- SLA status, baselines, registrations ----------------------------------------------------------


def test_upsert_sla_status_inserts_then_updates(store: MonitoringStore, store_url: str) -> None:
    assert store.results.sla_status("orders", ViolationType.FRESHNESS) is None
    first = SLAStatus(
        contract_name="orders",
        check_type=ViolationType.FRESHNESS,
        current_value=3600.0,
        threshold=21600.0,
        compliance_pct=100.0,
        last_check_time=T0,
        consecutive_failures=0,
        violation_count_24h=0,
        window_start=T0 - timedelta(hours=24),
    )
    store.results.upsert_sla_status(first)
    assert store.results.sla_status("orders", ViolationType.FRESHNESS) == first

    second = first.model_copy(
        update={
            "current_value": 25000.0,
            "compliance_pct": 87.5,
            "last_check_time": T0 + timedelta(minutes=15),
            "consecutive_failures": 2,
            "violation_count_24h": 3,
            "window_start": T0 - timedelta(hours=23, minutes=45),
        }
    )
    store.results.upsert_sla_status(second)
    got = store.results.sla_status("orders", ViolationType.FRESHNESS)
    assert got == second
    assert got is not None and _is_utc(got.window_start) and got.last_check_time is not None
    assert _is_utc(got.last_check_time)

    other = first.model_copy(update={"check_type": ViolationType.QUALITY, "last_check_time": None})
    store.results.upsert_sla_status(other)
    assert store.results.sla_status("orders", ViolationType.QUALITY) == other
    assert store.results.sla_status("orders", ViolationType.FRESHNESS) == second
    c = t.contract_sla_status.c
    assert _scalar(store_url, sa.select(sa.func.count()).select_from(t.contract_sla_status)) == 2
    assert _scalar(store_url, sa.select(sa.func.max(c.updated_at))) == CLOCK_NOW


def test_schema_baseline_keeps_the_first_mapping(store: MonitoringStore) -> None:
    assert store.baselines.get("orders", "analytics.orders") == {}
    store.baselines.save("orders", "analytics.orders", {"id": 1, "amount": 2}, T0)
    store.baselines.save("orders", "analytics.orders", {"amount": 7, "customer": 3}, T0 + timedelta(hours=1))
    store.baselines.save("orders", "analytics.orders", {}, T0)
    assert store.baselines.get("orders", "analytics.orders") == {"id": 1, "amount": 2, "customer": 3}
    store.baselines.save("orders", "analytics.refunds", {"id": 9}, T0)
    assert store.baselines.get("orders", "analytics.refunds") == {"id": 9}
    assert store.baselines.get("other", "analytics.orders") == {}


def test_register_and_deregister_contracts(store: MonitoringStore, store_url: str) -> None:
    store.registry.register("orders", "1.0.0", {"id": "orders", "schema": []}, {"catalog": "demo"}, None, T0)
    store.registry.register(
        "refunds", "2.1.0", {"id": "refunds"}, {}, {"check_intervals": {"freshness_minutes": 5}}, T0
    )
    rows = store.registry.registrations()
    assert [r["contract_name"] for r in rows] == ["orders", "refunds"]
    orders = rows[0]
    assert orders["contract_version"] == "1.0.0"
    assert orders["contract_data"] == {"id": "orders", "schema": []}
    assert orders["connection_config"] == {"catalog": "demo"}
    assert orders["monitoring_overrides"] is None
    assert orders["active"] is True
    assert orders["registered_at"] == T0 and _is_utc(orders["registered_at"])
    assert rows[1]["monitoring_overrides"] == {"check_intervals": {"freshness_minutes": 5}}
    c = t.registered_contracts.c
    assert _scalar(store_url, sa.select(sa.func.count()).where(c.monitoring_overrides.is_(None))) == 1

    assert store.registry.deregister("orders") is True
    assert store.registry.deregister("missing") is False
    assert [r["contract_name"] for r in store.registry.registrations()] == ["refunds"]
    everything = {r["contract_name"]: r["active"] for r in store.registry.registrations(active_only=False)}
    assert everything == {"orders": False, "refunds": True}

    later = T0 + timedelta(days=1)
    store.registry.register("orders", "1.1.0", {"id": "orders"}, {"catalog": "demo"}, None, later)
    orders = next(r for r in store.registry.registrations() if r["contract_name"] == "orders")
    assert orders["active"] is True
    assert orders["contract_version"] == "1.1.0"
    assert orders["registered_at"] == later


# -- connectivity, URLs ----------------------------------------------------------------------------


def test_ping_works_on_a_live_database(store: MonitoringStore, store_url: str) -> None:
    store.db.ping()
    assert store.dialect == ("sqlite" if store_url.startswith("sqlite") else "postgresql")


@pytest.mark.parametrize("call", ["db.ping", "results.check_results", "db.current_revision"])
def test_unreachable_database_raises_store_error_without_the_password(call: str) -> None:
    store = MonitoringStore("postgresql+psycopg2://floe:s3cretpw@127.0.0.1:1/x")
    try:
        repo, method = call.split(".")
        with pytest.raises(StoreError) as info:
            getattr(getattr(store, repo), method)()
        message = str(info.value)
        assert "127.0.0.1" in message
        assert "s3cretpw" not in message
        assert "floe:***@127.0.0.1:1/x" in message
        assert "s3cretpw" not in repr(store) and "s3cretpw" not in store.url_display
    finally:
        store.dispose()


def test_plain_postgresql_url_uses_psycopg2() -> None:
    store = MonitoringStore("postgresql://floe:pw@127.0.0.1:1/x")
    assert store.dialect == "postgresql"
    assert store.url_display == "postgresql+psycopg2://floe:***@127.0.0.1:1/x"
    store.dispose()


def test_unsupported_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match=r"mysql\+pymysql://u:\*\*\*@h/db"):
        MonitoringStore("mysql+pymysql://u:hunter2@h/db")


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql+psycopg2://floe:s3cret@db:5432/mon") == "postgresql+psycopg2://floe:***@db:5432/mon"
    in_query = mask_url("postgresql+psycopg2://db/mon?user=u&password=s3cret")
    assert "s3cret" not in in_query and "password=***" in in_query and "user=u" in in_query
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_default_db_url_rewrites_plain_postgresql_urls() -> None:
    env = {"FLOE_MONITORING_DB_URL": "postgresql://u:p@db:5432/mon", "DAGSTER_HOME": "/ignored"}
    assert default_db_url(env) == "postgresql+psycopg2://u:p@db:5432/mon"
    assert default_db_url({"FLOE_MONITORING_DB_URL": "postgres://u@db/mon"}) == "postgresql+psycopg2://u@db/mon"
    assert default_db_url({"FLOE_MONITORING_DB_URL": "postgresql+psycopg2://u@db/mon"}) == (
        "postgresql+psycopg2://u@db/mon"
    )
    assert default_db_url({"FLOE_MONITORING_DB_URL": "sqlite:////data/m.db"}) == "sqlite:////data/m.db"


def test_default_db_url_honours_dagster_home(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    url = default_db_url({"DAGSTER_HOME": str(home), "FLOE_MONITORING_DB_URL": ""})
    assert url == f"sqlite:///{home.resolve() / 'floe_monitoring.db'}"
    assert home.is_dir()


def test_default_db_url_falls_back_to_dot_floe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = default_db_url({})
    assert url == f"sqlite:///{tmp_path.resolve() / '.floe' / 'floe_monitoring.db'}"
    assert (tmp_path / ".floe").is_dir()


def test_from_env_uses_the_environment(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", store_url)
    store = MonitoringStore.from_env()
    try:
        assert store.url_display == mask_url(store_url)
        store.db.ping()
        assert store.results.check_results() == []
    finally:
        store.dispose()


def test_the_store_package_does_not_import_dagster(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from floe_monitoring_defs.store import MonitoringStore\n"
        f"s = MonitoringStore('sqlite:///{tmp_path / 'x.db'}')\n"
        "s.results.check_results()\n"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_a_password_in_the_query_string_is_masked_in_errors() -> None:
    store = MonitoringStore("postgresql+psycopg2://127.0.0.1:1/x?user=floe&password=qu3rypw")
    try:
        with pytest.raises(StoreError) as info:
            store.db.ping()
        assert "qu3rypw" not in str(info.value) and "127.0.0.1" in str(info.value)
    finally:
        store.dispose()
