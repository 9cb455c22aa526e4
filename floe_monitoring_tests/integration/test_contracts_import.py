"""`floe contracts import`: a live Iceberg table -> a strict ODCS v3.1.0 contract that floe then finds clean.

Round trip on four real tables (pyiceberg SqlCatalog under tmp_path, found the pyiceberg way through
`PYICEBERG_CATALOG__<NAME>__*` or a `.pyiceberg.yaml`): a flat table with a composite identifier key,
decimals and timestamps; a nested one (struct, list of primitives, list of structs, map); a Spark-style
table whose every field is optional; and a table with no rows. Each: import through the CLI, validate the
file with python-jsonschema against the official v3.1.0 schema (the `type: iceberg` server checked against
the v3.2.0 server definition, floe's one leniency), load it with the loader, check that what it loaded is
the table (columns, field ids, nullability, key order, nested paths), then run schema drift and quality
through `CheckPipeline` on that same table: zero findings. Controls show the same checks do fire on a
changed table. Time is frozen (NOW); the environment is emptied of PYICEBERG_* / FLOE_* and the home and
working directories point into tmp_path, so no developer configuration can reach the catalog lookup.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner, Result
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from floe_monitoring_defs.checks.quality import QualityKind
from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts import ExpectedColumn, MonitoredContract, load_contract_file, parse_document
from floe_monitoring_defs.contracts.export import contract_document, contract_yaml
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.describe import describe_table
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog
from floe_monitoring_tests.odcs_schemas import odcs_errors

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


# -- the environment -------------------------------------------------------------------------------


def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No developer configuration: PYICEBERG_* / FLOE_* unset; pyiceberg's config search (PYICEBERG_HOME, ~,
    the working directory) points at empty directories under tmp_path. Returns the PYICEBERG_HOME dir."""
    for name in list(os.environ):
        if name.upper().startswith(("PYICEBERG_", "FLOE_")):
            monkeypatch.delenv(name)
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PYICEBERG_HOME", str(home))
    monkeypatch.chdir(cwd)
    return home


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    """The test catalog, configured through PYICEBERG_CATALOG__FLOETEST__TYPE/URI/WAREHOUSE."""
    _isolate(tmp_path, monkeypatch)
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MonitoringStore]:
    s = MonitoringStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.dispose()


def import_table(*args: str) -> Result:
    return CliRunner().invoke(cli, ["contracts", "import", *args], catch_exceptions=True)


def run_check(store: MonitoringStore, kind: ViolationType, contract: MonitoredContract) -> CheckRun:
    pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), clock=lambda: NOW)
    [run] = list(pipeline.run(kind, [(contract, t) for t in contract.tables]))
    return run


# -- the tables --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One differently shaped table, the rows it holds, and whether its contract carries column constraints."""

    identifier: str
    schema: Schema
    rows: Mapping[str, Sequence[Any]] | None
    constrained: bool  # required fields or an identifier key: the imported contract yields quality rules
    note: str = field(default="", compare=False)


def flat_orders() -> Shape:
    schema = Schema(
        NestedField(1, "order_id", StringType(), required=True, doc="The shop's order number"),
        NestedField(2, "line_no", IntegerType(), required=True),
        NestedField(3, "sku", StringType(), required=True),
        NestedField(4, "amount", DecimalType(12, 2), required=True),
        NestedField(5, "fx_rate", DoubleType(), required=False),
        NestedField(6, "qty", LongType(), required=True),
        NestedField(7, "weight_kg", FloatType(), required=False),
        NestedField(8, "paid", BooleanType(), required=False),
        NestedField(9, "order_date", DateType(), required=True),
        NestedField(10, "pickup_time", TimeType(), required=False),
        NestedField(11, "created_at", TimestamptzType(), required=True),
        NestedField(12, "shipped_at", TimestampType(), required=False),
        NestedField(13, "payload", BinaryType(), required=False),
        identifier_field_ids=[1, 2],
    )
    n = 6
    rows: dict[str, list[Any]] = {
        "order_id": [f"o{i // 2}" for i in range(n)],  # two lines per order: only (order_id, line_no) is unique
        "line_no": [i % 2 + 1 for i in range(n)],
        "sku": [f"sku-{i}" for i in range(n)],
        "amount": [Decimal("10.50") + i for i in range(n)],
        "fx_rate": [1.0 + i / 10 for i in range(n)],
        "qty": [i + 1 for i in range(n)],
        "weight_kg": [0.5 * (i + 1) for i in range(n)],
        "paid": [i % 2 == 0 for i in range(n)],
        "order_date": [date(2026, 11, 20) + timedelta(days=i) for i in range(n)],
        "pickup_time": [time(9, i) for i in range(n)],
        "created_at": [NOW - timedelta(hours=i) for i in range(n)],
        "shipped_at": [datetime(2026, 11, 21, 8, i) for i in range(n)],
        "payload": [bytes([i]) * 4 for i in range(n)],
    }
    return Shape("shop.order_lines", schema, rows, constrained=True, note="flat, composite key")


def nested_customers() -> Shape:
    schema = Schema(
        NestedField(1, "customer_id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=True),
        NestedField(
            3,
            "address",
            StructType(
                NestedField(4, "street", StringType(), required=False),
                NestedField(5, "city", StringType(), required=True),
                NestedField(
                    6,
                    "geo",
                    StructType(
                        NestedField(7, "lat", DoubleType(), required=True),
                        NestedField(8, "lon", DoubleType(), required=True),
                    ),
                    required=False,
                ),
            ),
            required=False,
        ),
        NestedField(9, "tags", ListType(10, StringType(), element_required=True), required=False),
        NestedField(
            11,
            "phones",
            ListType(
                12,
                StructType(
                    NestedField(13, "kind", StringType(), required=True),
                    NestedField(14, "number", StringType(), required=False),
                ),
                element_required=False,
            ),
            required=False,
        ),
        NestedField(
            15, "attributes", MapType(16, StringType(), 17, StringType(), value_required=False), required=False
        ),
        identifier_field_ids=[1],
    )
    rows: dict[str, list[Any]] = {
        "customer_id": [1, 2, 3],
        "name": ["Ada", "Grace", "Edsger"],
        "address": [
            {"street": "1 Main St", "city": "Springfield", "geo": {"lat": 1.5, "lon": 2.5}},
            {"street": None, "city": "Shelbyville", "geo": None},
            None,
        ],
        "tags": [["vip", "eu"], [], None],
        "phones": [[{"kind": "home", "number": "555-0100"}], [{"kind": "work", "number": None}], None],
        "attributes": [[("tier", "gold")], [("tier", None)], None],
    }
    return Shape("crm.customers", schema, rows, constrained=True, note="struct, list, list of structs, map")


def spark_events() -> Shape:
    # Spark and dbt write every field as optional and set no identifier fields; the data has no nulls.
    schema = Schema(
        NestedField(1, "event_id", StringType(), required=False),
        NestedField(2, "user_id", LongType(), required=False),
        NestedField(3, "kind", StringType(), required=False),
        NestedField(4, "amount", DecimalType(10, 2), required=False),
        NestedField(5, "event_ts", TimestamptzType(), required=False),
        NestedField(6, "labels", ListType(7, StringType(), element_required=False), required=False),
    )
    rows: dict[str, list[Any]] = {
        "event_id": ["e1", "e2", "e3", "e4"],
        "user_id": [10, 11, 10, 12],
        "kind": ["view", "click", "view", "buy"],
        "amount": [Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), Decimal("19.99")],
        "event_ts": [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)],
        "labels": [["a"], ["b", "c"], ["a"], ["d"]],
    }
    return Shape("lake.raw.events", schema, rows, constrained=False, note="all optional, two-level namespace")


def empty_snapshots() -> Shape:
    schema = Schema(
        NestedField(1, "snapshot_id", LongType(), required=True),
        NestedField(2, "label", StringType(), required=False),
        NestedField(3, "loaded_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )
    return Shape("ops.snapshots", schema, None, constrained=True, note="no rows, no snapshot")


SHAPES = {"flat": flat_orders, "nested": nested_customers, "spark": spark_events, "empty": empty_snapshots}


# -- what the loaded contract must say about the table ------------------------------------------------


def iceberg_shape(f: NestedField, path: str) -> tuple[Any, ...]:
    """(path, field id, required, nested) of an Iceberg field, as the contract's model must mirror it."""
    t = f.field_type
    if isinstance(t, StructType):
        return (path, f.field_id, f.required, tuple(iceberg_shape(c, f"{path}.{c.name}") for c in t.fields), None)
    if isinstance(t, ListType):
        return (path, f.field_id, f.required, (), iceberg_shape(t.element_field, f"{path}[]"))
    return (path, f.field_id, f.required, (), None)  # primitives, and maps (ODCS objects without properties)


def model_shape(c: ExpectedColumn) -> tuple[Any, ...]:
    return (
        c.column_path,
        c.field_id,
        c.required,
        tuple(model_shape(k) for k in c.children),
        None if c.items is None else model_shape(c.items),
    )


def imported(tmp_path: Path, identifier: str, *extra: str) -> tuple[Path, MonitoredContract]:
    out = tmp_path / f"{identifier}.odcs.yaml"
    result = import_table("--catalog", CATALOG, "--table", identifier, "--output", str(out), *extra)
    assert result.exit_code == 0, result.output
    return out, load_contract_file(out)


# -- the round trip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_round_trip_validates_loads_as_the_table_and_raises_nothing(
    shape_name: str, catalog: SqlCatalog, store: MonitoringStore, tmp_path: Path
) -> None:
    shape = SHAPES[shape_name]()
    table = create(catalog, shape.identifier, shape.schema, shape.rows)
    schema = table.schema()
    namespace, name = shape.identifier.rsplit(".", 1)
    out = tmp_path / "contract.yaml"

    result = import_table("--catalog", CATALOG, "--table", shape.identifier, "--output", str(out))
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == f"wrote {out}: contract {name} 1.0.0 for {shape.identifier} ({len(schema.fields)} columns)\n"
    )
    assert result.stderr == ""

    # Strict ODCS v3.1.0, by the official schema (the iceberg server by the v3.2.0 server definition).
    raw = yaml.safe_load(out.read_text("utf-8"))
    assert raw["apiVersion"] == "v3.1.0"
    assert odcs_errors(raw) == []
    [server] = raw["servers"]
    assert (server["type"], server["catalog"], server["namespace"]) == ("iceberg", CATALOG, namespace)
    assert server["catalogUrl"] == catalog_env(tmp_path)[f"PYICEBERG_CATALOG__{CATALOG.upper()}__URI"]

    # floe loads it as exactly this table.
    contract = load_contract_file(out)
    assert parse_document(raw, str(out)) == contract
    assert (contract.name, contract.version, contract.api_version) == (name, "1.0.0", "v3.1.0")
    [t] = contract.tables
    assert (t.ref.identifier, t.ref.catalog) == (shape.identifier, CATALOG)
    assert [model_shape(c) for c in t.columns] == [iceberg_shape(f, f.name) for f in schema.fields]
    assert t.primary_key == tuple(schema.find_column_name(i) for i in schema.identifier_field_ids)

    # ...and finds it clean: no drift, and every constraint the contract states holds.
    drift = run_check(store, ViolationType.SCHEMA_DRIFT, contract)
    assert drift.outcome.findings == ()
    assert (drift.result.status, drift.violations) == (CheckStatus.PASS, ())
    if shape.constrained:
        assert QualityKind.applies(contract), "required fields and the identifier key are quality rules"
    if QualityKind.applies(contract):
        quality = run_check(store, ViolationType.QUALITY, contract)
        assert quality.outcome.findings == ()
        assert (quality.result.status, quality.violations) == (CheckStatus.PASS, ())


def test_composite_key_positions_follow_the_identifier_fields_not_the_column_order(
    catalog: SqlCatalog, tmp_path: Path
) -> None:
    schema = Schema(
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "region", StringType(), required=True),
        NestedField(3, "note", StringType(), required=False),
        identifier_field_ids=[2, 1],
    )
    create(catalog, "shop.regional_orders", schema)
    out, contract = imported(tmp_path, "shop.regional_orders")
    props = {p["name"]: p for p in yaml.safe_load(out.read_text("utf-8"))["schema"][0]["properties"]}
    assert {n: p.get("primaryKeyPosition") for n, p in props.items()} == {"order_id": 2, "region": 1, "note": None}
    assert contract.tables[0].primary_key == ("region", "order_id")


def test_the_imported_contract_catches_a_change_to_the_table(
    catalog: SqlCatalog, store: MonitoringStore, tmp_path: Path
) -> None:
    """Control for the round trip: the same contract and checks do report drift once the table changes."""
    shape = flat_orders()
    table = create(catalog, shape.identifier, shape.schema, shape.rows)
    _, contract = imported(tmp_path, shape.identifier)
    assert run_check(store, ViolationType.SCHEMA_DRIFT, contract).violations == ()
    with table.update_schema() as update:
        update.add_column("coupon", StringType())
        update.update_column("amount", field_type=DecimalType(14, 2))  # a wider precision is a safe promotion
    drifted = run_check(store, ViolationType.SCHEMA_DRIFT, contract)
    assert sorted((v.metadata["drift"], v.element, v.severity) for v in drifted.violations) == [
        ("column_added", "coupon", ViolationSeverity.WARNING)
    ]


def test_the_imported_nested_contract_catches_a_nested_change(
    catalog: SqlCatalog, store: MonitoringStore, tmp_path: Path
) -> None:
    """Control for the nested round trip: drift inside a struct is found, by its path."""
    shape = nested_customers()
    table = create(catalog, shape.identifier, shape.schema, shape.rows)
    _, contract = imported(tmp_path, shape.identifier)
    assert run_check(store, ViolationType.SCHEMA_DRIFT, contract).violations == ()
    with table.update_schema() as update:
        update.add_column(("address", "zip"), StringType())
    drifted = run_check(store, ViolationType.SCHEMA_DRIFT, contract)
    assert sorted((v.metadata["drift"], v.element, v.severity) for v in drifted.violations) == [
        ("column_added", "address.zip", ViolationSeverity.WARNING)
    ]


def test_the_imported_key_is_a_promise_the_quality_check_holds(
    catalog: SqlCatalog, store: MonitoringStore, tmp_path: Path
) -> None:
    """Control: Iceberg does not enforce identifier fields; a duplicate key the table accepted is found."""
    shape = flat_orders()
    table = create(catalog, shape.identifier, shape.schema, shape.rows)
    _, contract = imported(tmp_path, shape.identifier)
    assert shape.rows is not None
    first_row = {k: list(v[:1]) for k, v in shape.rows.items()}  # (order_id, line_no) of row 1, once more
    table.append(pa.table(first_row, schema=table.schema().as_arrow()))
    quality = run_check(store, ViolationType.QUALITY, contract)
    assert quality.result.status is CheckStatus.FAIL
    assert quality.max_severity is ViolationSeverity.ERROR


# -- output, catalog resolution ------------------------------------------------------------------------


def test_stdout_is_the_file_and_reimporting_gives_the_same_contract(catalog: SqlCatalog, tmp_path: Path) -> None:
    shape = nested_customers()
    create(catalog, shape.identifier, shape.schema, shape.rows)
    out, _ = imported(tmp_path, shape.identifier)
    first = import_table("--catalog", CATALOG, "--table", shape.identifier)
    second = import_table("--catalog", CATALOG, "--table", shape.identifier)
    assert first.exit_code == 0 and first.stderr == ""
    assert first.stdout == out.read_text("utf-8") == second.stdout


def test_name_and_version_options(catalog: SqlCatalog, tmp_path: Path) -> None:
    shape = empty_snapshots()
    create(catalog, shape.identifier, shape.schema)
    _, contract = imported(tmp_path, shape.identifier, "--name", "ops_snapshots", "--version", "2.1.0")
    assert (contract.name, contract.version) == ("ops_snapshots", "2.1.0")


def test_catalog_from_a_pyiceberg_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _isolate(tmp_path, monkeypatch)
    env = catalog_env(tmp_path)
    prefix = f"PYICEBERG_CATALOG__{CATALOG.upper()}__"
    (home / ".pyiceberg.yaml").write_text(
        f"catalog:\n  {CATALOG}:\n    type: sql\n    uri: {env[prefix + 'URI']}\n"
        f"    warehouse: {env[prefix + 'WAREHOUSE']}\n",
        "utf-8",
    )
    shape = spark_events()
    create(make_catalog(tmp_path), shape.identifier, shape.schema, shape.rows)
    out, contract = imported(tmp_path, shape.identifier)
    [server] = yaml.safe_load(out.read_text("utf-8"))["servers"]
    assert (server["catalogUrl"], server["warehouse"]) == (env[prefix + "URI"], env[prefix + "WAREHOUSE"])
    assert contract.tables[0].ref.identifier == "lake.raw.events"


def test_catalog_credentials_never_reach_the_contract(catalog: SqlCatalog) -> None:
    shape = empty_snapshots()
    table = create(catalog, shape.identifier, shape.schema)
    props = {
        "uri": "postgresql+psycopg2://floe:s3cret@db.internal:5432/iceberg?sslpassword=t0ken",
        "warehouse": "s3://lake/wh",
        "credential": "client:s3cret",
    }
    described = describe_table(table, "prod", ("ops",), "snapshots", props)
    assert (described.catalog_uri, described.warehouse) == (
        "postgresql+psycopg2://db.internal:5432/iceberg",
        "s3://lake/wh",
    )
    text = contract_yaml(described, contract_document(described))
    assert "s3cret" not in text and "t0ken" not in text


# -- errors: one line naming the catalog and the table, exit 1, no traceback ----------------------------


def assert_one_line_error(result: Result, starts: str, *contains: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # click's own exit, not an exception escaping
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(starts), line
    for text in contains:
        assert text in line, line
    assert "Traceback" not in result.output


def test_unknown_catalog(catalog: SqlCatalog, tmp_path: Path) -> None:
    out = tmp_path / "c.yaml"
    result = import_table("--catalog", "nowhere", "--table", "shop.orders", "--output", str(out))
    assert_one_line_error(
        result, "Error: cannot import shop.orders from catalog 'nowhere': ", "'nowhere' is not configured"
    )
    assert not out.exists()


@pytest.mark.parametrize("identifier", ["shop.missing", "nonamespace.orders"])
def test_missing_table_or_namespace(catalog: SqlCatalog, identifier: str) -> None:
    catalog.create_namespace_if_not_exists("shop")
    result = import_table("--catalog", CATALOG, "--table", identifier)
    assert_one_line_error(
        result,
        f"Error: cannot import {identifier} from catalog '{CATALOG}': ",
        f"table {identifier} does not exist in catalog '{CATALOG}'",
    )


def test_unreachable_catalog_names_it_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _isolate(tmp_path, monkeypatch)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: connections are refused
    monkeypatch.setenv("PYICEBERG_CATALOG__DOWN__TYPE", "rest")
    monkeypatch.setenv("PYICEBERG_CATALOG__DOWN__URI", f"http://floe:s3cret@127.0.0.1:{port}")
    result = import_table("--catalog", "down", "--table", "shop.orders")
    assert_one_line_error(
        result, "Error: cannot import shop.orders from catalog 'down': ", f"127.0.0.1:{port}", "'down'"
    )
    assert "s3cret" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "orders"], "Invalid value for '--table': 'orders' is not NAMESPACE.TABLE"),
        (["--table", "shop.orders", "--version", "1.0"], "Invalid value for '--version': '1.0' is not a semantic"),
    ],
)
def test_bad_options_are_usage_errors(catalog: SqlCatalog, args: list[str], message: str) -> None:
    result = import_table("--catalog", CATALOG, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
