"""When monitoring began, as the store knows it: the first day with check results, overall and per contract.

`contract_sla_daily` reads both. Its partitions start on the first monitored day (unless
`sla.partitions_start` says otherwise), and a contract owes its cadence's checks only from its own first
monitored day on, so the days before monitoring began read "no data" instead of 0 % coverage. Raw results
are deleted after `retention_days` while the daily aggregates are kept, so the first day is the earlier of
the oldest raw result and the oldest aggregated day that counted a check.

Every read is an index seek: `idx_check_results_checked_at` / `idx_check_results_contract` for the raw rows,
`idx_daily_aggregates_date` / the aggregates' primary key (contract, check type, date) for the aggregates;
cheap enough for each load of the code location.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from floe_monitoring_defs.models import ensure_utc
from floe_monitoring_defs.store import MonitoringStore, existing_db_url, store_configured
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database


def _as_date(value: Any) -> date | None:
    """A DATE / timestamp column value as a date (SQLite hands back strings for MIN() of either)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return ensure_utc(value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _earlier(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else min(a, b)


def first_monitored_day(db: Database) -> date | None:
    """The first day any check result was recorded (None: the store has none)."""
    r, a = t.contract_check_results.c, t.contract_daily_aggregates.c
    raw = sa.select(sa.func.min(r.checked_at))
    aggregated = sa.select(sa.func.min(a.date)).where(a.total_checks > 0)
    with db.transaction("reading the first monitored day") as conn:
        return _earlier(_as_date(conn.execute(raw).scalar()), _as_date(conn.execute(aggregated).scalar()))


def first_days_by_contract(db: Database, contracts: Iterable[str]) -> dict[str, date]:
    """The first day each of `contracts` had a check result (contracts without any are left out).

    One statement per contract (its two indexed MIN()s as scalar subqueries), in one read transaction: a GROUP
    BY over every contract would read the whole index, these stop at the contract's first entries."""
    r, a = t.contract_check_results.c, t.contract_daily_aggregates.c
    name: sa.BindParameter[str] = sa.bindparam("name", type_=sa.String())
    raw = sa.select(sa.func.min(r.checked_at)).where(r.contract_name == name).scalar_subquery()
    aggregated = sa.select(sa.func.min(a.date)).where(a.contract_name == name, a.total_checks > 0).scalar_subquery()
    both = sa.select(raw, aggregated)
    out: dict[str, date] = {}
    with db.transaction("reading the first monitored day of each contract") as conn:
        for contract in sorted(set(contracts)):
            row = conn.execute(both, {"name": contract}).one()
            first = _earlier(_as_date(row[0]), _as_date(row[1]))
            if first is not None:
                out[contract] = first
    return out


def read_first_monitored_day(environ: Mapping[str, str] | None = None) -> date | None:
    """`first_monitored_day` of the configured store, creating and migrating nothing (None when no store
    exists yet). An unreachable or unreadable store raises `StoreError` (its URL masked)."""
    if not store_configured(environ):
        return None
    store = MonitoringStore(existing_db_url(environ), auto_migrate=False)
    try:
        return first_monitored_day(store.db)
    finally:
        store.dispose()
