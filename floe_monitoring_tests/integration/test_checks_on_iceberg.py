"""Freshness and schema drift on real Iceberg tables, results stored on SQLite and PostgreSQL.

Time is injected (NOW); table rows carry timestamps relative to it, and freshness reads them from
manifest upper bounds, so the real clock never matters.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DecimalType,
    FloatType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts import MonitoredContract, parse_document
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import (
    CATALOG,
    append_without_metrics,
    catalog_env,
    create,
    make_catalog,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
S = ViolationSeverity
F, D = ViolationType.FRESHNESS, ViolationType.SCHEMA_DRIFT


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    yield s
    s.dispose()


def contract(
    name: str,
    table: str,
    props: list[dict[str, Any]],
    *,
    freshness: str | None = "PT2H",
    element: str | None = "updated_at",
    ns: str = "shop",
) -> MonitoredContract:
    sla = [{"property": "freshness", "value": freshness, **({"element": element} if element else {})}]
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///unused.db", "namespace": ns}
        ],
        "schema": [{"name": table, "properties": props}],
        "slaProperties": sla if freshness else [],
    }
    return parse_document(doc, f"{name}.yaml")


ORDER_PROPS: list[dict[str, Any]] = [
    {"name": "order_id", "logicalType": "string", "primaryKey": True, "required": True},
    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(10,2)", "required": True},
    {"name": "qty", "logicalType": "integer", "physicalType": "INT"},
    {"name": "updated_at", "logicalType": "timestamp", "required": True},
]


def orders_schema(amount_type: Any = None, qty_type: Any = None) -> Schema:
    return Schema(
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "amount", amount_type or DecimalType(10, 2), required=True),
        NestedField(3, "qty", qty_type or IntegerType(), required=False),
        NestedField(4, "updated_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )


def rows(newest_age: timedelta, n: int = 20, amount: Any = None) -> dict[str, list[Any]]:
    return {
        "order_id": [f"o{i}" for i in range(n)],
        "amount": [amount if amount is not None else Decimal("1.50")] * n,
        "qty": [i for i in range(n)],
        "updated_at": [NOW - newest_age - timedelta(minutes=i) for i in range(n)],
    }


def run(
    store: MonitoringStore | None, check_type: ViolationType, c: MonitoredContract, clock: Clock | None = None
) -> CheckRun:
    pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), clock=clock or Clock(NOW))
    [result] = list(pipeline.run(check_type, [(c, t) for t in c.tables]))
    return result


# -- freshness ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "status", "severity"),
    [
        (timedelta(minutes=60), CheckStatus.PASS, None),  # 50 %: pass, nothing emitted
        (timedelta(minutes=98), CheckStatus.PASS, S.INFO),  # 81 % after tolerance: early warning
        (timedelta(minutes=110), CheckStatus.FAIL, S.WARNING),  # 91 %
        (timedelta(minutes=150), CheckStatus.FAIL, S.ERROR),  # breach
        (timedelta(minutes=120, seconds=45), CheckStatus.FAIL, S.WARNING),  # past SLA but within 60 s skew
    ],
)
def test_freshness_grades(
    catalog: SqlCatalog, store: MonitoringStore, age: timedelta, status: CheckStatus, severity: ViolationSeverity | None
) -> None:
    create(catalog, "shop.orders", orders_schema(), rows(age))
    r = run(store, F, contract("orders", "orders", ORDER_PROPS))
    assert r.result.status is status
    assert r.max_severity is severity
    assert r.outcome.details["method"] == "column_bounds"
    assert r.outcome.measured_value == pytest.approx(age.total_seconds())
    assert r.persisted


def test_freshness_from_snapshot_commit_time_without_element(catalog: SqlCatalog, store: MonitoringStore) -> None:
    create(catalog, "shop.orders", orders_schema(), rows(timedelta(days=30)))
    c = contract("orders", "orders", ORDER_PROPS, element=None)
    fresh = run(store, F, c, Clock(datetime.now(UTC)))  # the commit just happened, whatever the rows say
    assert fresh.result.status is CheckStatus.PASS and fresh.outcome.details["method"] == "snapshot"
    stale = run(store, F, c, Clock(datetime.now(UTC) + timedelta(hours=3)))
    assert stale.max_severity is S.ERROR


def test_missing_timestamp_column_is_an_error_with_reason(catalog: SqlCatalog, store: MonitoringStore) -> None:
    create(catalog, "shop.orders", orders_schema(), rows(timedelta(minutes=5)))
    # The contract declares `loaded_at` (an undeclared element is refused at load), the table lacks it.
    props = [*ORDER_PROPS, {"name": "loaded_at", "logicalType": "timestamp"}]
    r = run(store, F, contract("orders", "orders", props, element="loaded_at"))
    assert r.result.status is CheckStatus.ERROR
    assert "loaded_at" in r.result.details["reason"] and r.violations == ()


def test_files_without_bounds_are_scanned(catalog: SqlCatalog, store: MonitoringStore) -> None:
    table = create(catalog, "shop.orders", orders_schema(), rows(timedelta(hours=5)))
    append_without_metrics(table, rows(timedelta(minutes=30), n=3))
    r = run(store, F, contract("orders", "orders", ORDER_PROPS))
    assert r.outcome.details["method"] == "column_scan" and r.outcome.details["files_scanned"] == 1
    assert r.outcome.measured_value == pytest.approx(1800)
    assert r.result.status is CheckStatus.PASS


def test_critical_on_the_fourth_violation_in_24h(catalog: SqlCatalog, store: MonitoringStore) -> None:
    create(catalog, "shop.orders", orders_schema(), rows(timedelta(minutes=150)))
    c = contract("orders", "orders", ORDER_PROPS)
    clock = Clock(NOW)
    severities = []
    for _ in range(4):
        severities.append(run(store, F, c, clock).max_severity)
        clock.now += timedelta(minutes=15)
    assert severities == [S.ERROR, S.ERROR, S.ERROR, S.CRITICAL]
    # 25 h later the first three have left the window.
    clock.now = NOW + timedelta(hours=25, minutes=40)
    assert run(store, F, c, clock).max_severity is S.ERROR


# -- schema drift ----------------------------------------------------------------------------------


def drift(r: CheckRun) -> list[tuple[str, str | None, ViolationSeverity]]:
    return sorted((v.metadata["drift"], v.element, v.severity) for v in r.violations)


def test_exact_match_and_int_to_long(catalog: SqlCatalog, store: MonitoringStore) -> None:
    create(catalog, "shop.orders", orders_schema(qty_type=LongType()), rows(timedelta(minutes=5)))
    r = run(store, D, contract("orders", "orders", ORDER_PROPS))
    assert r.result.status is CheckStatus.PASS and r.violations == ()


def test_added_removed_type_and_nullability_one_violation_each(catalog: SqlCatalog, store: MonitoringStore) -> None:
    schema = Schema(
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "amount", FloatType(), required=True),  # DECIMAL(10,2) in the contract
        NestedField(3, "qty", IntegerType(), required=True),  # optional in the contract
        NestedField(5, "status", StringType(), required=False),  # not in the contract
        identifier_field_ids=[1],  # updated_at is gone
    )
    create(catalog, "shop.orders", schema)
    r = run(store, D, contract("orders", "orders", ORDER_PROPS))
    assert r.result.status is CheckStatus.FAIL
    assert drift(r) == sorted(
        [
            ("type_changed", "amount", S.ERROR),
            ("nullability_changed", "qty", S.WARNING),
            ("column_added", "status", S.WARNING),
            ("column_removed", "updated_at", S.CRITICAL),
        ]
    )
    typed = next(v for v in r.violations if v.metadata["drift"] == "type_changed")
    assert (typed.expected_value, typed.actual_value) == ("DECIMAL(10,2)", "float")
    assert r.result.violation is not None and r.result.violation.severity is S.CRITICAL


def test_rename_detected_by_field_id(catalog: SqlCatalog, store: MonitoringStore) -> None:
    table = create(catalog, "shop.orders", orders_schema(), rows(timedelta(minutes=5)))
    c = contract("orders", "orders", ORDER_PROPS)
    assert run(store, D, c).result.status is CheckStatus.PASS  # records the field-id baseline
    with table.update_schema() as update:
        update.rename_column("amount", "amount_eur")
    r = run(store, D, c)
    assert drift(r) == [("column_renamed", "amount", S.ERROR)]
    assert r.violations[0].actual_value == "amount_eur"


def test_missing_table(catalog: SqlCatalog, store: MonitoringStore) -> None:
    catalog.create_namespace_if_not_exists("shop")
    r = run(store, D, contract("orders", "orders", ORDER_PROPS))
    assert drift(r) == [("table_missing", None, S.ERROR)]
    f = run(store, F, contract("orders", "orders", ORDER_PROPS))
    assert f.result.status is CheckStatus.ERROR and "does not exist" in f.result.details["reason"]


def test_results_and_violations_readable_from_the_store_tables(
    catalog: SqlCatalog, store: MonitoringStore, store_url: str
) -> None:
    create(catalog, "shop.orders", orders_schema(amount_type=FloatType()), rows(timedelta(minutes=150), amount=1.5))
    c = contract("orders", "orders", ORDER_PROPS)
    fr, dr = run(store, F, c), run(store, D, c)
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        results = conn.execute(
            sa.text("SELECT id, check_type, status, table_name FROM contract_check_results ORDER BY check_type")
        ).all()
        violations = conn.execute(
            sa.text(
                "SELECT contract_name, violation_type, severity, element, check_result_id FROM contract_violations "
                "ORDER BY violation_type"
            )
        ).all()
    engine.dispose()
    assert [(r.check_type, r.status, r.table_name) for r in results] == [
        ("freshness", "fail", "shop.orders"),
        ("schema_drift", "fail", "shop.orders"),
    ]
    assert [(v.violation_type, v.severity, v.element) for v in violations] == [
        ("freshness", "error", "updated_at"),
        ("schema_drift", "error", "amount"),
    ]
    # SQLite stores UUIDs as 32 hex digits, PostgreSQL as uuid: compare as UUIDs.
    assert {uuid.UUID(str(v.check_result_id)) for v in violations} == {uuid.UUID(fr.result.id), uuid.UUID(dr.result.id)}
    stored = store.results.violations(contract_name="orders")
    assert {v.id for v in stored} == set(fr.violation_ids) | set(dr.violation_ids)


def test_checks_keep_running_when_the_store_is_down(catalog: SqlCatalog) -> None:
    create(catalog, "shop.orders", orders_schema(), rows(timedelta(minutes=150)))
    dead = MonitoringStore("postgresql+psycopg2://floe:pw@127.0.0.1:1/none", auto_migrate=True)
    r = run(dead, F, contract("orders", "orders", ORDER_PROPS))
    assert r.max_severity is S.ERROR and not r.persisted
