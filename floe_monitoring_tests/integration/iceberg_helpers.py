"""Real Iceberg tables for tests: a pyiceberg SqlCatalog on SQLite with a local file warehouse."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.contracts import MonitoredContract, parse_document

CATALOG = "floetest"

# An orders-like table (`shop.<name>`) and its strict v3.1.0 contract with a PT1H freshness SLA on `updated_at`:
# the shape the store-outage and record-page tests run real freshness checks on.
FRESHNESS_SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "amount", DecimalType(10, 2), required=True),
    NestedField(3, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)
FRESHNESS_PROPS: list[dict[str, Any]] = [
    {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(10,2)", "required": True},
    {"name": "updated_at", "logicalType": "timestamp", "required": True},
]


def freshness_contract(name: str) -> MonitoredContract:
    """The contract of table `shop.<name>` (FRESHNESS_SCHEMA) in this catalog, freshness PT1H on updated_at."""
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "schema": [{"name": name, "properties": FRESHNESS_PROPS}],
        "slaProperties": [{"property": "freshness", "value": "PT1H", "element": "updated_at"}],
    }
    return parse_document(doc, f"{name}.yaml")


def make_catalog(root: Path) -> SqlCatalog:
    (root / "wh").mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG, uri=f"sqlite:///{root / 'catalog.db'}", warehouse=f"file://{root / 'wh'}")


def catalog_env(root: Path) -> dict[str, str]:
    p = f"PYICEBERG_CATALOG__{CATALOG.upper()}__"
    return {f"{p}TYPE": "sql", f"{p}URI": f"sqlite:///{root / 'catalog.db'}", f"{p}WAREHOUSE": f"file://{root / 'wh'}"}


def create(cat: SqlCatalog, ident: str, schema: Schema, rows: Mapping[str, Sequence[Any]] | None = None) -> Table:
    cat.create_namespace_if_not_exists(ident.rsplit(".", 1)[0])
    table = cat.create_table(ident, schema=schema)
    if rows:
        table.append(pa.table(rows, schema=table.schema().as_arrow()))
    return table


def append_without_metrics(table: Table, rows: Mapping[str, Sequence[Any]]) -> None:
    """Add a data file whose manifest entry has no column bounds (as old writers or metrics=none do)."""
    with table.transaction() as tx:
        tx.set_properties({"write.metadata.metrics.default": "none"})
    table.append(pa.table(rows, schema=table.schema().as_arrow()))


def history_table(
    cat: SqlCatalog,
    ident: str,
    schema: Schema,
    seed_rows: Mapping[str, Sequence[Any]],
    commits: Sequence[Any],
    *,
    replace_every: int = 0,
) -> Table:
    """A real Iceberg table whose snapshot log is `commits` (`DataCommit`s, oldest first).

    One real append of `seed_rows` writes a data file, a manifest and a manifest list; the table metadata then
    gets one snapshot per commit (its id, commit time, operation and record counts in the summary, each the child
    of the one before) and is registered as a new metadata file. Every snapshot points at the real manifest list,
    so a scan still works; the summaries, not the files, carry the generated history (the `volume` check reads
    nothing else). `replace_every` > 0 inserts a compaction (`replace`) snapshot after every that many commits,
    as a maintenance job leaves them.
    """
    from pyiceberg.serializers import ToOutputFile
    from pyiceberg.table.refs import SnapshotRef, SnapshotRefType
    from pyiceberg.table.snapshots import Operation, Snapshot, SnapshotLogEntry, Summary

    cat.create_namespace_if_not_exists(ident.rsplit(".", 1)[0])
    seed = create(cat, f"{ident}__seed", schema, seed_rows)
    base = seed.metadata
    manifest_list = base.current_snapshot().manifest_list  # type: ignore[union-attr]
    snaps: list[Snapshot] = []
    parent: int | None = None
    seq = 0
    next_id = 10**12
    for i, c in enumerate(commits):
        props = {
            k: str(v)
            for k, v in (
                ("added-records", c.added_records),
                ("deleted-records", c.deleted_records),
                ("total-records", c.total_records),
            )
            if v is not None
        }
        seq += 1
        op = Operation(c.operation)
        snaps.append(
            Snapshot(
                snapshot_id=c.snapshot_id,
                parent_snapshot_id=parent,
                sequence_number=seq,
                timestamp_ms=int(c.committed_at.timestamp() * 1000),
                manifest_list=manifest_list,
                summary=Summary(op, **props),
                schema_id=base.current_schema_id,
            )
        )
        parent = c.snapshot_id
        if replace_every and (i + 1) % replace_every == 0 and i + 1 < len(commits):
            seq += 1
            next_id += 1
            total = {"total-records": str(c.total_records)} if c.total_records is not None else {}
            ts = int(c.committed_at.timestamp() * 1000) + 1000
            snaps.append(
                Snapshot(
                    snapshot_id=next_id,
                    parent_snapshot_id=parent,
                    sequence_number=seq,
                    timestamp_ms=ts,
                    manifest_list=manifest_list,
                    summary=Summary(Operation.REPLACE, **total),
                    schema_id=base.current_schema_id,
                )
            )
            parent = next_id
    last = snaps[-1]
    metadata = base.model_copy(
        update={
            "snapshots": snaps,
            "current_snapshot_id": last.snapshot_id,
            "snapshot_log": [SnapshotLogEntry(snapshot_id=s.snapshot_id, timestamp_ms=s.timestamp_ms) for s in snaps],
            "refs": {
                "main": SnapshotRef(  # type: ignore[call-arg]  # the optional retention fields default to None
                    snapshot_id=last.snapshot_id, snapshot_ref_type=SnapshotRefType.BRANCH
                )
            },
            "last_sequence_number": seq,
            "last_updated_ms": last.timestamp_ms,
            "metadata_log": [],
        }
    )
    location = f"{base.location}/metadata/history-{len(snaps)}.metadata.json"
    ToOutputFile.table_metadata(metadata, seed.io.new_output(location))
    return cat.register_table(ident, location)
