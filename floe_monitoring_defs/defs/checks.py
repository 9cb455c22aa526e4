"""Asset checks: one `multi_asset_check` per (check type, cadence, chunk), thin over the core pipeline.

The adapter knows no check kind: descriptions and evidence come from the kind (`CheckKind.description`,
`CheckKind.evidence`), everything else is the same for every kind.
"""

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from floe_monitoring_defs.cadence import chunks
from floe_monitoring_defs.checks.kind import CheckKind, EvidenceTable, Target
from floe_monitoring_defs.checks.plan import CheckGroup
from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.defs.alerting import dispatcher
from floe_monitoring_defs.defs.assets import REGISTRY_KEY, asset_key, errors_markdown, not_monitored_markdown
from floe_monitoring_defs.defs.resources import IcebergCatalogResource, MonitoringStoreResource
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity
from floe_monitoring_defs.pipeline import CheckPipeline, RemovedTarget
from floe_monitoring_defs.telemetry.lineage import lineage_emitter

REGISTRY_CHECK_NAME = "contracts_valid"


def check_key(group: CheckGroup, target: Target) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(asset_key(target[1]), group.check_type.value)


def metadata_value(value: object) -> Any:
    """A kind's evidence value as Dagster metadata: tables as table metadata, plain values as they are."""
    if isinstance(value, EvidenceTable):
        return dg.MetadataValue.table(
            records=[dg.TableRecord(dict(row)) for row in value.rows],
            schema=dg.TableSchema(columns=[dg.TableColumn(c) for c in value.columns]),
        )
    return value


def to_check_result(run: CheckRun, kind: type[CheckKind]) -> dg.AssetCheckResult:
    """DESIGN severity mapping: passed=False for WARNING and above (and for ERROR status)."""
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
        "floe/contract": run.contract.name,
        "floe/contract_version": run.contract.version,
        "floe/table": run.table.ref.identifier,
        "floe/check_result_id": run.result.id,
        "floe/duration_seconds": round(run.result.duration_seconds, 6),
        "floe/persisted": run.persisted,
    }
    if outcome.reason:
        metadata["floe/reason"] = outcome.reason
    metadata.update({k: metadata_value(v) for k, v in kind.evidence(outcome, run.violations).items()})
    if run.violation_ids:
        metadata["floe/violation_ids"] = ", ".join(run.violation_ids)
    if status is CheckStatus.FAIL:
        description = "; ".join(v.message for v in run.violations if v.severity >= ViolationSeverity.WARNING)
    elif outcome.reason:
        description = f"{status.value}: {outcome.reason}"
    elif run.violations:  # INFO early warning on a passing check
        description = "early warning: " + run.violations[0].message
    else:
        description = "within contract"
    return dg.AssetCheckResult(
        asset_key=asset_key(run.table),
        check_name=run.result.check_type.value,
        passed=not failed,
        severity=dagster_severity,
        description=description[:2000],
        metadata=metadata,
    )


def removed_result(removed: RemovedTarget, check_name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key(removed.table),
        check_name=check_name,
        passed=True,
        severity=dg.AssetCheckSeverity.WARN,
        description="skipped: the contract file was removed",
        metadata={"floe/status": CheckStatus.SKIPPED.value, "floe/contract": removed.contract.name},
    )


def build_multi_check(
    group: CheckGroup,
    kind: type[CheckKind],
    part: int,
    targets: Sequence[Target],
    config: MonitoringConfig,
    channel_keys: Sequence[str] = (),
) -> dg.AssetChecksDefinition:
    lookup = {check_key(group, t): t for t in targets}
    specs = [
        # No per-spec metadata: the asset carries the contract, and normalizing metadata on 1,000s of
        # specs was a measurable share of the build (benchmarks/defs_load.py).
        dg.AssetCheckSpec(name=group.check_type.value, asset=key.asset_key, description=kind.description)
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
        # Resources by key (Dagster cannot mix decorator keys with typed parameters, and the channel
        # resources are only known from the config).
        required_resource_keys={"iceberg", "floe_store", *channel_keys},
    )
    def _checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        iceberg: IcebergCatalogResource = context.resources.iceberg
        floe_store: MonitoringStoreResource = context.resources.floe_store
        selected = [lookup[k] for k in sorted(context.selected_asset_check_keys, key=str) if k in lookup]
        store = floe_store.store()
        pipeline = CheckPipeline(
            iceberg.source(),
            store,
            config,
            kinds={check_name: kind},
            lineage=lineage_emitter(),  # OpenLineage FAIL events; off unless OPENLINEAGE_* is configured
            dispatcher=lambda: dispatcher(store, context.resources, channel_keys, config.alerts),
            log=context.log,
        )
        for item in pipeline.run_step(check_name, selected):
            yield removed_result(item, check_name) if isinstance(item, RemovedTarget) else to_check_result(item, kind)

    return _checks


def build_check_groups(
    groups: Sequence[CheckGroup],
    kinds: Mapping[str, type[CheckKind]],
    config: MonitoringConfig,
    channel_keys: Sequence[str] = (),
) -> dict[str, list[dg.AssetChecksDefinition]]:
    """group name -> its steps (one per chunk of at most `executor.checks_per_step` checks, 500 by default)."""
    out: dict[str, list[dg.AssetChecksDefinition]] = {}
    for group in groups:
        kind = kinds[group.check_type.value]
        keyed = {check_key(group, t).to_user_string(): t for t in group.targets}
        out[group.name] = [
            build_multi_check(group, kind, part, [keyed[n] for n in names], config, channel_keys)
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
