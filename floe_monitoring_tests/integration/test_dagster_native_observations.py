"""Issue 14, acceptance 1: a freshness run reports each monitored table to Dagster as an observed external asset.

The freshness job runs through Dagster (`execute_in_process` on a real instance) against a real Iceberg warehouse
(pyiceberg SqlCatalog); read back from the instance, every table has one `AssetObservation` per run whose
`dagster/last_updated_timestamp` is the last update as Iceberg says it (max of the contract's timestamp column from
the manifests, else the newest data-changing snapshot's commit time), with the current snapshot id and the row count
of its summary. The check results carry their times as timestamp metadata and their durations in words beside
the seconds.

The helpers here (`contract_doc`, `SCHEMA`, `rows`, `warehouse`) are shared by the other `test_dagster_native_*`
modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
import yaml
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_tests.dagster_metadata import number, text
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

FRESHNESS_JOB = "freshness_every_15m_checks"

SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "qty", LongType(), required=True),
    NestedField(3, "email", StringType(), required=False),
    NestedField(4, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)

PROPERTIES: list[dict[str, Any]] = [
    {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
    {"name": "qty", "logicalType": "integer", "physicalType": "BIGINT", "required": True},
    {"name": "email", "logicalType": "string", "classification": "pii"},
    {"name": "updated_at", "logicalType": "timestamp", "required": True},
]


def contract_doc(
    name: str,
    table: str,
    sla: Sequence[Mapping[str, Any]] = (),
    *,
    properties: Sequence[Mapping[str, Any]] = PROPERTIES,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A strict ODCS v3.1.0 contract for `shop.<table>` with the given SLA properties."""
    custom: list[dict[str, Any]] = [{"property": "consumers", "value": ["bi"]}]
    if overrides is not None:
        custom.append({"property": "floe.monitoring", "value": dict(overrides)})
    doc: dict[str, Any] = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "domain": "shop",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "schema": [{"name": table, "properties": [dict(p) for p in properties]}],
        "customProperties": custom,
    }
    if sla:
        doc["slaProperties"] = [dict(s) for s in sla]
    return doc


def rows(updated: Sequence[datetime], prefix: str = "r") -> dict[str, list[Any]]:
    return {
        "id": [f"{prefix}{i}" for i in range(len(updated))],
        "qty": [i + 1 for i in range(len(updated))],
        "email": [f"{prefix}{i}@example.com" for i in range(len(updated))],
        "updated_at": list(updated),
    }


@dataclass
class Warehouse:
    root: Path
    catalog: SqlCatalog
    contracts: Path

    def add(self, name: str, table: str, sla: Sequence[Mapping[str, Any]], data: Mapping[str, Sequence[Any]]) -> Table:
        """A real Iceberg table `shop.<table>` with `data`, and its contract file."""
        created = create(self.catalog, f"shop.{table}", SCHEMA, data)
        (self.contracts / f"{name}.yaml").write_text(yaml.safe_dump(contract_doc(name, table, sla)))
        return created


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """A pyiceberg SqlCatalog warehouse, a contracts directory and the environment a deployment sets (the store on
    SQLite in tmp, DAGSTER_HOME in tmp)."""
    for key, value in catalog_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    yield Warehouse(tmp_path, make_catalog(tmp_path), contracts)


def snapshot_commit_time(table: Table) -> datetime:
    """The current snapshot's commit time, read from the table's metadata independently of floe."""
    snap = table.current_snapshot()
    assert snap is not None
    return datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=UTC)


def current_state(table: Table) -> tuple[str, int]:
    """(current snapshot id, total-records of its summary), read with pyiceberg."""
    table = table.refresh()
    snap = table.current_snapshot()
    assert snap is not None and snap.summary is not None
    return str(snap.snapshot_id), int(snap.summary["total-records"] or -1)


def observations(instance: dg.DagsterInstance, path: Sequence[str]) -> list[dg.AssetObservation]:
    """The asset's observations, newest first, as stored in the instance's event log."""
    records = instance.fetch_observations(dg.AssetKey(list(path)), limit=100).records
    out = [r.asset_observation for r in records]
    return [o for o in out if o is not None]


def timestamp(metadata: Mapping[str, dg.MetadataValue], key: str) -> float:
    entry = metadata[key]
    assert isinstance(entry, dg.TimestampMetadataValue), f"{key}: {entry!r} is not a timestamp"
    return entry.value


_WORDS = re.compile(r"^(?:(\d+)d)? ?(?:(\d+)h)? ?(?:(\d+)m)? ?(?:(\d+)s)?$")


def words_to_seconds(words: str) -> int:
    """`2d 3h 5m` -> seconds (the inverse of the human-readable durations in check metadata)."""
    match = _WORDS.match(words)
    assert match and words, f"{words!r} is not a duration in words"
    d, h, m, s = (int(g or 0) for g in match.groups())
    return ((d * 24 + h) * 60 + m) * 60 + s


def assert_same_duration(seconds: float, words: str) -> None:
    """`words` says `seconds` to the second (below a day) or to the minute (from a day, seconds left out)."""
    said = words_to_seconds(words)
    if seconds < 86400:
        assert abs(said - seconds) <= 0.5, (seconds, words)
    else:
        assert -0.5 <= seconds - said < 60, (seconds, words)


def test_each_freshness_run_observes_every_table_with_its_iceberg_last_update(warehouse: Warehouse) -> None:
    now = datetime.now(UTC)
    column_times = [now - timedelta(hours=2, minutes=7, microseconds=250), now - timedelta(days=3)]
    # Timestamp column named by the SLA: the last update is max(updated_at), from the manifests' upper bounds.
    orders = warehouse.add(
        "orders",
        "orders",
        [{"property": "latency", "value": 6, "unit": "h", "element": "updated_at"}],
        rows(column_times),
    )
    # No element: the last update is the newest data-changing snapshot's commit time (two appends: the second).
    events = warehouse.add(
        "events", "events", [{"property": "freshness", "value": "P1D"}], rows([now - timedelta(days=9)] * 3)
    )
    events.append(pa.table(rows([now - timedelta(days=8)], "e"), schema=events.schema().as_arrow()))
    events = events.refresh()
    # A contract without a freshness SLA has no freshness check, so nothing observes its table here.
    warehouse.add("plain", "plain", [], rows([now]))

    defs = build_defs()
    with dg.instance_for_test() as instance:
        job = defs.resolve_job_def(FRESHNESS_JOB)
        result = job.execute_in_process(instance=instance)
        assert result.success

        expected = {
            ("shop", "orders"): (max(column_times), "column_bounds", *current_state(orders)),
            ("shop", "events"): (snapshot_commit_time(events), "snapshot", *current_state(events)),
        }
        for path, (last_update, method, snapshot_id, row_count) in expected.items():
            [obs] = observations(instance, path)
            md = obs.metadata
            assert timestamp(md, "dagster/last_updated_timestamp") == pytest.approx(last_update.timestamp(), abs=1e-6)
            assert text(md, "floe/snapshot_id") == snapshot_id
            assert number(md, "dagster/row_count") == row_count
            assert text(md, "floe/last_update_method") == method
            assert obs.description is not None and f"snapshot {snapshot_id}" in obs.description
        assert row_count == 4  # the events table: 3 + 1 rows, from the snapshot summary
        assert observations(instance, ("shop", "plain")) == []

        # The check results carry the same time as a timestamp, and each duration in words beside the seconds.
        evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
        md = evals["orders"].metadata
        assert timestamp(md, "last_update") == pytest.approx(max(column_times).timestamp(), abs=1e-6)
        assert text(md, "threshold") == "6h" and number(md, "threshold_seconds") == 6 * 3600
        assert_same_duration(number(md, "age_seconds"), text(md, "age"))
        assert number(md, "age_seconds") >= (2 * 60 + 7) * 60  # the column's newest value, not the commit time
        md = evals["events"].metadata
        assert text(md, "threshold") == "1d"
        assert_same_duration(number(md, "age_seconds"), text(md, "age"))
        assert text(md, "snapshot_id") == expected[("shop", "events")][2]

        # The next run observes again, with the table's new state.
        newest = now + timedelta(minutes=1)  # a writer whose clock runs a little ahead: within the tolerance
        orders.append(pa.table(rows([newest], "n"), schema=orders.schema().as_arrow()))
        assert job.execute_in_process(instance=instance).success
        latest, first = observations(instance, ("shop", "orders"))
        assert timestamp(latest.metadata, "dagster/last_updated_timestamp") == pytest.approx(
            newest.timestamp(), abs=1e-6
        )
        assert (text(latest.metadata, "floe/snapshot_id"), number(latest.metadata, "dagster/row_count")) == (
            current_state(orders)[0],
            3,
        )
        assert text(latest.metadata, "floe/snapshot_id") != text(first.metadata, "floe/snapshot_id")
        assert len(observations(instance, ("shop", "events"))) == 2  # one per run, changed or not


def test_a_classified_timestamp_column_is_observed_by_its_commit_time(warehouse: Warehouse, tmp_path: Path) -> None:
    """The value of a column classified pii never leaves the monitor: the observation reports when the newest data
    change committed instead, and says so."""
    now = datetime.now(UTC)
    secret_time = now - timedelta(hours=1, minutes=13, seconds=17, microseconds=123457)
    props = [dict(p) for p in PROPERTIES]
    props[3]["classification"] = "pii"
    table = create(warehouse.catalog, "shop.people", SCHEMA, rows([secret_time]))
    doc = contract_doc(
        "people", "people", [{"property": "latency", "value": "PT6H", "element": "updated_at"}], properties=props
    )
    (warehouse.contracts / "people.yaml").write_text(yaml.safe_dump(doc))

    with dg.instance_for_test() as instance:
        result = build_defs().resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
        assert result.success
        [obs] = observations(instance, ("shop", "people"))
    md = obs.metadata
    assert timestamp(md, "dagster/last_updated_timestamp") == pytest.approx(
        snapshot_commit_time(table).timestamp(), abs=1e-3
    )
    assert text(md, "floe/last_update_method") == "snapshot"
    [evaluation] = result.get_asset_check_evaluations()
    shown = repr(dict(md)) + repr(dict(evaluation.metadata)) + (obs.description or "") + (evaluation.description or "")
    assert str(secret_time.timestamp()) not in shown and secret_time.isoformat() not in shown
    assert "last_update" not in evaluation.metadata


def test_tables_are_observable_and_observing_reads_metadata_only(warehouse: Warehouse) -> None:
    """The tables are observable source assets (the catalog says "Observed <time>", never "Never materialized");
    Dagster's own "Observe" (the `floe_observe_tables` op) records the commit time, snapshot and row count, and a
    table whose catalog is unreachable is not observed: the others are, and the run fails naming it."""
    now = datetime.now(UTC)
    t1 = warehouse.add("alpha", "alpha", [], rows([now - timedelta(hours=1)]))
    warehouse.add("beta", "beta", [], rows([now - timedelta(hours=2)], prefix="b"))
    doc = contract_doc("gamma", "gamma", [])
    doc["servers"][0]["catalog"] = "nowhere"  # no such pyiceberg catalog configured
    (warehouse.contracts / "gamma.yaml").write_text(yaml.safe_dump(doc))

    defs = build_defs()
    graph = defs.resolve_asset_graph()
    tables = [dg.AssetKey(["shop", n]) for n in ("alpha", "beta", "gamma")]
    assert all(graph.get(k).is_observable for k in tables)

    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, asset_selection=tables, raise_on_error=False)
    assert not result.success
    failure = result.get_run_failure_event()
    failed_steps = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure is not None and len(failed_steps) == 1
    message = str(failed_steps[0].event_specific_data.error.message)  # type: ignore[union-attr]
    assert "shop/gamma" in message and "nowhere" in message and "shop/alpha" not in message

    [alpha] = observations(instance, ["shop", "alpha"])
    assert timestamp(alpha.metadata, "dagster/last_updated_timestamp") == snapshot_commit_time(t1).timestamp()
    assert (text(alpha.metadata, "floe/snapshot_id"), number(alpha.metadata, "dagster/row_count")) == current_state(t1)
    assert len(observations(instance, ["shop", "beta"])) == 1
    assert observations(instance, ["shop", "gamma"]) == []
