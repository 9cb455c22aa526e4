"""SLA compliance in Dagster: the daily-partitioned `contract_sla_daily` asset, its schedule, and retention.

`contract_sla_daily` (one partition per UTC day from the first monitored day, or `sla.partitions_start`, to
yesterday: see `sla.settings`) aggregates a day's check results and violations into
`contract_daily_aggregates`, replacing what the day held, so a re-run never double-counts. A contract owes its
cadence's checks from its first monitored day on (`sla.monitored`; a contract that never ran, from the store's
first monitored day): a day before that has no row for it, and a day with nothing expected or run reads
"no data" (null compliance and coverage), not 0 %.

Its backfill policy is single-run: `dagster asset materialize --partition-range a...b` aggregates the whole
range in one run, day by day, each day in its own transaction and with its own materialization metadata. A
day that began before the retention cutoff is skipped (its raw rows are gone; re-aggregating it would
overwrite good aggregates). `contract_sla_daily_schedule` materializes the day that just ended at 00:15 UTC;
`floe_retention_cleanup_schedule` deletes raw rows past `retention_days` at 00:45 UTC. The expected checks
come from the contracts loaded with the code location (a closure), like the schedules.

The asset is a one-spec `@dg.multi_asset`: `backfill_policy` is a beta parameter of `@dg.asset` (a BetaWarning
on every load) and a stable one of `@dg.multi_asset`; the asset is the same to Dagster either way.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource annotations at decoration time.
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from floe_monitoring_defs.checks.plan import Plan
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.defs.resources import MonitoringStoreResource
from floe_monitoring_defs.models import Expectation, Key, utcnow
from floe_monitoring_defs.sla.compliance import total_of
from floe_monitoring_defs.sla.monitored import first_days_by_contract, first_monitored_day, read_first_monitored_day
from floe_monitoring_defs.sla.settings import PartitionsStart, SLASettings, partitions_start
from floe_monitoring_defs.store.aggregates import DailyAggregate, day_start, days_in

ASSET_NAME = "contract_sla_daily"
SLA_JOB = "contract_sla_daily_job"
SLA_SCHEDULE = "contract_sla_daily_schedule"
CLEANUP_JOB = "floe_retention_cleanup_job"
CLEANUP_SCHEDULE = "floe_retention_cleanup_schedule"
MAX_TABLE_ROWS = 200  # rows of the day's table in the metadata (lowest compliance first)

_DAY_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("contract", "string"),
        dg.TableColumn("check_type", "string"),
        dg.TableColumn("total", "int"),
        dg.TableColumn("passed", "int"),
        dg.TableColumn("failed", "int"),
        dg.TableColumn("error", "int"),
        dg.TableColumn("skipped", "int"),
        dg.TableColumn("compliance_pct", "float"),
        dg.TableColumn("expected", "int"),
        dg.TableColumn("coverage_pct", "float"),
        dg.TableColumn("violations", "int"),
        dg.TableColumn("uptime_pct", "float"),
        dg.TableColumn("avg_quality_score", "float"),
        dg.TableColumn("avg_duration_seconds", "float"),
    ]
)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _pct(value: float | None) -> dg.MetadataValue[Any]:
    """A percentage as metadata: a float, or null for "no data" (never 0 %)."""
    return dg.MetadataValue.null() if value is None else dg.MetadataValue.float(round(value, 4))


NO_DATA = "no data: no check was expected or run on this day"


def day_metadata(day: date, rows: Sequence[DailyAggregate], not_monitored_yet: int = 0) -> dict[str, Any]:
    """Metadata of one day's materialization: row count, the day's figures, and a table of its rows.

    Compliance with nothing evaluated and coverage with nothing expected are null ("no data"), not 0 %.
    `not_monitored_yet`: loaded contracts left out because their monitoring began after the day."""
    totals = total_of([r.totals for r in rows])
    shown = sorted(rows, key=lambda r: (r.totals.compliance_pct if r.totals.evaluated else 101.0, r.key))
    records = [
        dg.TableRecord(
            {
                "contract": r.contract_name,
                "check_type": r.check_type,
                "total": r.totals.total,
                "passed": r.totals.passed,
                "failed": r.totals.failed,
                "error": r.totals.error,
                "skipped": r.totals.skipped,
                "compliance_pct": _round(r.totals.compliance_pct) if r.totals.evaluated else None,
                "expected": r.expected_checks,
                "coverage_pct": _round(r.coverage_pct),
                "violations": r.totals.violation_count,
                "uptime_pct": _round(r.totals.uptime_pct),
                "avg_quality_score": _round(r.totals.quality_avg),
                "avg_duration_seconds": _round(r.totals.avg_duration_seconds),
            }
        )
        for r in shown[:MAX_TABLE_ROWS]
    ]
    md: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "day": dg.MetadataValue.table(records, schema=_DAY_SCHEMA),
        "floe/date": day.isoformat(),
        "floe/rows_shown": f"{len(records)} of {len(rows)}, lowest compliance first",
        "floe/checks": totals.total,
        "floe/compliance_pct": _pct(totals.compliance_pct if totals.evaluated else None),
        "floe/coverage_pct": _pct(totals.coverage_pct),
        "floe/violations": totals.violation_count,
    }
    if not rows:
        md["floe/no_data"] = NO_DATA
    if not_monitored_yet:
        md["floe/contracts_not_monitored_yet"] = not_monitored_yet
    return md


def expected_on(
    day: date,
    expectations: Mapping[Key, Expectation],
    first_days: Mapping[str, date],
    store_first_day: date | None,
) -> tuple[dict[Key, Expectation], int]:
    """What the cadences owe on `day`: each contract from its first monitored day on, a contract without any
    result from the store's first monitored day on, nothing before the store's first result. Returns the
    expectations of the day and how many loaded contracts are left out (their monitoring had not begun)."""
    out: dict[Key, Expectation] = {}
    left_out: set[str] = set()
    for key, exp in expectations.items():
        began = first_days.get(key[0], store_first_day)
        if began is not None and began <= day:
            out[key] = exp
        else:
            left_out.add(key[0])
    return out, len(left_out)


DESCRIPTION = (
    "Per (contract, check type, UTC day) SLA aggregates: checks by status, duration, quality min/max/avg, uptime, "
    "violations by severity, coverage against the cadence, MTTD evidence. Re-running a day replaces it. A day "
    "before a contract's first monitored day has no row for it; a day with nothing expected or run reads "
    '"no data" (null), not 0 %.'
)


def build_sla_asset(
    expectations: Mapping[Key, Expectation],
    start: PartitionsStart | SLASettings,
    retention_days: int = 90,
    clock: Callable[[], datetime] = utcnow,
) -> dg.AssetsDefinition:
    """The asset, its partitions from `start` (an `SLASettings` names its `start_date`, which must be set).

    Days that began before the retention cutoff are not aggregated again: their raw rows are (partly) deleted,
    so a re-run would replace good aggregates with what is left. They are skipped, kept as they are, and say so
    in their metadata."""
    if isinstance(start, SLASettings):
        if start.start_date is None:
            raise ValueError("build_sla_asset: SLASettings.start_date is not set; pass a PartitionsStart")
        start = PartitionsStart(start.start_date, "FLOE_SLA_START_DATE")
    partitions = dg.DailyPartitionsDefinition(start_date=start.day.isoformat(), timezone="UTC", end_offset=0)
    spec = dg.AssetSpec(
        ASSET_NAME,
        group_name="floe",
        kinds={"sql"},
        description=f"{DESCRIPTION} Partitions from {start.day.isoformat()} ({start.origin}).",
    )

    # `@dg.multi_asset` with one spec rather than `@dg.asset`: there `backfill_policy` is a stable parameter, in
    # `@dg.asset` a beta one (a BetaWarning printed by every `floe` / `dagster` command that loads the location).
    @dg.multi_asset(
        name=ASSET_NAME,
        specs=[spec],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def contract_sla_daily(
        context: dg.AssetExecutionContext, floe_store: MonitoringStoreResource
    ) -> dg.MaterializeResult[None]:
        window = context.partition_time_window
        days = list(days_in(window.start.astimezone(UTC).date(), window.end.astimezone(UTC).date()))
        store = floe_store.store()
        aggregates = store.aggregates
        cutoff = clock() - timedelta(days=retention_days)
        # When each contract's monitoring began: read once for the whole range (indexed MIN()s, see sla.monitored).
        store_first_day = first_monitored_day(store.db)
        first_days = first_days_by_contract(store.db, {name for name, _ in expectations})
        metadata: dict[date, dict[str, Any]] = {}
        for day in days:
            if day_start(day) < cutoff:
                reason = (
                    f"raw rows before {cutoff.isoformat()} are past the {retention_days}-day retention "
                    "window; the day's stored aggregates (if any) are kept as they are"
                )
                context.log.warning(f"{day.isoformat()} not aggregated: {reason}")
                metadata[day] = {"floe/date": day.isoformat(), "floe/skipped": reason}
                continue
            owed, not_yet = expected_on(day, expectations, first_days, store_first_day)
            rows = aggregates.aggregate_day(day, owed, now=clock())
            context.log.info(
                f"{day.isoformat()}: {len(rows)} (contract, check type) rows aggregated"
                + (f"; {not_yet} contract(s) not monitored yet on that day" if not_yet else "")
                + ("" if rows else f" ({NO_DATA})")
            )
            metadata[day] = day_metadata(day, rows, not_yet)
        if len(days) == 1:
            return dg.MaterializeResult(metadata=metadata[days[0]])
        for day, md in metadata.items():  # a range run: each partition gets its own day's metadata
            context.add_asset_metadata(md, partition_key=day.isoformat())
        return dg.MaterializeResult()

    return contract_sla_daily


def build_cleanup_job(retention_days: int, clock: Callable[[], datetime] = utcnow) -> dg.JobDefinition:
    @dg.op(
        name="floe_retention_cleanup",
        description=f"Deletes check results, violations, pings and settled alerts older than {retention_days} "
        "days; daily aggregates are kept",
    )
    def cleanup(context: dg.OpExecutionContext, floe_store: MonitoringStoreResource) -> dg.Output[None]:
        result = floe_store.store().retention.cleanup(clock(), retention_days)
        context.log.info(
            f"deleted {result.results_deleted} check results and {result.violations_deleted} "
            f"violations older than {result.cutoff.isoformat()}"
        )
        return dg.Output(
            None,
            metadata={
                "floe/cutoff": result.cutoff.isoformat(),
                "floe/results_deleted": result.results_deleted,
                "floe/violations_deleted": result.violations_deleted,
                "floe/pings_deleted": result.pings_deleted,
                "floe/alerts_deleted": result.alerts_deleted,
                "floe/retention_days": retention_days,
            },
        )

    @dg.job(
        name=CLEANUP_JOB,
        tags={"floe/check_type": "retention"},
        description=f"Retention: raw monitoring rows older than {retention_days} days are deleted in batches",
    )
    def cleanup_job() -> None:
        cleanup()

    return cleanup_job


def build_sla_definitions(
    plan: Plan,
    config: MonitoringConfig,
    *,
    running: bool,
    settings: SLASettings | None = None,
    clock: Callable[[], datetime] = utcnow,
    first_day: Callable[[], date | None] = read_first_monitored_day,
) -> dg.Definitions:
    """The asset, its job and schedule, and the retention job and schedule. `running`: schedules on by default.

    The expected checks of each (contract, check type) come from the same plan as the checks' schedules. The
    partitions start at `sla.partitions_start`, else `FLOE_SLA_START_DATE`, else `first_day()` (the store's
    first monitored day, read here at load), else the oldest day in the retention window (`sla.settings`).
    """
    settings = settings or SLASettings.from_env()
    start = partitions_start(
        config.sla.partitions_start, settings, first_day, now=clock(), retention_days=config.retention_days
    )
    asset = build_sla_asset(plan.expectations(settings.default_target_pct), start, config.retention_days, clock)
    job = dg.define_asset_job(
        SLA_JOB,
        selection=[asset],
        tags={"floe/check_type": "sla"},
        description="Aggregates one UTC day of monitoring results",
    )
    status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    sla_schedule = dg.build_schedule_from_partitioned_job(
        job,
        name=SLA_SCHEDULE,
        hour_of_day=0,
        minute_of_hour=15,
        default_status=status,
        description="Aggregates the UTC day that just ended, at 00:15 UTC",
    )
    cleanup_job = build_cleanup_job(config.retention_days, clock)
    cleanup_schedule = dg.ScheduleDefinition(
        name=CLEANUP_SCHEDULE,
        job=cleanup_job,
        cron_schedule="45 0 * * *",
        execution_timezone="UTC",
        default_status=status,
        description=f"Deletes raw rows older than {config.retention_days} days, 00:45 UTC",
    )
    return dg.Definitions(assets=[asset], jobs=[job, cleanup_job], schedules=[sla_schedule, cleanup_schedule])
