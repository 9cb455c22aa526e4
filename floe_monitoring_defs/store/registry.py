"""Contracts registered in the store (`registered_contracts`, FR-004): `floe contracts register` writes them,
and the composition root reads them at load (`read_registrations`) to hand them to contract loading."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_jsonable_python

from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database, StoreError, default_db_url, store_configured

log = logging.getLogger(__name__)


class RegistryRepository:
    """Registrations: the contract document, its connection details and overrides, active or not."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def register(
        self,
        name: str,
        version: str,
        contract_data: Mapping[str, Any],
        connection_config: Mapping[str, Any],
        overrides: Mapping[str, Any] | None,
        registered_at: datetime,
    ) -> None:
        """Insert or update a registration and make it active (its last check times are kept)."""
        values = {
            "contract_name": name,
            "contract_version": version,
            "contract_data": to_jsonable_python(dict(contract_data)),
            "connection_config": to_jsonable_python(dict(connection_config)),
            "monitoring_overrides": None if overrides is None else to_jsonable_python(dict(overrides)),
            "registered_at": registered_at,
            "last_check_times": {},
            "active": True,
        }
        update = [k for k in values if k not in ("contract_name", "last_check_times")]
        stmt = self._db.upsert(t.registered_contracts, ("contract_name",), update)
        with self._db.transaction("registering a contract", write=True) as conn:
            conn.execute(stmt, values)

    def deregister(self, name: str) -> bool:
        """Mark a registration inactive; False when there is no such registration."""
        c = t.registered_contracts.c
        stmt = sa.update(t.registered_contracts).where(c.contract_name == name).values(active=False)
        with self._db.transaction("deregistering a contract", write=True) as conn:
            return conn.execute(stmt).rowcount > 0

    def registrations(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        """Registrations as dicts (column name -> value), ordered by contract name."""
        c = t.registered_contracts.c
        query = sa.select(t.registered_contracts).order_by(c.contract_name)
        if active_only:
            query = query.where(c.active.is_(True))
        with self._db.transaction("reading registered contracts") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]


def read_registrations(environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The active registrations of the store at `default_db_url()`, when one exists (none is created).

    An unreachable store is logged and reads as no registrations: the contract files still load.
    """
    if not store_configured(environ):
        return []
    try:
        db = Database(default_db_url(environ))
        try:
            return RegistryRepository(db).registrations()
        finally:
            db.dispose()
    except StoreError as exc:
        log.warning("registered contracts not restored (store unavailable): %s", exc)
        return []
