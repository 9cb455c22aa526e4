"""The first monitored day on PostgreSQL: what each load of the code location and each SLA run pays for it.

`contract_sla_daily`'s partitions start on the first day the store has check results (`sla.monitored`), read
at every load of the code location (`first_monitored_day`: two MIN()s), and each materialization reads when
every loaded contract's monitoring began (`first_days_by_contract`: two indexed MIN()s per contract).

Setup (not timed), as in benchmarks/sla.py: a throwaway PostgreSQL cluster on 127.0.0.1, `--contracts`
contracts (default 1,000) x 4 check types at the default cadences for two whole days (412,000 raw results for
1,000 contracts) loaded with COPY, and 90 days of daily aggregates before them, then ANALYZE.

Measured (fastest of `--repeat` runs, default 5): `first_monitored_day` with a warm connection pool, the same
through `read_first_monitored_day` (what a load does: open the store, read, dispose), and
`first_days_by_contract` over every contract. Timings are printed, never asserted.

Run from the repository root:

    .venv/bin/python benchmarks/sla_first_day.py                          # 1,000 contracts (~1 min, 2 cores)
    .venv/bin/python benchmarks/sla_first_day.py --contracts 20 --repeat 1  # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sla import AGG_COLUMNS, DAY, RESULT_COLUMNS, aggregate_rows, best, copy_rows, names, raw_rows, throwaway_postgres

from floe_monitoring_defs.sla.monitored import (
    first_days_by_contract,
    first_monitored_day,
    read_first_monitored_day,
)
from floe_monitoring_defs.store import MonitoringStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contracts", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.contracts
    with throwaway_postgres() as url:
        store = MonitoringStore(url)
        store.db.upgrade()
        engine = sa.create_engine(url, poolclass=NullPool)
        violations: list[list[Any]] = []
        results = copy_rows(
            engine,
            "contract_check_results",
            RESULT_COLUMNS,
            raw_rows(n, [DAY - timedelta(days=1), DAY], violations),
        )
        first = DAY - timedelta(days=90)
        aggregates = copy_rows(engine, "contract_daily_aggregates", AGG_COLUMNS, aggregate_rows(n, first, 90))
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        engine.dispose()
        print(f"setup: {results:,} raw results, {aggregates:,} aggregate rows, {n:,} contracts")

        seconds, day = best(lambda: first_monitored_day(store.db), args.repeat)
        print(f"first_monitored_day (warm pool):            {seconds * 1000:8.2f} ms -> {day}")
        os.environ["FLOE_MONITORING_DB_URL"] = url
        seconds, day = best(read_first_monitored_day, args.repeat)
        print(f"read_first_monitored_day (open, read, close): {seconds * 1000:6.2f} ms -> {day}")
        every = names(n)
        seconds, days = best(lambda: first_days_by_contract(store.db, every), args.repeat)
        print(f"first_days_by_contract ({n:,} contracts):     {seconds * 1000:8.2f} ms -> {len(days):,} found")
        store.dispose()


if __name__ == "__main__":
    main()
