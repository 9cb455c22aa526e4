"""Real Iceberg tables for tests: a pyiceberg SqlCatalog on SQLite with a local file warehouse."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table

CATALOG = "floetest"


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
