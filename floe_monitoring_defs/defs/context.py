"""The Dagster side of a violation's root-cause context (FR-047): the pipeline runs that wrote the table's asset,
and the floe status of the tables upstream of it.

`DagsterRunsProvider` is a `ContextProvider` (checks/context.py): the core runs its `parts` in a thread of its own
within `context.budget_ms` and leaves it out with a note when it is slow or fails, so nothing here can hold a
check back. Both parts read metadata and the event log only:

- `runs`: the latest `context.max_runs` runs of this Dagster instance, from any code location, that materialized
  or observed the table's asset key (`DagsterInstance.fetch_materializations` / `fetch_observations`, then
  `get_run_records` for status, job and times). floe's own observations (a freshness check reports the table's
  state as an observation, metadata `floe/table`) and runs floe launched (tag `floe/check_type`) are left out:
  they say what floe saw, not what wrote the table. Runless reports (no run id) are left out too.
- `upstream`: the tables the contract declares upstream (`customProperties` `floe.upstream`), each with the
  latest result of every floe check type on it, from the floe store (`ResultsRepository.latest_by_check_type`;
  its results carry the table). Dagster's own check records are not readable through a public API in a step,
  and a step has no workspace to read another location's asset graph from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from floe_monitoring_defs.checks.context import iso
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import CheckStatus
from floe_monitoring_defs.store import MonitoringStore

FLOE_RUN_TAG = "floe/check_type"  # set on every run floe's schedules launch, and on its check steps
FLOE_OBSERVATION_KEY = "floe/table"  # in the metadata of the observations floe's checks report
OBSERVATION_PAGES = 4  # pages of observations read past floe's own (each `limit` records), at most
UPSTREAM_WINDOW = timedelta(days=7)  # an upstream check older than this is not "its latest status" any more
UPSTREAM_ROWS = 200  # results read per upstream table (newest first), enough for every check type's latest


def _is_floe_observation(record: dg.EventLogRecord) -> bool:
    observation = record.asset_observation
    return observation is not None and FLOE_OBSERVATION_KEY in (observation.metadata or {})


def _location(run: dg.DagsterRun) -> str | None:
    """The code location that ran it, when the run was launched from a workspace (not `execute_in_process`)."""
    origin = run.remote_job_origin
    return origin.location_name if origin is not None else None


class DagsterRunsProvider:
    """`runs` and `upstream` of a violation's context, from the step's Dagster instance and the floe store."""

    name = "dagster"

    def __init__(
        self,
        instance: dg.DagsterInstance,
        store: MonitoringStore | None,
        max_runs: int,
        *,
        asset_key: Callable[[MonitoredTable], dg.AssetKey],
        contracts_of: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.instance = instance
        self.store = store
        self.max_runs = max_runs
        self.asset_key = asset_key
        # table identifier -> the contracts of this location that check it: lets the upstream read use the
        # (contract, type, time) index; a table no contract here checks is read by table name alone.
        self.contracts_of = contracts_of or {}
        self.clock = clock

    def parts(self, contract: MonitoredContract, table: MonitoredTable, check_type: str) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        if self.max_runs > 0:
            out["runs"] = self.runs(self.asset_key(table))
            if table.upstream:
                out["upstream"] = self.upstream(table.upstream[: self.max_runs])
        return out

    # -- runs ------------------------------------------------------------------------------------------

    def _events(self, key: dg.AssetKey) -> list[tuple[dg.EventLogRecord, str]]:
        """The newest materializations and (others') observations of `key`, newest first, runless ones left out."""
        n = self.max_runs
        found = [(r, "materialization") for r in self.instance.fetch_materializations(key, limit=n).records]
        cursor: str | None = None
        observed: list[dg.EventLogRecord] = []
        for _ in range(OBSERVATION_PAGES):  # floe observes its tables on every freshness run: read past those
            page = self.instance.fetch_observations(key, limit=n * 5, cursor=cursor)
            observed += [r for r in page.records if not _is_floe_observation(r)]
            if len(observed) >= n or not page.has_more:
                break
            cursor = page.cursor
        found += [(r, "observation") for r in observed]
        found = [(r, e) for r, e in found if r.run_id]
        return sorted(found, key=lambda item: item[0].storage_id, reverse=True)

    def runs(self, key: dg.AssetKey) -> list[dict[str, Any]]:
        """The latest runs that wrote or observed `key` (one entry a run: its newest event), newest first."""
        newest: dict[str, tuple[dg.EventLogRecord, str]] = {}
        for record, event in self._events(key):
            newest.setdefault(record.run_id, (record, event))
        if not newest:
            return []
        records = {r.dagster_run.run_id: r for r in self.instance.get_run_records(dg.RunsFilter(run_ids=list(newest)))}
        out: list[dict[str, Any]] = []
        for run_id, (record, event) in newest.items():
            rec = records.get(run_id)
            if rec is None:  # deleted since: its event stands, the run's details are gone
                continue
            run = rec.dagster_run
            if FLOE_RUN_TAG in run.tags:
                continue
            entry: dict[str, Any] = {
                "run_id": run_id,
                "job_name": run.job_name,
                "status": run.status.value,
                "event": event,
                "time": iso(datetime.fromtimestamp(record.timestamp, UTC)),
                "code_location": _location(run),
            }
            if rec.start_time is not None:
                entry["started_at"] = iso(datetime.fromtimestamp(rec.start_time, UTC))
            if rec.end_time is not None:
                entry["ended_at"] = iso(datetime.fromtimestamp(rec.end_time, UTC))
            out.append(entry)
            if len(out) >= self.max_runs:
                break
        return out

    # -- upstream --------------------------------------------------------------------------------------

    def upstream(self, tables: Sequence[str]) -> list[dict[str, Any]]:
        """Each upstream table with the latest stored result of each floe check type on it (failing first);
        `status: unknown` for a table floe has no recent result of."""
        if self.store is None:
            raise RuntimeError("no floe store to read upstream status from")
        since = self.clock() - UPSTREAM_WINDOW
        out: list[dict[str, Any]] = []
        passing = CheckStatus.PASS.value
        for table in tables:
            latest = self.store.results.latest_by_check_type(
                table, contract_names=self.contracts_of.get(table, ()), since=since, scan=UPSTREAM_ROWS
            )
            if not latest:
                out.append({"asset": table, "check": None, "status": "unknown", "severity": None, "time": None})
                continue
            items = [
                {
                    "asset": table,
                    "check": r["check_type"],
                    "status": r["status"],
                    "severity": r["severity"],
                    "time": iso(r["checked_at"]),
                }
                for r in latest
            ]
            out += sorted(items, key=lambda u: (u["status"] == passing, u["check"]))  # failing first
        return out
