"""Schema baselines (`contract_schema_baselines`): the Iceberg field id each contract column had when first
seen, which tells a rename from a drop + add."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa

from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database


class BaselineRepository:
    """Column -> field id mappings per contract table; a mapping, once recorded, is kept."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, contract_name: str, table_name: str) -> dict[str, int]:
        """Column name -> Iceberg field id first recorded for this contract table."""
        c = t.contract_schema_baselines.c
        query = sa.select(c.column_name, c.field_id).where(c.contract_name == contract_name, c.table_name == table_name)
        with self._db.transaction("reading the schema baseline") as conn:
            return {name: int(field_id) for name, field_id in conn.execute(query)}

    def save(self, contract_name: str, table_name: str, columns: Mapping[str, int], recorded_at: datetime) -> None:
        """Record the field ids of columns not yet in the baseline; existing mappings are kept."""
        if not columns:
            return
        rows = [
            {
                "contract_name": contract_name,
                "table_name": table_name,
                "column_name": name,
                "field_id": int(field_id),
                "recorded_at": recorded_at,
            }
            for name, field_id in columns.items()
        ]
        stmt = self._db.insert_missing(t.contract_schema_baselines, ("contract_name", "table_name", "column_name"))
        with self._db.transaction("saving the schema baseline", write=True) as conn:
            conn.execute(stmt, rows)
