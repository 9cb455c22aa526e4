"""Schedules of the checks jobs (one per check type and cadence, never overlapping), and the contract-registry
sensor."""

import hashlib
import json
from pathlib import Path

import dagster as dg

from floe_monitoring_defs.cadence import crons_for_interval
from floe_monitoring_defs.contracts.loader import iter_contract_files

# A run of the same job in any of these states means the previous tick is still going (FR-006).
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def no_overlap_schedule(
    name: str, job_name: str, minutes: int, *, running: bool, tags: dict[str, str], cron: str | None = None
) -> dg.ScheduleDefinition:
    """A schedule of `job_name` every `minutes` (or on `cron`, an SLA's own schedule) that skips a tick while
    the previous run of the job is still going (FR-006)."""
    crons = [cron] if cron is not None else crons_for_interval(minutes)
    every = f"on cron {cron!r}" if cron is not None else f"every {minutes} minutes"

    @dg.schedule(
        name=name,
        job_name=job_name,
        cron_schedule=crons if len(crons) > 1 else crons[0],
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description=f"Runs {job_name} {every}; skips a tick while the previous run is going",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        busy = context.instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=1)
        if busy:
            run = busy[0]
            message = (
                f"previous run {run.run_id} of {job_name} is still {run.status.value}; "
                f"skipping this tick so checks of the same contract and type never overlap"
            )
            context.log.warning(message)
            return dg.SkipReason(message)
        return dg.RunRequest(tags=tags)

    return _schedule


def contracts_fingerprint(contracts_dir: Path) -> dict[str, str]:
    """file -> sha256 of its bytes, for every contract file under the directory."""
    if not contracts_dir.is_dir():
        return {}
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in iter_contract_files([contracts_dir])}


def registry_sensor(contracts_dir: Path, loaded: dict[str, str]) -> dg.SensorDefinition:
    """Notices contracts added, changed or removed since the code location loaded (edge cases 1, 2)."""

    @dg.sensor(
        name="contract_registry_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {contracts_dir} for contracts added, changed or removed",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        now = contracts_fingerprint(contracts_dir)
        added = sorted(set(now) - set(loaded))
        removed = sorted(set(loaded) - set(now))
        changed = sorted(f for f in set(now) & set(loaded) if now[f] != loaded[f])
        state = json.dumps({"added": added, "removed": removed, "changed": changed}, sort_keys=True)
        if not (added or removed or changed):
            if not loaded:
                context.log.info(f"no contracts registered under {contracts_dir}; idle, watching for new ones")
            return dg.SkipReason(f"{len(now)} contract files, unchanged since load")
        if context.cursor != state:
            context.log.warning(
                f"contracts changed since load (added {added}, removed {removed}, changed {changed}); "
                "removed contracts are skipped from now on; reload the code location to pick up the rest"
            )
            context.update_cursor(state)
        return dg.SkipReason(f"contracts changed since load: {state}; reload the code location")

    return _sensor
