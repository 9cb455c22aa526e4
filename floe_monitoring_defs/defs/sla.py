"""SLA compliance in Dagster: the daily-partitioned `contract_sla_daily` asset, its schedule, and retention.

`contract_sla_daily` (one partition per UTC day, the last one being yesterday) aggregates a day's check
results and violations into `contract_daily_aggregates`, replacing what the day held, so a re-run never
double-counts. Its backfill policy is single-run: `dagster asset materialize --partition-range a...b`
aggregates the whole range in one run, day by day, each day in its own transaction and with its own
materialization metadata. A day that began before the retention cutoff is skipped (its raw rows are gone;
re-aggregating it would overwrite good aggregates). `contract_sla_daily_schedule` materializes the day that
just ended at 00:15 UTC; `floe_retention_cleanup_schedule` deletes raw rows past `retention_days` at 00:45 UTC.
The expected checks come from the contracts loaded with the code location (a closure), like the schedules.
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
from floe_monitoring_defs.sla.settings import SLASettings
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


def day_metadata(day: date, rows: Sequence[DailyAggregate]) -> dict[str, Any]:
    """Metadata of one day's materialization: row count, the day's figures, and a table of its rows."""
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
                "compliance_pct": _round(r.totals.compliance_pct),
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
    coverage = totals.coverage_pct
    return {
        "dagster/row_count": len(rows),
        "day": dg.MetadataValue.table(records, schema=_DAY_SCHEMA),
        "floe/date": day.isoformat(),
        "floe/rows_shown": f"{len(records)} of {len(rows)}, lowest compliance first",
        "floe/checks": totals.total,
        "floe/compliance_pct": round(totals.compliance_pct, 4),
        "floe/coverage_pct": dg.MetadataValue.float(round(coverage, 4))
        if coverage is not None
        else dg.MetadataValue.null(),
        "floe/violations": totals.violation_count,
    }


def build_sla_asset(
    expectations: Mapping[Key, Expectation],
    settings: SLASettings,
    retention_days: int = 90,
    clock: Callable[[], datetime] = utcnow,
) -> dg.AssetsDefinition:
    """The asset. Days that began before the retention cutoff are not aggregated again: their raw rows are
    (partly) deleted, so a re-run would replace good aggregates with what is left. They are skipped, kept
    as they are, and say so in their metadata."""
    partitions = dg.DailyPartitionsDefinition(start_date=settings.start_date.isoformat(), timezone="UTC", end_offset=0)

    @dg.asset(
        name=ASSET_NAME,
        group_name="floe",
        partitions_def=partitions,
        kinds={"sql"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        description="Per (contract, check type, UTC day) SLA aggregates: checks by status, duration, quality "
        "min/max/avg, uptime, violations by severity, coverage against the cadence, MTTD evidence. "
        "Re-running a day replaces it.",
    )
    def contract_sla_daily(
        context: dg.AssetExecutionContext, floe_store: MonitoringStoreResource
    ) -> dg.MaterializeResult[None]:
        window = context.partition_time_window
        days = list(days_in(window.start.astimezone(UTC).date(), window.end.astimezone(UTC).date()))
        aggregates = floe_store.store().aggregates
        cutoff = clock() - timedelta(days=retention_days)
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
            rows = aggregates.aggregate_day(day, expectations, now=clock())
            context.log.info(f"{day.isoformat()}: {len(rows)} (contract, check type) rows aggregated")
            metadata[day] = day_metadata(day, rows)
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
) -> dg.Definitions:
    """The asset, its job and schedule, and the retention job and schedule. `running`: schedules on by default.

    The expected checks of each (contract, check type) come from the same plan as the checks' schedules.
    """
    settings = settings or SLASettings.from_env()
    asset = build_sla_asset(plan.expectations(settings.default_target_pct), settings, config.retention_days, clock)
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
