"""Asset checks: one `multi_asset_check` per (check type, cadence, chunk), thin over the core pipeline.

The adapter knows no check kind: descriptions, evidence and what a kind learnt of a table's state come from the
kind (`CheckKind.description`, `CheckKind.evidence`, `CheckKind.observation`), everything else is the same for
every kind. A result's description leads with its severity (`CheckRun.description`); its metadata names the
schedule that runs it, which Dagster does not list on the asset's page for a checks-only job.

A kind that reads the table's state (freshness) has it reported as an `AssetObservation` of the table's asset
just before the check result: `dagster/last_updated_timestamp` (the last update the check derived from Iceberg
metadata; what Dagster's own last-update freshness checks and the asset page's "Recent updates" timeline read),
`dagster/row_count` and `floe/snapshot_id` from the current snapshot (no data read). Not a materialization: a
materialization would make Dagster treat every other check result older than it as stale (not for the latest
materialization), hiding a failing schema-drift or quality check from the asset's status until its next run.
"""

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from floe_monitoring_defs.cadence import chunks
from floe_monitoring_defs.checks.kind import CheckKind, EvidenceTable, TableState, Target, format_age
from floe_monitoring_defs.checks.plan import CheckGroup
from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.defs.alerting import dispatcher
from floe_monitoring_defs.defs.assets import REGISTRY_KEY, asset_key, errors_markdown, not_monitored_markdown
from floe_monitoring_defs.defs.context import DagsterRunsProvider
from floe_monitoring_defs.defs.resources import AlertChannelsResource, IcebergCatalogResource, MonitoringStoreResource
from floe_monitoring_defs.defs.schedules import cadence_text, checks_job_name, checks_schedule_name
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity
from floe_monitoring_defs.models.context import summary_lines
from floe_monitoring_defs.pipeline import CheckPipeline, RemovedTarget
from floe_monitoring_defs.telemetry.lineage import lineage_emitter

REGISTRY_CHECK_NAME = "contracts_valid"


def check_key(group: CheckGroup, target: Target) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(asset_key(target[1]), group.check_type.value)


def metadata_value(value: object) -> Any:
    """A kind's evidence value as Dagster metadata: tables as table metadata, points in time as timestamps, plain
    values as they are."""
    if isinstance(value, EvidenceTable):
        return dg.MetadataValue.table(
            records=[dg.TableRecord(dict(row)) for row in value.rows],
            schema=dg.TableSchema(columns=[dg.TableColumn(c) for c in value.columns]),
        )
    if isinstance(value, datetime):
        return dg.MetadataValue.timestamp(value)
    return value


def evidence_metadata(evidence: Mapping[str, object]) -> dict[str, Any]:
    """Evidence as metadata, each duration (`<name>_seconds`) followed by the same in words (`<name>`: "4h 12m"),
    unless the kind already gives that key."""
    out: dict[str, Any] = {}
    for key, value in evidence.items():
        out[key] = metadata_value(value)
        words = key.removesuffix("_seconds")
        if words != key and words not in evidence and isinstance(value, int | float) and not isinstance(value, bool):
            if value >= 0:
                out[words] = format_age(float(value))
    return out


def automation_metadata(group: CheckGroup) -> dict[str, str]:
    """What runs the check: its schedule, job and cadence (Dagster lists no automation for checks-only jobs)."""
    return {
        "floe/schedule": checks_schedule_name(group),
        "floe/job": checks_job_name(group),
        "floe/cadence": cadence_text(group),
    }


def observation(run: CheckRun, state: TableState) -> dg.AssetObservation:
    """The table's state as a check read it from Iceberg metadata, as an observation of its asset."""
    ident = run.table.ref.identifier
    metadata: dict[str, Any] = {"floe/contract": run.contract.name, "floe/table": ident}
    said = [f"Iceberg table {ident}"]
    if state.last_update is not None:
        metadata["dagster/last_updated_timestamp"] = dg.MetadataValue.timestamp(state.last_update)
        said.append(f"last update {state.last_update.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    if state.method:
        metadata["floe/last_update_method"] = state.method
    if state.snapshot_id is not None:
        # Text, not int: an Iceberg snapshot id is a 64-bit identifier (GraphQL's Int is 32-bit), not a quantity.
        metadata["floe/snapshot_id"] = str(state.snapshot_id)
        said.append(f"snapshot {state.snapshot_id}")
    if state.row_count is not None:
        metadata["dagster/row_count"] = state.row_count
        said.append(f"{state.row_count:,} rows")
    return dg.AssetObservation(asset_key=asset_key(run.table), description=", ".join(said), metadata=metadata)


CONTEXT_MD_MAX = 4000  # the `floe/context` entry: the lines, then the JSON (itself bounded by context.max_bytes)


def context_markdown(context: Mapping[str, Any]) -> str:
    """The violation's root-cause context as the `floe/context` entry: its summary lines, then the JSON."""
    lines = "\n".join(f"- {line}" for line in summary_lines(context))
    text = json.dumps(context, indent=1)
    body = f"{lines}\n\n```json\n{text}\n```" if lines else f"```json\n{text}\n```"
    return body if len(body) <= CONTEXT_MD_MAX else lines[: CONTEXT_MD_MAX - 40] + "\n\n(full context in the store)"


def to_check_result(
    run: CheckRun, kind: type[CheckKind], automation: Mapping[str, str] | None = None
) -> dg.AssetCheckResult:
    """DESIGN severity mapping: passed=False for WARNING and above (and for ERROR status); Dagster severity WARN for
    WARNING, ERROR for ERROR / CRITICAL and for a check that could not complete. The description leads with floe's
    own severity, which `floe/severity` carries for filtering."""
    status = run.result.status
    worst = run.max_severity
    failed = status is CheckStatus.ERROR or (status is CheckStatus.FAIL)
    dagster_severity = (
        dg.AssetCheckSeverity.WARN
        if status is CheckStatus.FAIL and worst is ViolationSeverity.WARNING
        else dg.AssetCheckSeverity.ERROR
    )
    outcome = run.outcome
    metadata: dict[str, Any] = {
        "floe/status": status.value,
        "floe/severity": worst.value if worst else "none",
        "floe/check_type": run.result.check_type.value,
        **(automation or {}),
        "floe/contract": run.contract.name,
        "floe/contract_version": run.contract.version,
        "floe/table": run.table.ref.identifier,
        "floe/check_result_id": run.result.id,
        "floe/duration_seconds": round(run.result.duration_seconds, 6),
        "floe/persisted": run.persisted,
    }
    if outcome.reason:
        metadata["floe/reason"] = outcome.reason
    metadata.update(evidence_metadata(kind.evidence(outcome, run.violations)))
    if run.violation_ids:
        metadata["floe/violation_ids"] = ", ".join(run.violation_ids)
    if run.context:  # root cause (FR-047): what changed in the table, the check's pattern, runs, upstream
        metadata["floe/context"] = dg.MetadataValue.md(context_markdown(run.context))
    description = run.description()
    return dg.AssetCheckResult(
        asset_key=asset_key(run.table),
        check_name=run.result.check_type.value,
        passed=not failed,
        severity=dagster_severity,
        description=description if len(description) <= 2000 else description[:1997] + "...",
        metadata=metadata,
    )


def removed_result(
    removed: RemovedTarget, check_name: str, automation: Mapping[str, str] | None = None
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key(removed.table),
        check_name=check_name,
        passed=True,
        severity=dg.AssetCheckSeverity.WARN,
        description="SKIPPED: the contract file was removed",
        metadata={
            "floe/status": CheckStatus.SKIPPED.value,
            "floe/severity": "none",
            "floe/check_type": check_name,
            **(automation or {}),
            "floe/contract": removed.contract.name,
        },
    )


def build_multi_check(
    group: CheckGroup,
    kind: type[CheckKind],
    part: int,
    targets: Sequence[Target],
    config: MonitoringConfig,
    contracts_of: Mapping[str, Sequence[str]] | None = None,
) -> dg.AssetChecksDefinition:
    lookup = {check_key(group, t): t for t in targets}
    automation = automation_metadata(group)
    # What runs the check, in the one place Dagster's UI and GraphQL show of a check's definition (a spec's
    # metadata reaches neither, and the asset page lists no schedule of a checks-only job).
    runs_it = (
        f"{kind.description}. Runs {cadence_text(group)}: schedule {automation['floe/schedule']}, "
        f"job {automation['floe/job']}"
    )
    specs = [
        # No per-spec metadata: the asset carries the contract, and normalizing metadata on 1,000s of
        # specs was a measurable share of the build (benchmarks/defs_load.py).
        dg.AssetCheckSpec(name=group.check_type.value, asset=key.asset_key, description=runs_it)
        for key in lookup
    ]
    check_name = group.check_type.value
    suffix = f"_part{part}" if part else ""

    @dg.multi_asset_check(
        specs=specs,
        name=f"{group.name}{suffix}",
        can_subset=True,
        description=f"{kind.description} ({f'on cron {group.cron}' if group.cron else f'every {group.minutes} min'})",
        op_tags={"floe/check_type": check_name},
    )
    def _checks(
        context: dg.AssetCheckExecutionContext,
        iceberg: IcebergCatalogResource,
        floe_store: MonitoringStoreResource,
        alert_channels: AlertChannelsResource,
    ) -> Iterator[dg.AssetCheckResult | dg.AssetObservation]:
        selected = [lookup[k] for k in sorted(context.selected_asset_check_keys, key=str) if k in lookup]
        store = floe_store.store()
        pipeline = CheckPipeline(
            iceberg.source(),
            store,
            config,
            kinds={check_name: kind},
            lineage=lineage_emitter(),  # OpenLineage FAIL events; off unless OPENLINEAGE_* is configured
            dispatcher=lambda: dispatcher(store, alert_channels, config.alerts),
            log=context.log,
        )
        # Runs that wrote the asset and upstream status (the context's Dagster parts). Added even when the
        # global context is off: a contract may turn it on for itself, and an unused provider costs nothing.
        pipeline.runner.add_context_provider(
            DagsterRunsProvider(
                context.instance, store, config.context.max_runs, asset_key=asset_key, contracts_of=contracts_of
            )
        )
        for item in pipeline.run_step(check_name, selected):
            if isinstance(item, RemovedTarget):
                yield removed_result(item, check_name, automation)
                continue
            state = kind.observation(item.outcome)
            if state is not None:
                yield observation(item, state)
            yield to_check_result(item, kind, automation)

    return _checks


def build_check_groups(
    groups: Sequence[CheckGroup],
    kinds: Mapping[str, type[CheckKind]],
    config: MonitoringConfig,
) -> dict[str, list[dg.AssetChecksDefinition]]:
    """group name -> its steps (one per chunk of at most `executor.checks_per_step` checks, 500 by default)."""
    out: dict[str, list[dg.AssetChecksDefinition]] = {}
    # Which contracts check each table: the upstream part of a violation's context reads a table's floe status
    # by (contract, type, time), the store's index, rather than by table name alone.
    contracts_of: dict[str, list[str]] = {}
    for group in groups:
        for contract, table in group.targets:
            names_of = contracts_of.setdefault(table.ref.identifier, [])
            if contract.name not in names_of:
                names_of.append(contract.name)
    for group in groups:
        kind = kinds[group.check_type.value]
        keyed = {check_key(group, t).to_user_string(): t for t in group.targets}
        out[group.name] = [
            build_multi_check(group, kind, part, [keyed[n] for n in names], config, contracts_of)
            for part, names in enumerate(chunks(sorted(keyed), config.executor.checks_per_step))
            if names
        ]
    return out


def build_registry_check(report: LoadReport) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=REGISTRY_KEY,
        name=REGISTRY_CHECK_NAME,
        description="Every contract file parses and validates against ODCS",
    )
    def _registry_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        for err in report.errors:
            context.log.warning(f"contract not loaded: {err}")
        return dg.AssetCheckResult(
            passed=not report.errors,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(report.contracts)} contracts loaded"
                if not report.errors
                else f"{len(report.errors)} contract(s) failed to load: " + "; ".join(str(e) for e in report.errors)
            )[:2000],
            metadata={
                "floe/contracts_loaded": len(report.contracts),
                "floe/contracts_failed": len(report.errors),
                "floe/errors": dg.MetadataValue.md(errors_markdown(report)),
                "floe/failed_files": ", ".join(sorted({Path(e.source).name for e in report.errors})) or "none",
                "floe/promises_not_monitored": sum(len(c.not_monitored) for c in report.contracts),
                "floe/not_monitored": dg.MetadataValue.md(not_monitored_markdown(report)),
            },
        )

    return _registry_check
